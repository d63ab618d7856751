"""API-wide plumbing: the DRF exception handler that gives every error one JSON shape."""

from django.conf import settings
from django.db import InterfaceError, OperationalError
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
