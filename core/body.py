"""Reading a request's body: its size limit and `Content-Encoding: gzip`, one code path for every API body.

`/api/v1/events` and the Segment-compatible API read their bodies with `read_body`; every other JSON endpoint
gets the same decoding from the DRF parser (config/jsonio.py), through `body_decode`. The limit holds for the
bytes the server parses: a gzip body is inflated incrementally with the output capped at the limit + 1 byte,
so a small "zip bomb" is refused with 413 once its output passes the limit, without ever holding more than that
in memory. A corrupt or truncated stream is a 400 (`invalid_gzip`); an encoding other than gzip (or identity)
is a 415 (`unsupported_encoding`). Nothing is stored in any of these cases. Why gzip and nothing else:
docs/internals.md ("Request bodies").
"""

import zlib

from django.core.exceptions import RequestDataTooBig

GZIP_ENCODINGS = frozenset(("gzip", "x-gzip"))
IDENTITY_ENCODINGS = frozenset(("", "identity"))
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream


class BodyError(Exception):
    """The whole body is refused: nothing is stored."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def body_too_large(max_bytes: int, size: int | None = None, *, what: str = "body") -> BodyError:
    detail = f"is {size} bytes" if size is not None else "is over the limit"
    return BodyError(
        f"The {what} {detail}; the limit is {max_bytes} bytes per request. Split the batch.",
        code="body_too_large",
        status=413,
    )


def content_encoding(request) -> str:
    """The request's Content-Encoding, lower-cased; '' when it has none."""
    return request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()


def _raw_body(request, *, max_bytes: int, what: str) -> bytes:
    """The body as sent; a declared or actual size over the limit is refused before it is read."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    size = int(declared) if declared.isdigit() else 0
    if size > max_bytes:
        raise body_too_large(max_bytes, size, what=what)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise body_too_large(max_bytes, what=what) from None
    if len(raw) > max_bytes:
        raise body_too_large(max_bytes, len(raw), what=what)
    return raw


def gunzip_limited(data: bytes, *, max_bytes: int) -> bytes:
    """Inflate a gzip body (one or more members) to at most `max_bytes`; BodyError 413 past that, 400 when
    the stream is corrupt or cut short."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            out += inflater.decompress(data, max_bytes + 1 - len(out))
        except zlib.error as exc:
            raise BodyError(f"The body is not a valid gzip stream ({exc}).", code="invalid_gzip") from None
        if len(out) > max_bytes:
            raise body_too_large(max_bytes, what="decompressed body")
        if not inflater.eof:
            raise BodyError("The gzip stream is truncated: it ends before its last block.", code="invalid_gzip")
        data = inflater.unused_data  # a following gzip member, as `cat a.gz b.gz` makes
    return bytes(out)


def _unsupported(encoding: str) -> BodyError:
    return BodyError(
        f"Content-Encoding '{encoding[:40]}' is not supported: send the body uncompressed or with "
        "Content-Encoding: gzip.",
        code="unsupported_encoding",
        status=415,
    )


def body_decode(raw: bytes, *, encoding: str, max_bytes: int) -> bytes:
    """`raw` (a body sent with Content-Encoding `encoding`, lower-cased) as the client meant it, at most
    `max_bytes` once decoded, or BodyError (413 too large, 400 corrupt gzip, 415 another encoding)."""
    if encoding in IDENTITY_ENCODINGS:
        return raw
    if encoding not in GZIP_ENCODINGS:
        raise _unsupported(encoding)
    return gunzip_limited(raw, max_bytes=max_bytes)


def read_body(request, *, max_bytes: int) -> bytes:
    """The request's body as the client meant it (gzip inflated), at most `max_bytes` bytes as sent and as
    decoded, or BodyError (413 too large, 400 corrupt gzip, 415 an unsupported Content-Encoding)."""
    encoding = content_encoding(request)
    if encoding not in IDENTITY_ENCODINGS | GZIP_ENCODINGS:
        raise _unsupported(encoding)  # before reading a body that would be refused anyway
    what = "body" if encoding in IDENTITY_ENCODINGS else "compressed body"
    return body_decode(_raw_body(request, max_bytes=max_bytes, what=what), encoding=encoding, max_bytes=max_bytes)
