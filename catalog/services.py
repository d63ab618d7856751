"""Writes for the catalog. Every create, change and lifecycle move of products, modules, features and items
goes through here, and so does ingestion's registration on first sight (`catalog_features_resolve`): caps are
checked by one function under one lock of the workspace row, lifecycle moves read LIFECYCLE_MOVES, and every
change bumps `resource_version`."""

import logging
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from celery import current_app
from django.db import IntegrityError, transaction

from accounts.models import Workspace
from core.errors import CapReached, Conflict, DomainError
from core.unset import UNSET

from .models import (
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    KEY_RULE,
    LEVEL_NUMBER_MAX,
    LIFECYCLE_MOVES,
    Feature,
    FeatureLevel,
    Item,
    Lifecycle,
    Module,
    Product,
    level_number,
)

logger = logging.getLogger(__name__)

UNLIMITED = "unlimited"
# The task that rebuilds a feature's allowance counters when its metering changes (usage/allowances.py). The
# catalog sits below usage, so the task is named, not imported; a lost message is caught by its periodic sweep.
ALLOWANCE_COUNTERS_REBUILD_TASK = "usage.allowance_counters_rebuild"
MAX_LEVELS = 50

# Unique constraints → the error a user sees when a concurrent write wins the race.
_CONSTRAINT_ERRORS = {
    "catalog_product_unique_key": ("key", "product_exists", "A product with key '{key}' already exists."),
    "catalog_module_unique_key": ("key", "module_exists", "A module with key '{key}' already exists."),
    "catalog_feature_unique_key": ("key", "feature_exists", "A feature with key '{key}' already exists."),
    "catalog_feature_unique_name": ("name", "name_taken", "Another feature is already named '{name}'."),
    "catalog_item_unique_key": ("key", "item_exists", "An item with key '{key}' already exists."),
    "catalog_item_unique_name": ("name", "name_taken", "Another item is already named '{name}'."),
}


@dataclass(frozen=True)
class LevelSpec:
    value: str
    name: str
    is_unlimited: bool = False


class LifecycleError(DomainError):
    status_code = 409
    code = "invalid_transition"


# ---------------------------------------------------------------------------
# Shared rules
# ---------------------------------------------------------------------------


def next_resource_version(current: int) -> int:
    """A millisecond timestamp that always moves forward, even when two changes land in the same ms."""
    return max(current + 1, int(time.time() * 1000))


def validate_key(key: Any, *, field: str = "id") -> str:
    """Keys are slugs of at most 64 characters: letters, digits and `_ . : -`, starting alphanumeric."""
    if not isinstance(key, str) or not key.strip():
        raise DomainError(f"'{field}' is required and must be a non-empty string.", code="missing_field", field=field)
    key = key.strip()
    if len(key) > KEY_MAX_LENGTH:
        raise DomainError(f"'{field}' is at most {KEY_MAX_LENGTH} characters.", code="too_long", field=field)
    if not KEY_PATTERN.match(key):
        raise DomainError(
            f"'{field}' {KEY_RULE}.",
            code="invalid_key",
            field=field,
        )
    return key


_NOT_KEY_CHARACTERS = re.compile(r"[^a-z0-9]+")


