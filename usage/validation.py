"""Parsing and per-event validation of `POST /api/v1/events` bodies (pure Python, no database).

A body is refused whole (`BodyError` → 400/413) when it is not JSON or not the right shape; otherwise each
event is validated on its own and either becomes a `ValidEvent` or a `Rejection` with a stable code.
"""

import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings

from accounts.ids import external_id_problem
from accounts.models import EXTERNAL_ID_MAX_LENGTH, Workspace
from catalog.models import KEY_PATTERN
from catalog.services import key_from_display_name
from core.body import BodyError
from core.text import JSON_MAX_DEPTH, DuplicateKeyError, echo, json_loads, json_text_problem, text_problem
from entitlements.models import EVENT_ID_MAX_LENGTH, MAX_QUANTITY

KNOWN_FIELDS = frozenset(
    {
        "account_id",
        "user_id",
        "product_id",
        "module_id",
        "feature_id",
        "timestamp",
        "quantity",
        "total",
        "event_id",
        "properties",
    }
)


class Code:
    """Stable codes of rejections and warnings (documented in README and the OpenAPI description)."""

    MISSING_FIELD = "missing_field"
    INVALID_TYPE = "invalid_type"
    INVALID_VALUE = "invalid_value"
    INVALID_ID = "invalid_id"
    TOO_OLD = "too_old"
    IN_FUTURE = "in_future"
    QUANTITY_OUT_OF_RANGE = "quantity_out_of_range"
    EVENT_ID_TOO_LONG = "event_id_too_long"
    PROPERTIES_TOO_LARGE = "properties_too_large"
    HIERARCHY_CONFLICT = "hierarchy_conflict"
    FEATURE_CAP_REACHED = "feature_cap_reached"
    MODULE_CAP_REACHED = "module_cap_reached"
    PRODUCT_CAP_REACHED = "product_cap_reached"
    CONFLICTING_FIELDS = "conflicting_fields"
    # warnings
    TRUNCATED = "truncated"
    UNKNOWN_FIELD = "unknown_field"


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict:
        data = {"index": self.index, "code": self.code, "message": self.message}
        if self.field:
            data["field"] = self.field
        return data


@dataclass(frozen=True)
class IngestWarning:
    index: int
    code: str
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"index": self.index, "code": self.code, "field": self.field, "message": self.message}


@dataclass
class ValidEvent:
    """One event that passed the per-event rules. `product_key` is None when the event did not name one."""

    index: int
    account_key: str
    user_key: str | None
    product_key: str | None
    module_key: str | None
    feature_key: str
    occurred_at: datetime
    quantity: int
    event_id: str | None
    properties_json: str | None
    warnings: list[IngestWarning] = field(default_factory=list)
    # The display names the event gave instead of keys ("Project Created"), used to name what is registered.
    product_name: str | None = None
    module_name: str | None = None
    feature_name: str | None = None


