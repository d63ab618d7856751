"""Domain errors raised by services. The API turns them into JSON errors; the admin into messages."""


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
        data = {"code": self.code, "message": self.message}
        if self.field:
            data["field"] = self.field
        return data


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