def key_from_display_name(name: str) -> str:
    """The key a display name stands for ("Project Created" → `project-created`): accents folded to ASCII,
    lowercased, every run of other characters than a–z and 0–9 turned into one `-`, `-` trimmed from both
    ends, cut to 64 characters. "" when nothing is left (a name of punctuation only)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    key = _NOT_KEY_CHARACTERS.sub("-", folded).strip("-")
    return key[:KEY_MAX_LENGTH].rstrip("-")


def validate_name(name: Any, *, field: str = "name", max_length: int = 200) -> str:
    if not isinstance(name, str) or not name.strip():
        raise DomainError(f"'{field}' is required and must be a non-empty string.", code="missing_field", field=field)
    name = name.strip()
    if len(name) > max_length:
        raise DomainError(f"'{field}' is at most {max_length} characters.", code="too_long", field=field)
    return name


def validate_levels(*, feature_type: str, levels: Sequence[LevelSpec | dict]) -> list[LevelSpec]:
    """Check levels against the feature type and return them normalised.

    switch: no levels. range: exactly two, (min, max), integers with min < max; max may be unlimited.
    quantity: one or more increasing integers, optionally ending in one unlimited level.
    custom: one or more distinct values, none unlimited.
    """
    specs = [_level_spec(level, index) for index, level in enumerate(levels or [])]
    if feature_type not in Feature.Type.values:
        raise DomainError(
            f"Unknown feature type '{feature_type}': use switch, custom, quantity or range.",
            code="invalid_type",
            field="type",
        )
    if len(specs) > MAX_LEVELS:
        raise DomainError(f"A feature has at most {MAX_LEVELS} levels.", code="invalid_levels", field="levels")
    if feature_type == Feature.Type.SWITCH:
        if specs:
            raise DomainError("A switch feature has no levels.", code="invalid_levels", field="levels")
        return []
    if not specs:
        raise DomainError(f"A {feature_type} feature needs levels.", code="invalid_levels", field="levels")
    _check_distinct(specs)
    if feature_type == Feature.Type.CUSTOM:
        if any(spec.is_unlimited for spec in specs):
            raise DomainError("Custom levels cannot be unlimited.", code="invalid_levels", field="levels")
        return specs
    _check_numeric_levels(feature_type, specs)
    return specs


def _check_numeric_levels(feature_type: str, specs: list[LevelSpec]) -> None:
    """quantity and range: integers in increasing order, an unlimited level only last; range has two."""
    for index, spec in enumerate(specs):
        if spec.is_unlimited:
            if index != len(specs) - 1:
                raise DomainError(
                    "Only the last level may be unlimited.", code="invalid_levels", field=f"levels[{index}]"
                )
            continue
        if level_number(spec.value) is None:
            raise DomainError(
                f"Level value '{spec.value}' of a {feature_type} feature must be a whole number from 0 to "
                f"{LEVEL_NUMBER_MAX} (or an unlimited level).",
                code="invalid_levels",
                field=f"levels[{index}].value",
            )
    numbers = [int(spec.value) for spec in specs if not spec.is_unlimited]
    if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
        raise DomainError("Level values must increase strictly.", code="invalid_levels", field="levels")
    if feature_type == Feature.Type.RANGE:
        if len(specs) != 2:
            raise DomainError(
                "A range feature has exactly two levels: the minimum and the maximum.",
                code="invalid_levels",
                field="levels",
            )
        if specs[0].is_unlimited:
            raise DomainError("The minimum of a range cannot be unlimited.", code="invalid_levels", field="levels[0]")


def _level_spec(level: LevelSpec | dict, index: int) -> LevelSpec:
    if isinstance(level, LevelSpec):
        raw_value, raw_name, unlimited = level.value, level.name, level.is_unlimited
    elif isinstance(level, dict):
        unknown = set(level) - {"value", "name", "is_unlimited"}
        if unknown:
            raise DomainError(
                f"Unknown level field(s): {', '.join(sorted(unknown))}.", code="unknown_field", field=f"levels[{index}]"
            )
        raw_value, raw_name, unlimited = level.get("value"), level.get("name"), level.get("is_unlimited", False)
    else:
        raise DomainError("Each level must be an object.", code="invalid_type", field=f"levels[{index}]")
    if not isinstance(unlimited, bool):
        raise DomainError("'is_unlimited' must be true or false.", code="invalid_type", field=f"levels[{index}]")
    if unlimited and raw_value in (None, ""):
        raw_value = UNLIMITED
    if isinstance(raw_value, int) and not isinstance(raw_value, bool):
        raw_value = str(raw_value)
    if not isinstance(raw_value, str) or not raw_value.strip():
        raise DomainError(
            "Each level needs a non-empty string 'value'.", code="missing_field", field=f"levels[{index}].value"
        )
    value = raw_value.strip()
    if len(value) > 64:
        raise DomainError("A level value is at most 64 characters.", code="too_long", field=f"levels[{index}].value")
    if unlimited and value != UNLIMITED:
        raise DomainError(
            f"An unlimited level's value is '{UNLIMITED}'.", code="invalid_levels", field=f"levels[{index}].value"
        )
    if not unlimited and value == UNLIMITED:
        raise DomainError(
            f"The value '{UNLIMITED}' is reserved for an unlimited level (set is_unlimited).",
            code="invalid_levels",
            field=f"levels[{index}].value",
        )
    name = raw_name.strip() if isinstance(raw_name, str) and raw_name.strip() else value
    if len(name) > 100:
        raise DomainError("A level name is at most 100 characters.", code="too_long", field=f"levels[{index}].name")
    return LevelSpec(value=value, name=name, is_unlimited=unlimited)


def _check_distinct(specs: list[LevelSpec]) -> None:
    values = [spec.value for spec in specs]
    if len(set(values)) != len(values):
        raise DomainError("Level values must be distinct.", code="invalid_levels", field="levels")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise DomainError("Level names must be distinct.", code="invalid_levels", field="levels")


def validate_metering(*, feature_type: str, metered: bool, reset_period: str, reset_anchor: str) -> None:
    if not isinstance(metered, bool):
        raise DomainError("'metered' must be true or false.", code="invalid_type", field="metered")
    if reset_period not in Feature.ResetPeriod.values:
        raise DomainError(
            f"Unknown reset_period '{reset_period}': use none, day, week, month or year.",
            code="invalid_value",
            field="reset_period",
        )
    if reset_anchor not in Feature.ResetAnchor.values:
        raise DomainError(
            f"Unknown reset_anchor '{reset_anchor}': use term or calendar.", code="invalid_value", field="reset_anchor"
        )
    if metered and feature_type not in (Feature.Type.QUANTITY, Feature.Type.RANGE):
        raise DomainError("Only quantity and range features can be metered.", code="invalid_value", field="metered")


def _lock_workspace(workspace: Workspace) -> Workspace:
    """Serialise catalog growth per workspace, so caps hold under concurrent creates (admin, REST, events).
    NO KEY UPDATE does not block concurrent writes that only reference the workspace row (events, accounts)."""
    return Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)


# Each cap: the workspace setting and the model it counts (archived rows count too).
CAPS: dict[str, tuple[str, type]] = {
    "products": ("max_products", Product),
    "modules": ("max_modules", Module),
    "features": ("max_features", Feature),
}
_CAP_FIELDS = {"products": "product_id", "modules": "module_id", "features": "feature_id"}


def _cap_room(*, workspace: Workspace, what: str) -> int:
    """Free slots under a cap; call with the workspace row locked (`_lock_workspace`)."""
    setting, model = CAPS[what]
    return getattr(workspace, setting) - model.objects.filter(workspace_id=workspace.pk).count()


def _cap_reached(*, workspace: Workspace, what: str, field: str | None = None) -> CapReached:
    setting = CAPS[what][0]
    return CapReached(
        f"This workspace has reached its cap of {getattr(workspace, setting)} {what} ({setting}); raise the cap "
        "to add more.",
        code=f"{what.removesuffix('s')}_cap_reached",
        field=field,
    )


def _check_cap(*, workspace: Workspace, what: str) -> None:
    """Refuse one more row of `what` when the cap is reached; the workspace row must be locked."""
    if _cap_room(workspace=workspace, what=what) <= 0:
        raise _cap_reached(workspace=workspace, what=what)


def _save(obj: Any, *, update_fields: Iterable[str] | None = None) -> None:
    """Save, turning a lost uniqueness race into the same clear error as the up-front check."""
    try:
        with transaction.atomic():
            obj.save(update_fields=list(update_fields) if update_fields is not None else None)
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
        if constraint in _CONSTRAINT_ERRORS:
            field, code, template = _CONSTRAINT_ERRORS[constraint]
            raise Conflict(
                template.format(key=getattr(obj, "key", ""), name=getattr(obj, "name", "")), code=code, field=field
            ) from exc
        raise


def _transition(obj: Feature | Item, *, to_status: str, label: str) -> None:
    if to_status not in Lifecycle.values:
        raise LifecycleError(f"Unknown status '{to_status}'.", field="status")
    if to_status not in LIFECYCLE_MOVES[obj.status]:
        if obj.status == to_status:
            raise LifecycleError(f"{label} '{obj.key}' is already {to_status}.", field="status")
        raise LifecycleError(
            f"{label} '{obj.key}' cannot move from {obj.status} to {to_status}"
            + (" (nothing returns to draft)." if to_status == Lifecycle.DRAFT else "."),
            field="status",
        )
    obj.status = to_status
    obj.resource_version = next_resource_version(obj.resource_version)
    _save(obj, update_fields=["status", "resource_version", "updated_at"])


@transaction.atomic
def _lifecycle_move(obj: Feature | Item, *, to_status: str) -> Any:
    """The one transition service for features and items: locks the row, checks LIFECYCLE_MOVES, bumps the
    version."""
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
    _transition(obj, to_status=to_status, label=type(obj).__name__)
    return obj


def _lifecycle_activate(obj: Feature | Item) -> Any:
    if obj.status == Lifecycle.ARCHIVED:
        raise LifecycleError(f"{type(obj).__name__} '{obj.key}' is archived: reactivate it instead.", field="status")
    return _lifecycle_move(obj, to_status=Lifecycle.ACTIVE)


def _lifecycle_reactivate(obj: Feature | Item) -> Any:
    if obj.status != Lifecycle.ARCHIVED:
        raise LifecycleError(
            f"Only archived {type(obj).__name__.lower()}s can be reactivated; '{obj.key}' is {obj.status}.",
            field="status",
        )
    return _lifecycle_move(obj, to_status=Lifecycle.ACTIVE)


# ---------------------------------------------------------------------------
# Products and modules
# ---------------------------------------------------------------------------


@transaction.atomic
def product_create(*, workspace: Workspace, key: str, name: str = "", description: str = "") -> Product:
    """Create a product within the workspace's product cap."""
    key = validate_key(key, field="id")
    name = validate_name(name or key)
    workspace = _lock_workspace(workspace)
    if Product.objects.filter(workspace=workspace, key=key).exists():
        raise Conflict(f"A product with key '{key}' already exists.", code="product_exists", field="id")
    _check_cap(workspace=workspace, what="products")
    product = Product(
        workspace=workspace, key=key, name=name, description=description, resource_version=next_resource_version(0)
    )
    _save(product)
    return product


