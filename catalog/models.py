"""The catalog: products > modules > features (with levels), and items (plans and add-ons).

Keys are immutable and statuses move only along the lifecycle table; both rules are also enforced by
PostgreSQL triggers (see migration 0002), so no path (admin, API, shell, raw UPDATE) can break them.
"""

import re

from django.db import models
from django.db.models import Q

from accounts.models import Workspace

KEY_MAX_LENGTH = 64
KEY_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"
KEY_PATTERN = re.compile(KEY_REGEX)
# KEY_REGEX in words, for messages: "'id' " + KEY_RULE, "A key " + KEY_RULE.
KEY_RULE = "may contain only letters, digits, '_', '.', ':' and '-', and must start with a letter or digit"
# Numeric level and entitlement values are counts compared with bigint sums: 0 … 2⁶³ − 1, ASCII digits.
LEVEL_NUMBER_MAX = 2**63 - 1


def level_number(value: str) -> int | None:
    """The whole number a level or entitlement value spells (ASCII digits, ≤ LEVEL_NUMBER_MAX), else None."""
    if not value or len(value) > 19 or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if number <= LEVEL_NUMBER_MAX else None


class Lifecycle(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"


# The allowed moves. One table, read by the transition service and mirrored by the database trigger.
LIFECYCLE_MOVES: dict[str, frozenset[str]] = {
    Lifecycle.DRAFT: frozenset({Lifecycle.ACTIVE}),
    Lifecycle.ACTIVE: frozenset({Lifecycle.ARCHIVED}),
    Lifecycle.ARCHIVED: frozenset({Lifecycle.ACTIVE}),
}


class Product(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="products")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    resource_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="catalog_product_unique_key"),
            models.CheckConstraint(condition=Q(key__regex=KEY_REGEX), name="catalog_product_key_format"),
        ]

    def __str__(self) -> str:
        return self.name or self.key


class Module(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="modules")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="modules")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    resource_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="catalog_module_unique_key"),
            models.CheckConstraint(condition=Q(key__regex=KEY_REGEX), name="catalog_module_key_format"),
        ]

    def __str__(self) -> str:
        return self.name or self.key


class Feature(models.Model):
    class Type(models.TextChoices):
        SWITCH = "switch", "Switch (on/off)"
        CUSTOM = "custom", "Custom levels"
        QUANTITY = "quantity", "Quantity"
        RANGE = "range", "Range"

    class ResetPeriod(models.TextChoices):
        NONE = "none", "Never"
        DAY = "day", "Daily"
        WEEK = "week", "Weekly"
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    class ResetAnchor(models.TextChoices):
        TERM = "term", "Subscription term"
        CALENDAR = "calendar", "UTC calendar"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="features")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="features")
    module = models.ForeignKey(Module, null=True, blank=True, on_delete=models.PROTECT, related_name="features")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Lifecycle.choices, default=Lifecycle.DRAFT)
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.SWITCH)
    unit = models.CharField(max_length=50, blank=True, help_text="Singular, e.g. 'seat'; pluralised for display.")
    metered = models.BooleanField(default=False)
    reset_period = models.CharField(max_length=8, choices=ResetPeriod.choices, default=ResetPeriod.NONE)
    reset_anchor = models.CharField(max_length=8, choices=ResetAnchor.choices, default=ResetAnchor.CALENDAR)
    # Bumped each time `metered` changes: the allowance counters are rebuilt for this version (see
    # usage/allowances.py), so a switch they have not caught up with yet is visible.
    metering_version = models.PositiveIntegerField(default=0)
    resource_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="catalog_feature_unique_key"),
            # PostgreSQL compares text case-sensitively, so "Export" and "export" are two names.
            models.UniqueConstraint(fields=["workspace", "name"], name="catalog_feature_unique_name"),
            models.CheckConstraint(condition=Q(key__regex=KEY_REGEX), name="catalog_feature_key_format"),
            models.CheckConstraint(condition=Q(status__in=Lifecycle.values), name="catalog_feature_status_valid"),
            models.CheckConstraint(
                condition=Q(type__in=["switch", "custom", "quantity", "range"]), name="catalog_feature_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(reset_period__in=["none", "day", "week", "month", "year"]),
                name="catalog_feature_reset_period_valid",
            ),
            models.CheckConstraint(
                condition=Q(reset_anchor__in=["term", "calendar"]), name="catalog_feature_reset_anchor_valid"
            ),
            models.CheckConstraint(
                condition=Q(metered=False) | Q(type__in=["quantity", "range"]),
                name="catalog_feature_metered_needs_quantity",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "product", "status"], name="catalog_feature_product_idx")]

    def __str__(self) -> str:
        return self.name or self.key

    @property
    def unit_plural(self) -> str:
        return pluralize_unit(self.unit)


class FeatureLevel(models.Model):
    """One ordered level of a feature: none for switch, (min, max) for range, one or more otherwise."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="levels")
    position = models.PositiveSmallIntegerField()
    value = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    is_unlimited = models.BooleanField(default=False)

    class Meta:
        ordering = ["feature", "position"]
        constraints = [
            models.UniqueConstraint(fields=["feature", "position"], name="catalog_featurelevel_unique_position"),
            models.UniqueConstraint(fields=["feature", "value"], name="catalog_featurelevel_unique_value"),
            models.CheckConstraint(condition=~Q(value=""), name="catalog_featurelevel_value_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.value})"


class Item(models.Model):
    """A plan or an add-on that grants feature entitlements."""

    class Type(models.TextChoices):
        PLAN = "plan", "Plan"
        ADDON = "addon", "Add-on"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.PLAN)
    status = models.CharField(max_length=8, choices=Lifecycle.choices, default=Lifecycle.DRAFT)
    resource_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="catalog_item_unique_key"),
            models.UniqueConstraint(fields=["workspace", "name"], name="catalog_item_unique_name"),
            models.CheckConstraint(condition=Q(key__regex=KEY_REGEX), name="catalog_item_key_format"),
            models.CheckConstraint(condition=Q(type__in=["plan", "addon"]), name="catalog_item_type_valid"),
            models.CheckConstraint(condition=Q(status__in=Lifecycle.values), name="catalog_item_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name or self.key


def pluralize_unit(unit: str) -> str:
    """English plural of a unit for display: seat → seats, license → licenses, query → queries, box → boxes."""
    if not unit:
        return unit
    lower = unit.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return unit + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return unit[:-1] + "ies"
    return unit + "s"
