"""Domain errors raised by services, and the one JSON shape of API errors. The API turns domain errors into
JSON errors; the admin into messages."""

import psycopg
from django.db import InterfaceError, OperationalError


def error_body(code: str, message: str, field: str | None = None) -> dict:
    """One API error: `{"code", "message", "field"?}`."""
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return body


def error_payload(*errors: dict) -> dict:
    """An API error answer: `{"error": <the first error>, "errors": [<every error>]}`."""
    return {"error": errors[0], "errors": list(errors)}


DATABASE_UNAVAILABLE = error_body("database_unavailable", "The database is unreachable; retry later.")
# The errors that mean the database cannot be reached now (503 with Retry-After, API and pages): Django's, and
# psycopg's as a psycopg cursor used directly raises them.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


class DomainError(Exception):
    """A refused write: a stable `code`, a human `message`, the `field` at fault and the HTTP status to answer."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def as_dict(self) -> dict:
        return error_body(self.code, self.message, self.field)


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class CapReached(DomainError):
    status_code = 409
    code = "cap_reached"


class PaymentRequired(DomainError):
    status_code = 402
    code = "payment_required"