@transaction.atomic
def product_update(*, product: Product, name: str = UNSET, description: str = UNSET) -> Product:
    """Rename or describe a product; its key never changes."""
    if name is not UNSET:
        product.name = validate_name(name)
    if description is not UNSET:
        product.description = description or ""
    product.resource_version = next_resource_version(product.resource_version)
    _save(product, update_fields=["name", "description", "resource_version", "updated_at"])
    return product


@transaction.atomic
def module_create(*, workspace: Workspace, product: Product, key: str, name: str = "", description: str = "") -> Module:
    """Create a module of a product within the workspace's module cap."""
    key = validate_key(key, field="id")
    name = validate_name(name or key)
    if product.workspace_id != workspace.pk:
        raise DomainError("The product belongs to another workspace.", code="unknown_product", field="product_id")
    workspace = _lock_workspace(workspace)
    if Module.objects.filter(workspace=workspace, key=key).exists():
        raise Conflict(f"A module with key '{key}' already exists.", code="module_exists", field="id")
    _check_cap(workspace=workspace, what="modules")
    module = Module(
        workspace=workspace,
        product=product,
        key=key,
        name=name,
        description=description,
        resource_version=next_resource_version(0),
    )
    _save(module)
    return module


@transaction.atomic
def module_update(*, module: Module, name: str = UNSET, description: str = UNSET) -> Module:
    """Rename or describe a module; its key and product never change."""
    if name is not UNSET:
        module.name = validate_name(name)
    if description is not UNSET:
        module.description = description or ""
    module.resource_version = next_resource_version(module.resource_version)
    _save(module, update_fields=["name", "description", "resource_version", "updated_at"])
    return module


