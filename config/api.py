"""API-wide plumbing: the DRF exception handler that gives every error one JSON shape, and the middleware
that lets /api/v1/ requests skip what only browser pages need."""

from django.conf import settings
from django.contrib.auth import middleware as _auth_middleware
from django.contrib.messages import middleware as _messages_middleware
from django.contrib.sessions import middleware as _session_middleware
from django.db import InterfaceError, OperationalError
from django.middleware import csrf as _csrf_middleware
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.errors import DomainError


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
        item = {"code": getattr(detail, "code", "invalid"), "message": str(detail)}
        if prefix:
            item["field"] = prefix
        out.append(item)
    return out


def exception_handler(exc, context):
    """Errors answer `{"error": {"code", "message", "field"?}, "errors": [...]}`."""
    if isinstance(exc, DomainError):
        return Response({"error": exc.as_dict(), "errors": [exc.as_dict()]}, status=exc.status_code)
    if isinstance(exc, OperationalError | InterfaceError):
        body = {"code": "database_unavailable", "message": "The database is unreachable; retry later."}
        response = Response({"error": body, "errors": [body]}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(settings.UPTAKE_RETRY_AFTER_SECONDS)
        return response
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first = errors[0] if errors else {"code": "invalid", "message": "Invalid input."}
        response.data = {"error": first, "errors": errors}
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        body = {"code": code, "message": str(detail)}
        response.data = {"error": body, "errors": [body]}
    return response


# ---------------------------------------------------------------------------
# Middleware: the browser-only middleware (sessions, CSRF, user from the session, messages) does nothing
# for the Bearer-key API but costs on every request, so it passes /api/v1/ requests straight through. DRF's
# views are CSRF-exempt anyway and set request.user from the API key.
# ---------------------------------------------------------------------------

API_PATH_PREFIX = "/api/v1/"


class _SkippedForApi:
    def __call__(self, request):
        if request.path_info.startswith(API_PATH_PREFIX) and not self.async_mode:
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_SkippedForApi, _session_middleware.SessionMiddleware):
    """Django's SessionMiddleware, except on /api/v1/."""


class CsrfViewMiddleware(_SkippedForApi, _csrf_middleware.CsrfViewMiddleware):
    """Django's CsrfViewMiddleware, except on /api/v1/ (process_view still sees DRF's csrf_exempt views)."""


class AuthenticationMiddleware(_SkippedForApi, _auth_middleware.AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, except on /api/v1/ (DRF authenticates by API key)."""


class MessageMiddleware(_SkippedForApi, _messages_middleware.MessageMiddleware):
    """Django's MessageMiddleware, except on /api/v1/."""
