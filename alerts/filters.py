"""Pipeline filters: `{"match": "all"|"any", "conditions": [{"field", "op", "value"?}]}` checked at save time
(messages name the condition and the problem; feature keys must be in the catalog unless the condition says
`"expected_later": true`) and evaluated per alert in memory, on the event, account, owner, end user and feature
the trigger already loaded (no query per event).

String comparisons ignore case. A field the subject does not have (no end user, no such attribute) matches only
`ne`, `not_in` and `exists` with `"value": false`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from catalog.models import Feature
from core.errors import DomainError

OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "starts_with", "glob", "exists")
MAX_CONDITIONS = 20
MAX_LIST = 100
_ORDER_OPS = {"gt", "gte", "lt", "lte"}
_TEXT_OPS = {"contains", "starts_with", "glob"}
# Fixed fields and what they are: "text" or "number". Attribute and property fields take any JSON value.
FIELDS: dict[str, str] = {
    "feature.key": "text",
    "account.id": "text",
    "account.name": "text",
    "account.plan": "text",
    "account.status": "text",
    "account.owner": "text",
    "account.domain": "text",
    "user.id": "text",
    "user.email": "text",
    "user.email_domain": "text",
    "event.quantity": "number",
}
PREFIXES = ("account.attributes.", "user.attributes.", "event.properties.")
_NAME = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+){0,4}$")
# What each trigger type knows about: per-event triggers know everything, the rollup ones the account only.
_SCOPES = {
    "event": ("feature.", "account.", "user.", "event."),
    "paid_feature_on_free_plan": ("feature.", "account.", "user.", "event."),
    "threshold": ("feature.", "account."),
    "dormant": ("account.",),
    "usage_drop": ("account.",),
}


def _err(message: str, field: str, code: str = "invalid_filter") -> DomainError:
    return DomainError(message, code=code, field=field)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _kind(field: str) -> str:
    return FIELDS.get(field, "any")


def _check_field(raw: Any, *, where: str, trigger_type: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise _err(
            f"{where}.field is required: one of {', '.join(FIELDS)}, or {', '.join(p + '<name>' for p in PREFIXES)}.",
            f"{where}.field",
        )
    if raw not in FIELDS:
        prefix = next((p for p in PREFIXES if raw.startswith(p)), None)
        if prefix is None or not _NAME.match(raw.removeprefix(prefix)):
            raise _err(
                f"{where}.field {raw!r} is not a filter field; use one of {', '.join(FIELDS)}, "
                f"or {', '.join(p + '<name>' for p in PREFIXES)}.",
                f"{where}.field",
            )
    scopes = _SCOPES.get(trigger_type, ())
    if not raw.startswith(scopes):
        known = ", ".join(s.rstrip(".") for s in scopes)
        raise _err(
            f"{where}.field {raw!r} is not known to '{trigger_type}' triggers (they know: {known}).", f"{where}.field"
        )
    return raw


def _check_value(op: str, value: Any, *, field: str, where: str) -> Any:
    kind = _kind(field)
    if op == "exists":
        if value is None:
            return True
        if not isinstance(value, bool):
            raise _err(f"{where}.value: 'exists' takes true or false; got {value!r}.", f"{where}.value")
        return value
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST or not all(_scalar(v) for v in value):
            raise _err(
                f'{where}.value: \'{op}\' needs a list of 1 to {MAX_LIST} values, e.g. ["pro", "enterprise"].',
                f"{where}.value",
            )
        if kind == "number" and not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise _err(f"{where}.value: {field} is a number; every value of the list must be one.", f"{where}.value")
        return value
    if value is None or not _scalar(value):
        raise _err(f"{where}.value is required: '{op}' compares {field} with one value.", f"{where}.value")
    if op in _ORDER_OPS and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise _err(f"{where}.value: '{op}' needs a number; got {value!r}.", f"{where}.value")
    if op in _TEXT_OPS and not isinstance(value, str):
        raise _err(f"{where}.value: '{op}' needs text; got {value!r}.", f"{where}.value")
    if kind == "number" and op in ("eq", "ne") and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise _err(f"{where}.value: {field} is a number; got {value!r}.", f"{where}.value")
    if kind == "number" and op in _TEXT_OPS:
        raise _err(f"{where}.op '{op}' compares text; {field} is a number.", f"{where}.op")
    return value


def _feature_keys(condition: dict) -> list[str]:
    if condition["field"] != "feature.key" or condition["op"] not in ("eq", "in"):
        return []
    value = condition["value"]
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]


def _check_condition(condition: Any, *, where: str, trigger_type: str) -> dict:
    if not isinstance(condition, dict):
        raise _err(f"{where} must be an object with field, op and value.", where)
    extra = sorted(set(condition) - {"field", "op", "value", "expected_later"})
    if extra:
        raise _err(
            f"{where}.{extra[0]} is not a condition key (field, op, value, expected_later).", f"{where}.{extra[0]}"
        )
    field = _check_field(condition.get("field"), where=where, trigger_type=trigger_type)
    op = condition.get("op")
    if op not in OPS:
        raise _err(f"{where}.op must be one of {', '.join(OPS)}; got {op!r}.", f"{where}.op")
    value = _check_value(op, condition.get("value"), field=field, where=where)
    expected_later = condition.get("expected_later", False)
    if not isinstance(expected_later, bool):
        raise _err(f"{where}.expected_later must be true or false.", f"{where}.expected_later")
    normalised = {"field": field, "op": op, "value": value}
    if expected_later:
        normalised["expected_later"] = True
    return normalised


def filter_validate(raw: Any, *, workspace_id: int, trigger_type: str) -> dict:
    """Check a filter and return it normalised (`{}` for none), or raise naming the condition at fault."""
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, dict):
        raise _err('filter must be an object: {"match": "all"|"any", "conditions": [...]}.', "filter")
    unknown = sorted(set(raw) - {"match", "conditions"})
    if unknown:
        raise _err(f"filter.{unknown[0]} is not a filter setting (match, conditions).", f"filter.{unknown[0]}")
    match = raw.get("match", "all")
    if match not in ("all", "any"):
        raise _err(f"filter.match must be 'all' or 'any'; got {match!r}.", "filter.match")
    conditions = raw.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise _err("filter.conditions must be a list of 1 or more conditions.", "filter.conditions")
    if len(conditions) > MAX_CONDITIONS:
        raise _err(f"filter.conditions: at most {MAX_CONDITIONS} conditions.", "filter.conditions")
    out = [
        _check_condition(c, where=f"filter.conditions[{i}]", trigger_type=trigger_type)
        for i, c in enumerate(conditions)
    ]
    for index, condition in enumerate(out):
        keys = _feature_keys(condition)
        if keys and not condition.get("expected_later"):
            missing = unknown_feature_keys(workspace_id=workspace_id, keys=keys)
            if missing:
                raise _err(
                    f"filter.conditions[{index}]: no feature {', '.join(repr(k) for k in missing)} in the catalog. "
                    'Check the spelling, or mark the condition "expected_later": true to keep a key no event has '
                    "used yet.",
                    f"filter.conditions[{index}].value",
                    code="unknown_feature",
                )
    return {"match": match, "conditions": out}


def unknown_feature_keys(*, workspace_id: int, keys: list[str]) -> list[str]:
    """The keys (in order) that name no feature of the workspace's catalog."""
    known = set(Feature.objects.filter(workspace_id=workspace_id, key__in=keys).values_list("key", flat=True))
    return [k for k in keys if k not in known]