# ---------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------


def _unique_key_from_name(*, model: type, workspace: Workspace, name: str) -> str:
    """key_from_display_name(name), made unique in the workspace with `-2`, `-3`, … (call under the workspace
    lock); `feature` when the name has no letter or digit."""
    base = key_from_display_name(name) or model._meta.model_name
    taken = set(
        model.objects.filter(workspace=workspace, key__startswith=base[: KEY_MAX_LENGTH - 4]).values_list(
            "key", flat=True
        )
    )
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: KEY_MAX_LENGTH - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


@transaction.atomic
def feature_create(
    *,
    workspace: Workspace,
    key: str | None,
    name: str,
    product: Product,
    module: Module | None = None,
    type: str = Feature.Type.SWITCH,
    unit: str = "",
    levels: Sequence[LevelSpec | dict] = (),
    metered: bool = False,
    reset_period: str = Feature.ResetPeriod.NONE,
    reset_anchor: str = Feature.ResetAnchor.CALENDAR,
    description: str = "",
) -> Feature:
    """Create a draft feature with its levels, within the workspace's feature cap. Without a key (None), a unique
    one is derived from the name (as Chargebee sets one when `id` is left out)."""
    name = validate_name(name)
    if key is not None:
        key = validate_key(key, field="id")
    specs = validate_levels(feature_type=type, levels=levels)
    validate_metering(feature_type=type, metered=metered, reset_period=reset_period, reset_anchor=reset_anchor)
    unit = _validate_unit(unit)
    if product.workspace_id != workspace.pk:
        raise DomainError("The product belongs to another workspace.", code="unknown_product", field="product_id")
    if module is not None and module.product_id != product.pk:
        raise DomainError(
            f"Module '{module.key}' belongs to another product.", code="hierarchy_conflict", field="module_id"
        )
    workspace = _lock_workspace(workspace)
    if key is None:
        key = _unique_key_from_name(model=Feature, workspace=workspace, name=name)
    if Feature.objects.filter(workspace=workspace, key=key).exists():
        raise Conflict(f"A feature with key '{key}' already exists.", code="feature_exists", field="id")
    if Feature.objects.filter(workspace=workspace, name=name).exists():
        raise Conflict(f"Another feature is already named '{name}'.", code="name_taken", field="name")
    _check_cap(workspace=workspace, what="features")
    feature = Feature(
        workspace=workspace,
        product=product,
        module=module,
        key=key,
        name=name,
        description=description,
        type=type,
        unit=unit,
        metered=metered,
        reset_period=reset_period,
        reset_anchor=reset_anchor,
        status=Lifecycle.DRAFT,
        resource_version=next_resource_version(0),
    )
    _save(feature)
    _levels_replace(feature=feature, specs=specs)
    return feature