class _Reject(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        self.code, self.message, self.field = code, message, field


@contextmanager
def json_body_errors() -> Iterator[None]:
    """Decoding a request body inside: what keeps it from being JSON becomes a BodyError (400 invalid_json; an
    object naming a key twice, 400 duplicate_key)."""
    try:
        yield
    except UnicodeDecodeError:
        raise BodyError("The body is not valid UTF-8 JSON.", code="invalid_json") from None
    except DuplicateKeyError as exc:
        raise BodyError(f"The body is ambiguous: {exc}.", code="duplicate_key") from None
    except ValueError as exc:
        raise BodyError(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
    except RecursionError:
        raise BodyError("The body nests JSON too deeply.", code="invalid_json") from None


def parse_body(raw: bytes, *, max_bytes: int, max_events: int) -> list[Any]:
    """Decode a body into its list of events, or raise BodyError with a message that says what is wrong."""
    if len(raw) > max_bytes:
        raise BodyError(
            f"The body is {len(raw)} bytes; the limit is {max_bytes} bytes per request. Split the batch.",
            code="body_too_large",
            status=413,
        )
    if not raw.strip():
        raise BodyError('The body is empty: send one event object or {"events": [...]}.', code="invalid_body")
    with json_body_errors():
        data = json_loads(raw.decode("utf-8"))
    if isinstance(data, dict) and "events" in data:
        extra = sorted(set(data) - {"events"})
        if extra:
            raise BodyError(
                f"Unknown top-level key(s) next to 'events': {', '.join(extra)}. Put fields inside each event.",
                code="invalid_body",
            )
        events = data["events"]
        if not isinstance(events, list):
            raise BodyError("'events' must be a list of event objects.", code="invalid_body")
    elif isinstance(data, dict):
        events = [data]
    elif isinstance(data, list):
        events = data
    else:
        raise BodyError(
            'The body must be one event object, a list of event objects or {"events": [...]}; '
            f"got a JSON {type(data).__name__}.",
            code="invalid_body",
        )
    if len(events) > max_events:
        raise BodyError(
            f"The batch holds {len(events)} events; the limit is {max_events} per request. Split the batch.",
            code="too_many_events",
            status=413,
        )
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise BodyError(
                f"Event at index {index} is a JSON {type(event).__name__}, not an object; every event must "
                "be "
                "an object.",
                code="invalid_body",
            )
    return events


def event_validator(*, workspace: Workspace, now: datetime) -> Callable[..., ValidEvent | Rejection]:
    """validate_event under the workspace's late-event rules and the ingestion settings, for events received
    `now`: call it with (event, index=...)."""
    return partial(
        validate_event,
        now=now,
        late_event_policy=workspace.late_event_policy,
        late_event_window_days=workspace.late_event_window_days,
        max_future_seconds=settings.UPTAKE_INGEST_MAX_FUTURE_SECONDS,
        max_properties_bytes=settings.UPTAKE_INGEST_MAX_PROPERTIES_BYTES,
    )


def validate_event(
    event: dict,
    *,
    index: int,
    now: datetime,
    late_event_policy: str,
    late_event_window_days: int,
    max_future_seconds: int,
    max_properties_bytes: int,
) -> ValidEvent | Rejection:
    """Apply every field rule of the ingestion contract to one event."""
    warnings: list[IngestWarning] = []
    try:
        account_key = _id(event, "account_id", index, warnings, required=True)
        user_key = _id(event, "user_id", index, warnings)
        product_key, product_name = _catalog_id(event, "product_id", index, warnings)
        module_key, module_name = _catalog_id(event, "module_id", index, warnings)
        feature_key, feature_name = _catalog_id(event, "feature_id", index, warnings, required=True)
        occurred_at = _timestamp(
            event.get("timestamp"),
            now=now,
            late_event_policy=late_event_policy,
            late_event_window_days=late_event_window_days,
            max_future_seconds=max_future_seconds,
        )
        quantity = _quantity_or_total(event)
        event_id = _event_id(event.get("event_id"))
        properties_json = _properties(event.get("properties"), max_bytes=max_properties_bytes)
    except _Reject as rejection:
        return Rejection(index=index, code=rejection.code, message=rejection.message, field=rejection.field)
    for name in sorted(set(event) - KNOWN_FIELDS):
        # The name is echoed: made encodable here, so the answer of a committed batch always renders.
        shown = echo(name, limit=100)
        warnings.append(
            IngestWarning(
                index=index,
                code=Code.UNKNOWN_FIELD,
                field=shown,
                message=f"Unknown field '{shown}' was ignored; put custom data in 'properties'.",
            )
        )
    return ValidEvent(
        index=index,
        account_key=account_key,
        user_key=user_key,
        product_key=product_key,
        module_key=module_key,
        feature_key=feature_key,
        occurred_at=occurred_at,
        quantity=quantity,
        event_id=event_id,
        properties_json=properties_json,
        warnings=warnings,
        product_name=product_name,
        module_name=module_name,
        feature_name=feature_name,
    )


def _id(event: dict, name: str, index: int, warnings: list[IngestWarning], *, required: bool = False) -> str | None:
    value = event.get(name)
    if value is None:
        if required:
            raise _Reject(Code.MISSING_FIELD, f"'{name}' is required.", name)
        return None
    if not isinstance(value, str):
        raise _Reject(Code.INVALID_TYPE, f"'{name}' must be a string, not {_json_type(value)}.", name)
    value = value.strip()
    if not value:
        raise _Reject(Code.INVALID_VALUE, f"'{name}' must not be empty.", name)
    if message := external_id_problem(value, field=name):
        raise _Reject(Code.INVALID_ID, message, name)
    if len(value) > EXTERNAL_ID_MAX_LENGTH:
        value = value[:EXTERNAL_ID_MAX_LENGTH].rstrip()
        warnings.append(
            IngestWarning(
                index=index,
                code=Code.TRUNCATED,
                field=name,
                message=f"'{name}' was longer than {EXTERNAL_ID_MAX_LENGTH} characters and was truncated to '{value}'.",
            )
        )
    return value


def _catalog_id(
    event: dict, name: str, index: int, warnings: list[IngestWarning], *, required: bool = False
) -> tuple[str | None, str | None]:
    """(key, display name) of a product, module or feature id: a valid key is the key itself (no name); any
    other text is a display name whose key catalog.services.key_from_display_name derives."""
    value = _id(event, name, index, warnings, required=required)
    if value is None or KEY_PATTERN.match(value):
        return value, None
    key = key_from_display_name(value)
    if not key:
        raise _Reject(
            Code.INVALID_VALUE,
            f"'{name}' '{value}' has no letter or digit to make a key from.",
            name,
        )
    return key, value


# ISO 8601 as clients write it: a calendar date (extended or basic), optionally a time to the hour, minute or
# second with a fraction, and an offset. Python 3.11's fromisoformat also takes what is none of that: any
# character between date and time (NUL included), and garbage after the seconds (`10:00:00XZ` is 10:00Z).
_ISO_8601 = re.compile(
    r"\d{4}-?\d{2}-?\d{2}"
    r"(?:[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d{1,6})?)?)?)?)?",
    re.ASCII,
)


def iso_timestamp_parse(text: str) -> datetime:
    """`text` (surrounding spaces ignored) as a datetime, naive when it has no offset; ValueError unless it is
    ISO 8601 as _ISO_8601 reads it."""
    text = text.strip()
    if not _ISO_8601.fullmatch(text):
        raise ValueError(f"not ISO 8601: {text!r}")
    return datetime.fromisoformat(text)


def _timestamp(
    value: Any, *, now: datetime, late_event_policy: str, late_event_window_days: int, max_future_seconds: int
) -> datetime:
    if value is None:
        return now
    if not isinstance(value, str):
        raise _Reject(
            Code.INVALID_TYPE,
            f"'timestamp' must be an ISO 8601 string, not {_json_type(value)}.",
            "timestamp",
        )
    try:
        parsed = iso_timestamp_parse(value)
    except ValueError:
        raise _Reject(
            Code.INVALID_VALUE,
            f"'timestamp' '{echo(value, limit=64)}' is not ISO 8601 (e.g. 2026-11-18T12:00:00Z).",
            "timestamp",
        ) from None
    try:
        occurred_at = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        # An offset can carry year 1 or 9999 out of the representable range.
        raise _Reject(
            Code.INVALID_VALUE,
            f"'timestamp' '{echo(value, limit=64)}' is out of range: in UTC it falls before year 1 or after 9999.",
            "timestamp",
        ) from None
    if occurred_at > now + timedelta(seconds=max_future_seconds):
        raise _Reject(
            Code.IN_FUTURE,
            f"'timestamp' {occurred_at.isoformat()} is more than {max_future_seconds} seconds in the future.",
            "timestamp",
        )
    if late_event_policy == "reject_backdated":
        if occurred_at.date() < now.date():
            raise _Reject(
                Code.TOO_OLD,
                f"'timestamp' {occurred_at.isoformat()} is before today's UTC date "
                f"({now.date().isoformat()}); "
                "this workspace rejects backdated events.",
                "timestamp",
            )
    elif occurred_at < now - timedelta(days=late_event_window_days):
        raise _Reject(
            Code.TOO_OLD,
            f"'timestamp' {occurred_at.isoformat()} is older than this workspace's window of "
            f"{late_event_window_days} days.",
            "timestamp",
        )
    return occurred_at


def _quantity_or_total(event: dict) -> int:
    """`quantity`, or `total` as CustomerSuccessBox names it; both at once is a conflict, not a guess."""
    if "total" in event:
        if "quantity" in event:
            raise _Reject(
                Code.CONFLICTING_FIELDS,
                "'quantity' and 'total' are the same field; send one of them.",
                "total",
            )
        return _quantity(event["total"], present=True, name="total")
    return _quantity(event.get("quantity"), present="quantity" in event)


def _quantity(value: Any, *, present: bool, name: str = "quantity") -> int:
    if not present or value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Reject(Code.INVALID_TYPE, f"'{name}' must be an integer, not {_json_type(value)}.", name)
    if isinstance(value, float):
        # JSON has one number type: 2.0 is accepted as 2, 2.5 is not a count.
        if not math.isfinite(value) or abs(value) > MAX_QUANTITY:
            raise _Reject(
                Code.QUANTITY_OUT_OF_RANGE,
                f"'{name}' must be between -{MAX_QUANTITY} and {MAX_QUANTITY}.",
                name,
            )
        if not value.is_integer():
            raise _Reject(Code.INVALID_VALUE, f"'{name}' must be a whole number, not {value}.", name)
        value = int(value)
    if abs(value) > MAX_QUANTITY:
        raise _Reject(
            Code.QUANTITY_OUT_OF_RANGE,
            f"'{name}' must be between -{MAX_QUANTITY} and {MAX_QUANTITY}.",
            name,
        )
    return value


def _event_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Reject(Code.INVALID_TYPE, f"'event_id' must be a string, not {_json_type(value)}.", "event_id")
    value = value.strip()
    if not value:
        raise _Reject(Code.INVALID_VALUE, "'event_id' must not be empty.", "event_id")
    # Never truncated: two long ids sharing a prefix would become false duplicates.
    if len(value) > EVENT_ID_MAX_LENGTH:
        raise _Reject(
            Code.EVENT_ID_TOO_LONG,
            f"'event_id' is {len(value)} characters; the limit is {EVENT_ID_MAX_LENGTH}.",
            "event_id",
        )
    if problem := text_problem(value):
        raise _Reject(Code.INVALID_VALUE, f"'event_id' {problem.phrase}.", "event_id")
    return value


def _properties(value: Any, *, max_bytes: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Reject(Code.INVALID_TYPE, f"'properties' must be a JSON object, not {_json_type(value)}.", "properties")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise _Reject(Code.INVALID_VALUE, "'properties' must not contain NaN or Infinity.", "properties") from None
    except RecursionError:  # nested about as deep as the parser allows (a 500 before this)
        raise _too_deep() from None
    # Fewer brackets than the limit cannot nest past it: the walk runs only for properties that might. (Any
    # other problem it finds first, NUL or a surrogate, is refused by name below.)
    if text.count("{") + text.count("[") > JSON_MAX_DEPTH:
        found = json_text_problem({"properties": value}, max_depth=JSON_MAX_DEPTH + 1)
        if found is not None and found[1].code == "too_deep":
            raise _too_deep()
    if "\\u0000" in text:
        raise _Reject(Code.INVALID_VALUE, "'properties' must not contain the NUL character.", "properties")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _Reject(
            Code.INVALID_VALUE, "'properties' contains an unpaired surrogate (invalid Unicode).", "properties"
        ) from None
    if size > max_bytes:
        raise _Reject(
            Code.PROPERTIES_TOO_LARGE,
            f"'properties' is {size} bytes serialized; the limit is {max_bytes} bytes.",
            "properties",
        )
    return text


def _too_deep() -> _Reject:
    return _Reject(Code.INVALID_VALUE, f"'properties' nests JSON deeper than {JSON_MAX_DEPTH} levels.", "properties")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
