"""Reading an ingestion request's body: the size limit, and `Content-Encoding: gzip`.

One function for every path that reads an events body (the fast path and the DRF view of `/api/v1/events`).
The limit holds for the bytes the server parses: a gzip body is inflated incrementally with the output capped
at the limit + 1 byte, so a small "zip bomb" is refused with 413 once its output passes the limit, without
ever holding more than that in memory. A corrupt or truncated stream is a 400; an encoding other than gzip
(or identity) is a 415. Nothing is stored in any of these cases.
"""

import zlib

from django.core.exceptions import RequestDataTooBig

from .validation import BodyError

GZIP_ENCODINGS = frozenset(("gzip", "x-gzip"))
_IDENTITY = frozenset(("", "identity"))
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream


def _too_large(max_bytes: int, size: int | None = None, *, what: str = "body") -> BodyError:
    detail = f"is {size} bytes" if size is not None else "is over the limit"
    return BodyError(
        f"The {what} {detail}; the limit is {max_bytes} bytes per request. Split the batch.",
        code="body_too_large",
        status=413,
    )


def _raw_body(request, *, max_bytes: int, what: str) -> bytes:
    """The body as sent; a declared or actual size over the limit is refused before it is read."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    size = int(declared) if declared.isdigit() else 0
    if size > max_bytes:
        raise _too_large(max_bytes, size, what=what)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise _too_large(max_bytes, what=what) from None
    if len(raw) > max_bytes:
        raise _too_large(max_bytes, len(raw), what=what)
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
            raise _too_large(max_bytes, what="decompressed body")
        if not inflater.eof:
            raise BodyError("The gzip stream is truncated: it ends before its last block.", code="invalid_gzip")
        data = inflater.unused_data  # a following gzip member, as `cat a.gz b.gz` makes
    return bytes(out)


def read_body(request, *, max_bytes: int) -> bytes:
    """The request's body as the client meant it (gzip inflated), at most `max_bytes` bytes, or BodyError
    (413 too large, 400 corrupt gzip, 415 an unsupported Content-Encoding)."""
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in _IDENTITY:
        return _raw_body(request, max_bytes=max_bytes, what="body")
    if encoding not in GZIP_ENCODINGS:
        raise BodyError(
            f"Content-Encoding '{encoding[:40]}' is not supported: send the body uncompressed or with "
            "Content-Encoding: gzip.",
            code="unsupported_encoding",
            status=415,
        )
    return gunzip_limited(_raw_body(request, max_bytes=max_bytes, what="compressed body"), max_bytes=max_bytes)