@transaction.atomic
def feature_update(
    *,
    feature: Feature,
    name: str = UNSET,
    description: str = UNSET,
    type: str = UNSET,
    unit: str = UNSET,
    levels: Sequence[LevelSpec | dict] = UNSET,
    metered: bool = UNSET,
    reset_period: str = UNSET,
    reset_anchor: str = UNSET,
) -> Feature:
    """Change a feature's editable fields. Key, product and module are fixed; the type only while draft."""
    feature = Feature.objects.select_for_update().get(pk=feature.pk)
    if name is not UNSET:
        name = validate_name(name)
        if Feature.objects.filter(workspace_id=feature.workspace_id, name=name).exclude(pk=feature.pk).exists():
            raise Conflict(f"Another feature is already named '{name}'.", code="name_taken", field="name")
        feature.name = name
    if description is not UNSET:
        feature.description = description or ""
    if type is not UNSET and type != feature.type:
        if feature.status != Lifecycle.DRAFT:
            raise DomainError(
                f"The type of {feature.status} feature '{feature.key}' cannot change.",
                code="immutable_field",
                field="type",
            )
        feature.type = type
    if unit is not UNSET:
        feature.unit = _validate_unit(unit)
    if metered is not UNSET and metered != feature.metered:
        feature.metered = metered
        feature.metering_version += 1
        feature_id = feature.pk
        transaction.on_commit(lambda: _allowance_counters_rebuild_enqueue(feature_id))
    if reset_period is not UNSET:
        feature.reset_period = reset_period
    if reset_anchor is not UNSET:
        feature.reset_anchor = reset_anchor
    current = [LevelSpec(lv.value, lv.name, lv.is_unlimited) for lv in feature.levels.all()]
    specs = validate_levels(feature_type=feature.type, levels=current if levels is UNSET else levels)
    validate_metering(
        feature_type=feature.type,
        metered=feature.metered,
        reset_period=feature.reset_period,
        reset_anchor=feature.reset_anchor,
    )
    feature.resource_version = next_resource_version(feature.resource_version)
    _save(feature)
    if specs != current:
        _levels_replace(feature=feature, specs=specs)
    return feature


def _allowance_counters_rebuild_enqueue(feature_id: int) -> None:
    """Queue the rebuild of a feature's allowance counters (after COMMIT). Never raises: the sweep catches a
    message that could not be sent."""
    try:
        # A process that imported the task (a worker, the tests) honours task_always_eager; others send by name.
        task = current_app.tasks.get(ALLOWANCE_COUNTERS_REBUILD_TASK)
        if task is not None:
            task.apply_async(args=[feature_id], retry=False)
        else:
            current_app.send_task(ALLOWANCE_COUNTERS_REBUILD_TASK, args=[feature_id], retry=False)
    except Exception:
        logger.warning("Could not queue the allowance counter rebuild of feature %s; the sweep will.", feature_id)


def _levels_replace(*, feature: Feature, specs: list[LevelSpec]) -> None:
    FeatureLevel.objects.filter(feature=feature).delete()
    FeatureLevel.objects.bulk_create(
        FeatureLevel(
            workspace_id=feature.workspace_id,
            feature=feature,
            position=position,
            value=spec.value,
            name=spec.name,
            is_unlimited=spec.is_unlimited,
        )
        for position, spec in enumerate(specs)
    )


def _validate_unit(unit: Any) -> str:
    if unit in (None, ""):
        return ""
    if not isinstance(unit, str) or len(unit.strip()) > 50:
        raise DomainError("'unit' is a string of at most 50 characters.", code="invalid_value", field="unit")
    return unit.strip()


