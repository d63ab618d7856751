"""The results the client returns: plain, typed dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Where an Entitlement came from (Entitlement.source).
SERVER = "server"  # fetched from Uptake for this call
CACHE = "cache"  # answered from the local cache, within its TTL
STALE = "stale"  # the last known value, answered because Uptake could not be reached
DEFAULT = "default"  # the configured default, answered because Uptake could not be reached and nothing was cached


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    # fromisoformat() reads a trailing "Z" only from Python 3.11 on.
    return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)


@dataclass(frozen=True)
class Entitlement:
    """May `account_id` use `feature_id`, and how much is left (the check API's answer)."""

    account_id: str
    feature_id: str
    entitled: bool
    type: str | None = None
    value: str | None = None
    unlimited: bool = False
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None
    reason: str | None = None
    source: str = SERVER
    error: str | None = None  # why Uptake could not answer, for stale and default answers

    @property
    def stale(self) -> bool:
        """True when this is not a current answer from Uptake (the last known value or the default)."""
        return self.source in (STALE, DEFAULT)

    @classmethod
    def from_api(cls, account_id: str, data: dict[str, Any], *, source: str = SERVER) -> Entitlement:
        return cls(
            account_id=account_id,
            feature_id=data["feature_id"],
            entitled=bool(data["entitled"]),
            type=data.get("type"),
            value=data.get("value"),
            unlimited=bool(data.get("unlimited", False)),
            limit=data.get("limit"),
            used=data.get("used"),
            remaining=data.get("remaining"),
            resets_at=_parse_time(data.get("resets_at")),
            reason=data.get("reason"),
            source=source,
        )

    def as_dict(self) -> dict[str, Any]:
        """The check API's fields (plus account_id and source), JSON-friendly."""
        return {
            "account_id": self.account_id,
            "feature_id": self.feature_id,
            "entitled": self.entitled,
            "type": self.type,
            "value": self.value,
            "unlimited": self.unlimited,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "reason": self.reason,
            "source": self.source,
        }


@dataclass(frozen=True)
class RecordResult:
    """The answer of `record()`: whether the usage was recorded, why not, and the entitlement after it."""

    recorded: bool
    reason: str | None
    entitlement: Entitlement
    event_id: str


@dataclass(frozen=True)
class Rejection:
    """One event the server refused (or that could not be sent), with the event as it was tracked."""

    index: int
    code: str
    message: str
    event: dict[str, Any]
    field: str | None = None


@dataclass(frozen=True)
class Stats:
    """Counters of the event pipeline since the client was created (or since a fork, in the child)."""

    tracked: int = 0  # track() calls that queued an event
    queued: int = 0  # events waiting in the queue now
    in_flight: int = 0  # events taken from the queue and not yet answered
    accepted: int = 0  # stored by the server
    duplicates: int = 0  # already stored (an event_id seen before): delivered once, not an error
    ignored: int = 0  # quantity 0: accepted, stored nowhere
    rejected: int = 0  # refused by the server, one by one or with their whole batch (reported to on_error)
    dropped: int = 0  # never delivered: queue full, retries exhausted, shutdown timeout (reported to on_error)
    batches: int = 0  # requests answered 2xx
    retries: int = 0  # requests retried (connection errors, 429, 5xx)
