"""Entitlement values: validation against a feature's type and levels, and their order ("highest wins").

Values are strings as in Chargebee. JSON booleans and integers are accepted and turned into their strings.

- switch: "true" (granted) or "false" (not granted; as an override it takes the feature away).
- custom: one of the feature's level values; higher levels come later in the feature's level order.
- quantity: one of the feature's integer level values, or "unlimited" when the feature has an unlimited level.
- range: an integer between the minimum and maximum level, or "unlimited" when the maximum is unlimited.
"""

from collections.abc import Sequence
from typing import Any

from catalog.models import LEVEL_NUMBER_MAX, Feature, FeatureLevel, level_number
from core.errors import DomainError
from core.text import echo

UNLIMITED = "unlimited"
TRUE = "true"
FALSE = "false"


def value_normalise(*, feature: Feature, levels: Sequence[FeatureLevel], raw: Any, field: str = "value") -> str:
    """Return the canonical string of `raw` for `feature`, or raise DomainError naming the field and rule."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise DomainError(f"'{field}' is required.", code="missing_field", field=field)
    if isinstance(raw, bool):
        raw = TRUE if raw else FALSE
    elif isinstance(raw, int):
        raw = str(raw)
    elif not isinstance(raw, str):
        raise DomainError(
            f'\'{field}\' must be a string such as "true", "100" or "unlimited".',
            code="invalid_type",
            field=field,
        )
    value = raw.strip()
    if feature.type == Feature.Type.SWITCH:
        lowered = value.lower()
        if lowered not in (TRUE, FALSE):
            raise DomainError(
                f'\'{field}\' of switch feature \'{feature.key}\' must be "true" or "false", not "{value}".',
                code="invalid_value",
                field=field,
            )
        return lowered
    if feature.type == Feature.Type.CUSTOM:
        allowed = [level.value for level in levels]
        if value not in allowed:
            raise DomainError(
                f"'{field}' of custom feature '{feature.key}' must be one of its levels "
                f'({", ".join(allowed)}), not "{value}".',
                code="invalid_value",
                field=field,
            )
        return value
    unlimited_values = {level.value for level in levels if level.is_unlimited}
    allows_unlimited = bool(unlimited_values)
    if value.lower() == UNLIMITED or value in unlimited_values:
        if not allows_unlimited:
            raise DomainError(
                f"'{field}' cannot be unlimited: feature '{feature.key}' has no unlimited level.",
                code="invalid_value",
                field=field,
            )
        return UNLIMITED
    number = level_number(value)
    if number is None:
        raise DomainError(
            f"'{field}' of {feature.type} feature '{feature.key}' must be a whole number from 0 to "
            f"{LEVEL_NUMBER_MAX}"
            + (' or "unlimited"' if allows_unlimited else "")
            + f', not "{echo(value, limit=64)}{"…" if len(value) > 64 else ""}".',
            code="invalid_value",
            field=field,
        )
    numbers = [int(level.value) for level in levels if not level.is_unlimited]
    if feature.type == Feature.Type.QUANTITY:
        if number not in numbers:
            raise DomainError(
                f"'{field}' of quantity feature '{feature.key}' must be one of its levels "
                f"({', '.join(str(n) for n in numbers)}{', unlimited' if allows_unlimited else ''}), "
                f"not {number}.",
                code="invalid_value",
                field=field,
            )
        return str(number)
    # range: levels are (min, max); max may be unlimited.
    low = numbers[0] if numbers else 0
    high = None if allows_unlimited else (numbers[-1] if len(numbers) > 1 else None)
    if number < low or (high is not None and number > high):
        raise DomainError(
            f"'{field}' of range feature '{feature.key}' must be between {low} and "
            f"{'unlimited' if high is None else high}, not {number}.",
            code="invalid_value",
            field=field,
        )
    return str(number)


def value_rank(*, feature_type: str, value: str, level_positions: dict[str, int] | None = None) -> float:
    """A number that orders values of one feature: higher grants more. Unlimited is the highest."""
    if feature_type == Feature.Type.SWITCH:
        return 1.0 if value == TRUE else 0.0
    if feature_type == Feature.Type.CUSTOM:
        return float((level_positions or {}).get(value, -1))
    if value == UNLIMITED:
        return float("inf")
    try:
        return float(int(value))
    except ValueError:
        return -1.0


def feature_use_granted(*, feature: Feature, value: str | None) -> bool:
    """Whether an effective value lets the account use the feature at all — the one definition of "granted"
    that the check, the record, an account's entitlements and the dashboard lists share. Not granted: no value,
    a switch's "false", a metered allowance of 0, and a number feature's value that is not a number (one left
    from before a draft's type changed)."""
    return _grants(feature_type=feature.type, metered=feature.metered, value=value)


def value_grants(*, feature_type: str, value: str | None) -> bool:
    """feature_use_granted without metering (a metered allowance of 0 counts as granted). Kept only for
    alerts/triggers.py until its call sites pass the feature to feature_use_granted."""
    return _grants(feature_type=feature_type, metered=False, value=value)


def _grants(*, feature_type: str, metered: bool, value: str | None) -> bool:
    if value is None:
        return False
    if feature_type == Feature.Type.SWITCH:
        return value == TRUE
    if feature_type in (Feature.Type.QUANTITY, Feature.Type.RANGE) and value != UNLIMITED:
        number = level_number(value)
        return number is not None and (number > 0 or not metered)
    return True
