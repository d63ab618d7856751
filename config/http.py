"""What every request must satisfy before a view sees it, and how paths that carry customer ids are read.

- `RequestTextMiddleware`: a path with a control character (NUL included), a path whose percent-encoded bytes
  are not UTF-8 (told where the server passes the raw path on), or a query parameter with NUL is refused with a
  400 that names it; no key or id can hold one, and PostgreSQL would refuse the NUL with a 500.
- The same middleware reads account and end-user ids in `/api/v1/accounts/...` and `/accounts/...` paths
  (see `external_id_path`): ids are free text, so `org/1` is sent as `org%2F1`, and the server has decoded that
  to `/` before Django sees the path.
- `chunked_body_application`: a WSGI wrapper that reads a `Transfer-Encoding: chunked` body (no
  Content-Length, which Django would read as empty) up to the request size limit, or answers 411 when the
  server does not say where such a body ends.
"""

from __future__ import annotations

import io
import json
import re
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.text import NUL

# The REST API and the Segment-compatible tracking API: both authenticate by key and answer JSON errors.
API_PATH_PREFIX = ("/api/v1/", "/api/segment/")
EXTERNAL_ID_PATH_PREFIXES = ("/api/v1/accounts/", "/accounts/")
_PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _json(data: dict) -> bytes:
    """Compact UTF-8 JSON, byte for byte what the API's renderer writes for the same error."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _refusal(request: HttpRequest, *, code: str, message: str, field: str | None = None) -> HttpResponse:
    if request.path_info.startswith(API_PATH_PREFIX):
        body = {"code": code, "message": message, **({"field": field} if field else {})}
        return HttpResponse(_json({"error": body, "errors": [body]}), status=400, content_type="application/json")
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def _raw_path(request: HttpRequest) -> str | None:
    """The path as the client sent it, still percent-encoded, when the server passes it on: gunicorn's
    RAW_URI, uWSGI's and mod_wsgi's REQUEST_URI, the ASGI scope's raw_path."""
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw is None:
        scope = getattr(request, "scope", None)
        raw_bytes = scope.get("raw_path") if scope else None
        if not raw_bytes:
            return None
        raw = raw_bytes.decode("latin-1")
    return urlsplit(raw).path if "://" in raw[:16] else raw.split("?", 1)[0]


def _escape(segment: str) -> str:
    return segment.replace("%", "%25").replace("/", "%2F")


# Without the raw path a `/` inside an id cannot be told from a separator: these readings of the decoded path
# apply, the routes' own words read as structure and the longest id winning.
_DECODED_READINGS = {
    "/api/v1/accounts/": (
        re.compile(r"(?P<a>.+)(?P<tail>/entitlements)"),
        re.compile(r"(?P<a>.+)(?P<tail>/analytics/daily)"),
        re.compile(r"(?P<a>.+)/users/(?P<u>.+)(?P<tail>/usage)"),
        re.compile(r"(?P<a>.+)/users/(?P<u>.+)"),
        re.compile(r"(?P<a>.+)"),
    ),
    "/accounts/": (re.compile(r"(?P<a>.+)(?P<tail>/)"), re.compile(r"(?P<a>.+)")),
}


def external_id_path(request: HttpRequest, prefix: str) -> str:
    """The path_info to resolve for a path under `prefix` (one of EXTERNAL_ID_PATH_PREFIXES), with every id
    a single segment in which `%` is written `%25` and `/` is written `%2F`; the `external_id` converter
    matches one segment and decodes it. When the server passes the raw path on, its segments are the ids as
    sent, so `/api/v1/accounts/a%2Fusers%2Fb` is the account `a/users/b`, not the user `b` of account `a`.
    Servers that do not (runserver, the test client) leave the decoded path, read by _DECODED_READINGS."""
    path_info = request.path_info
    script_name = request.META.get("SCRIPT_NAME", "")
    raw = _raw_path(request)
    if raw is not None and raw.startswith(script_name):
        raw = raw[len(script_name) :]
        # A raw path that does not decode to Django's (bytes that are not UTF-8, which RequestTextMiddleware
        # refuses before this, or any other mismatch): the decoded path is read instead.
        if unquote(raw, errors="replace") == path_info:
            return "/".join(_escape(unquote(segment)) for segment in raw.split("/"))
    rest = path_info[len(prefix) :]
    for reading in _DECODED_READINGS[prefix]:
        if match := reading.fullmatch(rest):
            parts = match.groupdict()
            user = f"/users/{_escape(parts['u'])}" if parts.get("u") else ""
            return f"{prefix}{_escape(parts['a'])}{user}{parts.get('tail') or ''}"
    return path_info


