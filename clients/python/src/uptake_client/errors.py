"""Errors the client raises (record, identify, check with raise_errors) or hands to `on_error`."""

from __future__ import annotations

from .models import Rejection


class UptakeError(Exception):
    """Base class of every error of this package."""


class ConnectionFailed(UptakeError):
    """Uptake could not be reached (connection error, timeout) or kept answering 429/5xx until the client
    gave up."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class APIError(UptakeError):
    """Uptake refused the request (a 4xx other than 429): `code` and `message` are the server's."""

    def __init__(self, message: str, *, status_code: int, code: str = "") -> None:
        super().__init__(f"{status_code} {code}: {message}" if code else f"{status_code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message


class EventsRejected(UptakeError):
    """Tracked events that were refused and will not be retried (given to `on_error`): one Rejection per event.
    `status_code` is 200 when the server stored the rest of the batch and refused these, or the 4xx that
    refused the whole batch."""

    def __init__(self, rejections: list[Rejection], *, status_code: int) -> None:
        first = rejections[0] if rejections else None
        detail = f": {first.code} ({first.message})" if first else ""
        super().__init__(f"{len(rejections)} event(s) rejected (HTTP {status_code}){detail}")
        self.rejections = rejections
        self.status_code = status_code


class EventsDropped(UptakeError):
    """Tracked events that were never delivered (given to `on_error`). `reason`: `queue_full` (the queue held
    max_queue_size events; these were not queued), `retries_exhausted` (Uptake kept failing for
    max_retry_seconds), `shutdown` (still undelivered when shutdown's timeout passed), `too_large` (one event
    over the request size limit)."""

    def __init__(self, count: int, *, reason: str, detail: str = "") -> None:
        super().__init__(f"{count} event(s) dropped ({reason}){': ' + detail if detail else ''}")
        self.count = count
        self.reason = reason
        self.detail = detail
