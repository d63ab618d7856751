"""Python client for Uptake: usage events batched and delivered once, cached entitlement checks, usage
recording with enforcement, account and user details. See `Uptake`."""

from .client import Uptake, __version__
from .errors import APIError, ConnectionFailed, EventsDropped, EventsRejected, UptakeError
from .models import Entitlement, RecordResult, Rejection, Stats

__all__ = [
    "APIError",
    "ConnectionFailed",
    "Entitlement",
    "EventsDropped",
    "EventsRejected",
    "RecordResult",
    "Rejection",
    "Stats",
    "Uptake",
    "UptakeError",
    "__version__",
]