# ------------------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------------------

_MISSING = object()


@dataclass(frozen=True)
class FilterSubject:
    """What an alert is about, as loaded by the trigger (account with its owner, end user, feature, event)."""

    account: Any = None
    feature: Any = None
    end_user: Any = None
    quantity: int | None = None
    properties: dict | None = None


def _path(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _fixed(subject: FilterSubject, field: str) -> Any:
    account, user = subject.account, subject.end_user
    owner = getattr(account, "owner", None) if account is not None else None
    email = (user.email or None) if user is not None else None
    values = {
        "feature.key": subject.feature.key if subject.feature is not None else _MISSING,
        "account.id": account.external_id if account is not None else _MISSING,
        "account.name": account.name if account is not None else _MISSING,
        "account.plan": (account.plan or _MISSING) if account is not None else _MISSING,
        "account.status": account.status if account is not None else _MISSING,
        "account.owner": (owner.email or owner.get_username()) if owner is not None else _MISSING,
        "account.domain": (account.domain or _MISSING) if account is not None else _MISSING,
        "user.id": user.external_id if user is not None else _MISSING,
        "user.email": email or _MISSING,
        "user.email_domain": email.rsplit("@", 1)[-1] if email else _MISSING,
        "event.quantity": subject.quantity if subject.quantity is not None else _MISSING,
    }
    return values[field]


def _value(subject: FilterSubject, field: str) -> Any:
    if field in FIELDS:
        return _fixed(subject, field)
    if field.startswith("account.attributes."):
        return _path(subject.account.attributes if subject.account is not None else None, field[19:])
    if field.startswith("user.attributes."):
        return _path(subject.end_user.attributes if subject.end_user is not None else None, field[16:])
    return _path(subject.properties, field.removeprefix("event.properties."))


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    return None


def _test(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return (actual is not _MISSING and actual is not None) == expected
    if actual is _MISSING or actual is None:
        return op in ("ne", "not_in")
    if op in ("eq", "ne"):
        return (_fold(actual) == _fold(expected)) == (op == "eq")
    if op in ("in", "not_in"):
        return (_fold(actual) in {_fold(v) for v in expected}) == (op == "in")
    if op in _ORDER_OPS:
        number = _number(actual)
        if number is None:
            return False
        return {"gt": number > expected, "gte": number >= expected, "lt": number < expected, "lte": number <= expected}[
            op
        ]
    text = str(actual).casefold() if not isinstance(actual, dict | list) else None
    if text is None:
        return op == "contains" and isinstance(actual, list) and _fold(expected) in {_fold(v) for v in actual}
    if op == "contains":
        return expected.casefold() in text
    if op == "starts_with":
        return text.startswith(expected.casefold())
    return fnmatch.fnmatchcase(text, expected.casefold())


def filter_matches(spec: dict, subject: FilterSubject) -> bool:
    """Whether the subject passes the (validated) filter; an empty filter passes everything."""
    conditions = spec.get("conditions") if spec else None
    if not conditions:
        return True
    results = (_test(c["op"], _value(subject, c["field"]), c["value"]) for c in conditions)
    return all(results) if spec.get("match", "all") == "all" else any(results)