def feature_transition(*, feature: Feature, to_status: str) -> Feature:
    """Move a feature along draft → active → archived → active; nothing returns to draft."""
    return _lifecycle_move(feature, to_status=to_status)


def feature_activate(*, feature: Feature) -> Feature:
    return _lifecycle_activate(feature)


def feature_archive(*, feature: Feature) -> Feature:
    return _lifecycle_move(feature, to_status=Lifecycle.ARCHIVED)


def feature_reactivate(*, feature: Feature) -> Feature:
    return _lifecycle_reactivate(feature)


# ---------------------------------------------------------------------------
# Items (plans and add-ons)
# ---------------------------------------------------------------------------


@transaction.atomic
def item_create(
    *, workspace: Workspace, key: str, name: str, type: str = Item.Type.PLAN, description: str = ""
) -> Item:
    """Create a draft plan or add-on."""
    key = validate_key(key, field="id")
    name = validate_name(name)
    if type not in Item.Type.values:
        raise DomainError(f"Unknown item type '{type}': use plan or addon.", code="invalid_value", field="type")
    workspace = _lock_workspace(workspace)
    if Item.objects.filter(workspace=workspace, key=key).exists():
        raise Conflict(f"An item with key '{key}' already exists.", code="item_exists", field="id")
    if Item.objects.filter(workspace=workspace, name=name).exists():
        raise Conflict(f"Another item is already named '{name}'.", code="name_taken", field="name")
    item = Item(
        workspace=workspace,
        key=key,
        name=name,
        type=type,
        description=description,
        status=Lifecycle.DRAFT,
        resource_version=next_resource_version(0),
    )
    _save(item)
    return item


@transaction.atomic
def item_update(*, item: Item, name: str = UNSET, description: str = UNSET) -> Item:
    """Rename or describe an item; its key and type never change."""
    item = Item.objects.select_for_update().get(pk=item.pk)
    if name is not UNSET:
        name = validate_name(name)
        if Item.objects.filter(workspace_id=item.workspace_id, name=name).exclude(pk=item.pk).exists():
            raise Conflict(f"Another item is already named '{name}'.", code="name_taken", field="name")
        item.name = name
    if description is not UNSET:
        item.description = description or ""
    item.resource_version = next_resource_version(item.resource_version)
    _save(item, update_fields=["name", "description", "resource_version", "updated_at"])
    return item


def item_transition(*, item: Item, to_status: str) -> Item:
    """Move an item along draft → active → archived → active; nothing returns to draft."""
    return _lifecycle_move(item, to_status=to_status)


def item_activate(*, item: Item) -> Item:
    return _lifecycle_activate(item)


def item_archive(*, item: Item) -> Item:
    return _lifecycle_move(item, to_status=Lifecycle.ARCHIVED)


def item_reactivate(*, item: Item) -> Item:
    return _lifecycle_reactivate(item)


# ---------------------------------------------------------------------------
# Registration on first sight: the bulk service ingestion calls
# ---------------------------------------------------------------------------


# Events that name no product register their features under this product.
DEFAULT_PRODUCT = "default"
HIERARCHY_CONFLICT = "hierarchy_conflict"
UNKNOWN_FEATURE = "unknown_feature"


class FeatureReference(Protocol):
    """What one ingested event names: its position in the batch and its feature's place in the hierarchy."""

    index: int
    feature_key: str
    product_key: str | None
    module_key: str | None
    # The display names the event gave instead of keys ("Project Created"): what new ones are named.
    product_name: str | None
    module_name: str | None
    feature_name: str | None


@dataclass
class FeatureResolution:
    """Batch index → feature id for the events whose feature is placed, and why the others are refused."""

    feature_ids: dict[int, int]
    refused: dict[int, DomainError]


@dataclass
class _CatalogState:
    products: set[str]
    modules: dict[str, str]  # module key → product key
    features: dict[str, tuple[str, str | None]]  # feature key → (product key, module key)
    feature_ids: dict[str, int]


def _catalog_load(*, workspace_id: int, events: Sequence[FeatureReference]) -> _CatalogState:
    feature_keys = {e.feature_key for e in events}
    module_keys = {e.module_key for e in events if e.module_key}
    product_keys = {e.product_key for e in events if e.product_key} | {DEFAULT_PRODUCT}
    features: dict[str, tuple[str, str | None]] = {}
    feature_ids: dict[str, int] = {}
    for key, pk, product_key, module_key in Feature.objects.filter(
        workspace_id=workspace_id, key__in=feature_keys
    ).values_list("key", "pk", "product__key", "module__key"):
        features[key] = (product_key, module_key)
        feature_ids[key] = pk
    if feature_keys <= features.keys():
        # Every feature exists (the steady state): its own row is enough to check the hierarchy.
        return _CatalogState(products=set(), modules={}, features=features, feature_ids=feature_ids)
    modules = dict(
        Module.objects.filter(workspace_id=workspace_id, key__in=module_keys).values_list("key", "product__key")
    )
    products = set(
        Product.objects.filter(workspace_id=workspace_id, key__in=product_keys).values_list("key", flat=True)
    )
    return _CatalogState(products=products, modules=modules, features=features, feature_ids=feature_ids)


