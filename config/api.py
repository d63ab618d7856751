"""API-wide plumbing: the DRF exception handler that gives every error one JSON shape, the middleware
that lets /api/v1/ requests skip what only browser pages need, and the helpers of the hot endpoints' fast
paths (answered below DRF's request cycle, see fast_path_principal)."""

from csp import middleware as _csp_middleware
from django.conf import settings
from django.contrib.auth import middleware as _auth_middleware
from django.contrib.messages import middleware as _messages_middleware
from django.contrib.sessions import middleware as _session_middleware
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpResponse
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.authentication import ApiKeyAuthentication, ApiPrincipal
from core.errors import DATABASE_UNAVAILABLE, DATABASE_UNAVAILABLE_ERRORS, DomainError, error_body, error_payload
from core.text import echo

from .http import API_PATH_PREFIX
from .jsonio import JSONRenderer


def _flatten(detail, prefix: str = "") -> list[dict]:
    """Turn DRF's nested error detail into a list of {field, code, message}."""
    out: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            out.extend(_flatten(value, f"{prefix}.{field}" if prefix and field else (field or prefix)))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list) and not isinstance(value, exceptions.ErrorDetail):
                out.extend(_flatten(value, f"{prefix}[{index}]" if prefix else f"[{index}]"))
            else:
                out.extend(_flatten(value, prefix))
    else:
        item = {"code": getattr(detail, "code", "invalid"), "message": echo(detail)}
        if prefix:
            item["field"] = prefix
        out.append(item)
    return out


def _body_too_large() -> dict:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_body("body_too_large", f"The body is over the limit of {limit} bytes per request.")


_DATABASE_UNAVAILABLE = error_payload(DATABASE_UNAVAILABLE)


def exception_handler(exc, context):
    """Errors answer `{"error": {"code", "message", "field"?}, "errors": [...]}`."""
    if isinstance(exc, DomainError):
        return Response(error_payload(exc.as_dict()), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        # Django refuses to read a body past DATA_UPLOAD_MAX_MEMORY_SIZE; unhandled, it is an HTML 400.
        return Response(error_payload(_body_too_large()), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
        response = Response(_DATABASE_UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(settings.UPTAKE_RETRY_AFTER_SECONDS)
        return response
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        response.data = {"error": errors[0] if errors else error_body("invalid", "Invalid input."), "errors": errors}
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        response.data = error_payload(error_body(code, echo(detail)))
    return response


# ---------------------------------------------------------------------------
# Middleware: the browser-only middleware (sessions, user from the session, messages) does nothing for the
# key-authenticated APIs but costs on every request, so it passes their requests straight through; DRF sets
# request.user from the API key. CSRF stays Django's own middleware everywhere (settings.MIDDLEWARE): the API
# views are CSRF-exempt, and `check --deploy` recognises the middleware only by its own name.
# ---------------------------------------------------------------------------


class _SkippedForApi:
    def __call__(self, request):
        if request.path_info.startswith(API_PATH_PREFIX) and not self.async_mode:
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_SkippedForApi, _session_middleware.SessionMiddleware):
    """Django's SessionMiddleware, except on /api/v1/."""


class AuthenticationMiddleware(_SkippedForApi, _auth_middleware.AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, except on /api/v1/ (DRF authenticates by API key)."""


class MessageMiddleware(_SkippedForApi, _messages_middleware.MessageMiddleware):
    """Django's MessageMiddleware, except on /api/v1/."""


class CSPMiddleware(_SkippedForApi, _csp_middleware.CSPMiddleware):
    """django-csp's Content-Security-Policy header, except on /api/v1/ (JSON answers run no script)."""


# ---------------------------------------------------------------------------
# Fast paths. The hottest endpoints (the entitlement check, event ingestion) serve their common case, a valid
# key with the scope and a request the endpoint accepts, without DRF's request cycle (content negotiation,
# Request wrapping, serializer machinery, Response rendering: ~0.2–0.45 ms of CPU per request). They use the
# same authentication, services and JSON renderer; every other request goes to the endpoint's DRF view,
# which answers it (and every error) exactly as before.
# ---------------------------------------------------------------------------

JSON_ACCEPTS = frozenset(("", "*/*", "application/json"))
_fast_authentication = ApiKeyAuthentication()
_fast_renderer = JSONRenderer()


def fast_path_principal(request, *, method: str, scope: str) -> ApiPrincipal | None:
    """The API principal when a fast path may serve this request itself: `method`, an Accept header that
    JSON satisfies, and a valid key with `scope`. None hands the request to the DRF view (no or bad key, a
    missing scope, another method or Accept, a database error while looking up the key, or fast paths turned
    off with UPTAKE_FAST_PATHS)."""
    if not settings.UPTAKE_FAST_PATHS:
        return None
    if request.method != method or request.META.get("HTTP_ACCEPT", "") not in JSON_ACCEPTS:
        return None
    try:
        authenticated = _fast_authentication.authenticate(request)
    except (exceptions.AuthenticationFailed, DatabaseError):
        return None
    if authenticated is None or scope not in authenticated[0].scopes:
        return None
    return authenticated[0]


def fast_json_response(payload, *, allow: str, status: int = 200) -> HttpResponse:
    """The response, with the bytes and headers DRF's JSONRenderer and APIView would give `payload`."""
    response = HttpResponse(_fast_renderer.render(payload), content_type="application/json", status=status)
    # APIView.default_response_headers: Vary only when it could have chosen another renderer.
    if len(api_settings.DEFAULT_RENDERER_CLASSES) > 1:
        response["Vary"] = "Accept"
    response["Allow"] = allow
    return response


def database_unavailable_response(*, allow: str) -> HttpResponse:
    """The 503 exception_handler gives a database outage, for a fast path that cannot hand over (a write)."""
    response = fast_json_response(_DATABASE_UNAVAILABLE, allow=allow, status=503)
    response["Retry-After"] = str(settings.UPTAKE_RETRY_AFTER_SECONDS)
    return response


_NO_ENDPOINT = error_payload(
    error_body("not_found", "No such endpoint: check the path against /api/docs/ (ids in paths are percent-encoded).")
)


def _api_path(request) -> bool:
    """An API path, `/api/v1` and `/api/segment/v1` without their trailing slash included."""
    return f"{request.path_info}/".startswith(API_PATH_PREFIX)


def not_found(request, exception=None) -> HttpResponse:
    """handler404: an API path that matches no route answers the API's JSON error; other paths get
    Django's page."""
    if _api_path(request):
        return HttpResponse(_fast_renderer.render(_NO_ENDPOINT), content_type="application/json", status=404)
    return page_not_found(request, exception)


def bad_request(request, exception=None) -> HttpResponse:
    """handler400: what Django refuses before a view runs (a Host outside ALLOWED_HOSTS, a body past
    DATA_UPLOAD_MAX_MEMORY_SIZE read outside DRF, other suspicious requests) answers an API path with the API's
    JSON error, naming the problem without echoing the request; other paths get Django's page."""
    if not _api_path(request):
        return django_bad_request(request, exception)
    code = 400
    if isinstance(exception, DisallowedHost):
        body = error_body("disallowed_host", "The Host header names no host this server answers to.")
    elif isinstance(exception, RequestDataTooBig):
        body, code = _body_too_large(), 413
    else:
        body = error_body("bad_request", "The request is malformed and was refused.")
    return HttpResponse(_fast_renderer.render(error_payload(body)), content_type="application/json", status=code)