def _not_utf8(request: HttpRequest) -> bool:
    """Whether the path as sent holds percent-encoded bytes that are not UTF-8. Only the raw path tells (see
    _raw_path): without it, `%FF` cannot be told from `%25FF`."""
    raw = _raw_path(request)
    if raw is None:
        return False
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


class RequestTextMiddleware:
    """Refuses control characters in the path and NUL in the query (400 naming them); rewrites the paths
    that carry external ids (external_id_path)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if match := _PATH_CONTROL.search(path):
            return _refusal(
                request,
                code=NUL.code if match[0] == "\x00" else "control_characters_not_allowed",
                message=f"The path contains the control character U+{ord(match[0]):04X}; no id or key holds one.",
            )
        # Django shows a path's bytes that are not UTF-8 percent-encoded again (`%FF`), the way it shows `%25FF`:
        # `/api/v1/accounts/%ff` and `/api/v1/accounts/%25FF` would name one account. Checked only when the
        # path holds a `%` (rare), so the hot paths pay one substring test; needs the raw path (gunicorn's).
        if "%" in path and _not_utf8(request):
            return _refusal(
                request,
                code="invalid_path",
                message="The path is not UTF-8 text once percent-decoded: encode ids as UTF-8 (é is %C3%A9).",
            )
        if "%00" in request.META.get("QUERY_STRING", ""):
            for name, values in request.GET.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    shown = name.replace("\x00", "\u2400")
                    return _refusal(
                        request,
                        code=NUL.code,
                        message=f"The query parameter '{shown}' contains the NUL character.",
                        field=shown,
                    )
        for prefix in EXTERNAL_ID_PATH_PREFIXES:
            if path.startswith(prefix):
                request.path_info = external_id_path(request, prefix)
                break
        return self.get_response(request)


# ---------------------------------------------------------------------------
# Chunked request bodies (WSGI)
# ---------------------------------------------------------------------------


def _answer(environ, start_response, status: str, code: str, message: str) -> list[bytes]:
    """The project's JSON error under /api/v1/, plain text elsewhere."""
    if environ.get("PATH_INFO", "").startswith(API_PATH_PREFIX):
        error = {"code": code, "message": message}
        body, content_type = _json({"error": error, "errors": [error]}), "application/json"
    else:
        body, content_type = message.encode(), "text/plain; charset=utf-8"
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def chunked_body_application(application):
    """Wrap a WSGI application so a `Transfer-Encoding: chunked` request without Content-Length is read whole
    (when the server marks the input as terminated, `wsgi.input_terminated`, as gunicorn does) and handed on
    with its Content-Length, refused with 413 past DATA_UPLOAD_MAX_MEMORY_SIZE, or refused with 411 when the
    server does not say where the body ends (runserver)."""

    def wrapped(environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked or environ.get("CONTENT_LENGTH"):
            return application(environ, start_response)
        if not environ.get("wsgi.input_terminated"):
            return _answer(
                environ,
                start_response,
                "411 Length Required",
                "length_required",
                "This server needs a Content-Length header; send the body with one instead of chunked.",
            )
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            return _answer(
                environ,
                start_response,
                "413 Request Entity Too Large",
                "body_too_large",
                f"The body is over the limit of {limit} bytes per request.",
            )
        environ = {**environ, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
        return application(environ, start_response)

    return wrapped