@dataclass
class _CatalogPlan:
    placement: dict[int, str] = field(default_factory=dict)  # event index → feature key (existing or planned)
    refused: dict[int, DomainError] = field(default_factory=dict)
    new_products: list[str] = field(default_factory=list)
    new_modules: dict[str, str] = field(default_factory=dict)
    new_features: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # What the new products, modules and features are named: the event's display name, else the key.
    names: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def needs_registration(self) -> bool:
        return bool(self.new_products or self.new_modules or self.new_features)


def _catalog_plan(
    *,
    events: Sequence[FeatureReference],
    state: _CatalogState,
    register: bool,
    budgets: dict[str, int] | None = None,
    locked: Workspace | None = None,
) -> _CatalogPlan:
    """Place every event's feature in the hierarchy, in batch order; plan what must be registered.

    `budgets` (free slots per cap, read under the lock of `locked`) is None when only asking whether anything
    new is needed.
    """
    plan = _CatalogPlan()
    products = set(state.products)
    modules = dict(state.modules)
    features = dict(state.features)

    def reject(event: FeatureReference, code: str, message: str, field_name: str) -> None:
        plan.refused[event.index] = Conflict(message, code=code, field=field_name)

    for event in events:
        placed = features.get(event.feature_key)
        if placed is not None:
            product_key, module_key = placed
            if event.product_key is not None and event.product_key != product_key:
                reject(
                    event,
                    HIERARCHY_CONFLICT,
                    f"Feature '{event.feature_key}' belongs to product '{product_key}', not '{event.product_key}'.",
                    "product_id",
                )
            elif event.module_key is not None and event.module_key != module_key:
                where = f"module '{module_key}'" if module_key else "no module"
                reject(
                    event,
                    HIERARCHY_CONFLICT,
                    f"Feature '{event.feature_key}' belongs to {where}, not module '{event.module_key}'.",
                    "module_id",
                )
            else:
                plan.placement[event.index] = event.feature_key
            continue
        if not register:
            plan.refused[event.index] = DomainError(
                f"No feature '{event.feature_key}' in this workspace.", code=UNKNOWN_FEATURE, field="feature_id"
            )
            continue
        # A new feature: it goes under the named module (whose product it inherits) and product.
        module_key = event.module_key
        if module_key is not None and module_key in modules:
            product_key = modules[module_key]
            if event.product_key is not None and event.product_key != product_key:
                reject(
                    event,
                    HIERARCHY_CONFLICT,
                    f"Module '{module_key}' belongs to product '{product_key}', not '{event.product_key}'.",
                    "module_id",
                )
                continue
        else:
            product_key = event.product_key or DEFAULT_PRODUCT
        need_product = product_key not in products
        need_module = module_key is not None and module_key not in modules
        if budgets is not None:
            needed = {"products": need_product, "modules": need_module, "features": True}
            full = next((what for what in CAPS if needed[what] and budgets[what] <= 0), None)
            if full is not None:
                plan.refused[event.index] = _cap_reached(workspace=locked, what=full, field=_CAP_FIELDS[full])
                continue
            budgets["products"] -= need_product
            budgets["modules"] -= need_module
            budgets["features"] -= 1
        if need_product:
            products.add(product_key)
            plan.new_products.append(product_key)
            plan.names[("product", product_key)] = (
                event.product_name if event.product_key == product_key and event.product_name else product_key
            )
        if need_module:
            modules[module_key] = product_key
            plan.new_modules[module_key] = product_key
            plan.names[("module", module_key)] = event.module_name or module_key
        features[event.feature_key] = (product_key, module_key)
        plan.new_features[event.feature_key] = (product_key, module_key)
        plan.names[("feature", event.feature_key)] = event.feature_name or event.feature_key
        plan.placement[event.index] = event.feature_key
    return plan


def catalog_features_resolve(
    *,
    workspace: Workspace,
    events: Sequence[FeatureReference],
    register: bool,
    known: dict[str, tuple[int, str, str | None]] | None = None,
) -> FeatureResolution:
    """Place each event's feature in the hierarchy; with `register`, create the products, modules and draft
    features seen for the first time, within the workspace's caps (the same check and message as
    product_create / module_create / feature_create). `known` (key → id, product key, module key) spares the
    lookup when the caller already read every feature."""
    if known is not None and {e.feature_key for e in events} <= known.keys():
        state = _CatalogState(
            products=set(),
            modules={},
            features={key: (product, module) for key, (_, product, module) in known.items()},
            feature_ids={key: pk for key, (pk, _, _) in known.items()},
        )
    else:
        state = _catalog_load(workspace_id=workspace.pk, events=events)
    plan = _catalog_plan(events=events, state=state, register=register)
    if plan.needs_registration:
        locked = _lock_workspace(workspace)
        state = _catalog_load(workspace_id=workspace.pk, events=events)
        budgets = {what: _cap_room(workspace=locked, what=what) for what in CAPS}
        plan = _catalog_plan(events=events, state=state, register=register, budgets=budgets, locked=locked)
        if plan.needs_registration:
            state.feature_ids.update(_catalog_register(workspace_id=workspace.pk, plan=plan))
    feature_ids = {index: state.feature_ids[key] for index, key in plan.placement.items()}
    return FeatureResolution(feature_ids=feature_ids, refused=plan.refused)


def _catalog_register(*, workspace_id: int, plan: _CatalogPlan) -> dict[str, int]:
    """Create the planned products, modules and draft features; return the new features' ids by key."""
    version = next_resource_version(0)
    if plan.new_products:
        Product.objects.bulk_create(
            [
                Product(workspace_id=workspace_id, key=key, name=plan.names[("product", key)], resource_version=version)
                for key in plan.new_products
            ],
            ignore_conflicts=True,
        )
    product_keys = {p for p, _ in plan.new_features.values()} | set(plan.new_modules.values())
    product_ids = dict(Product.objects.filter(workspace_id=workspace_id, key__in=product_keys).values_list("key", "pk"))
    if plan.new_modules:
        Module.objects.bulk_create(
            [
                Module(
                    workspace_id=workspace_id,
                    product_id=product_ids[product_key],
                    key=key,
                    name=plan.names[("module", key)],
                    resource_version=version,
                )
                for key, product_key in plan.new_modules.items()
            ],
            ignore_conflicts=True,
        )
    module_keys = {m for _, m in plan.new_features.values() if m}
    module_ids = dict(Module.objects.filter(workspace_id=workspace_id, key__in=module_keys).values_list("key", "pk"))
    created: dict[str, int] = {}
    pending = dict(plan.new_features)
    for _attempt in range(5):
        names = _feature_names(workspace_id=workspace_id, wanted={key: plan.names[("feature", key)] for key in pending})
        Feature.objects.bulk_create(
            [
                Feature(
                    workspace_id=workspace_id,
                    product_id=product_ids[product_key],
                    module_id=module_ids[module_key] if module_key else None,
                    key=key,
                    name=names[key],
                    status=Lifecycle.DRAFT,
                    resource_version=version,
                )
                for key, (product_key, module_key) in pending.items()
            ],
            ignore_conflicts=True,
        )
        found = dict(Feature.objects.filter(workspace_id=workspace_id, key__in=list(pending)).values_list("key", "pk"))
        created.update(found)
        pending = {key: place for key, place in pending.items() if key not in found}
        if not pending:
            return created
    raise RuntimeError(f"Could not register features {sorted(pending)}: their names kept being taken.")


def _feature_names(*, workspace_id: int, wanted: dict[str, str]) -> dict[str, str]:
    """A new feature gets the name it was wanted under (its display name, else its key); if another feature
    has that name, `name (2)`, `name (3)`, …"""
    candidates = {key: [base] + [f"{base} ({n})" for n in range(2, 12)] for key, base in wanted.items()}
    all_names = [name for names in candidates.values() for name in names]
    taken = set(Feature.objects.filter(workspace_id=workspace_id, name__in=all_names).values_list("name", flat=True))
    chosen: dict[str, str] = {}
    for key in sorted(wanted):
        for name in candidates[key]:
            if name not in taken:
                break
        else:
            base = wanted[key]
            n = 12
            while (
                f"{base} ({n})" in taken
                or Feature.objects.filter(workspace_id=workspace_id, name=f"{base} ({n})").exists()
            ):
                n += 1
            name = f"{base} ({n})"
        taken.add(name)
        chosen[key] = name
    return chosen
