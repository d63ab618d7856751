"""Entitlements: what items grant, what subscriptions hold and override, and the allowance usage counters.

Values are strings as in Chargebee: "true"/"false" for switches, an integer or "unlimited" for quantity and
range features, a level's value for custom features. They are validated against the feature by
`entitlements.values.value_normalise` before any write.
"""

from django.db import models
from django.db.models import F, Q

from accounts.models import Account, Workspace
from catalog.models import Feature, Item, Lifecycle

# The largest |quantity| one usage event or record carries, and the largest quantity a check asks about.
MAX_QUANTITY = 1_000_000_000
# Idempotency keys of usage events (event_id), unique per workspace forever; records keep them too.
EVENT_ID_MAX_LENGTH = 128
SUBSCRIPTION_ID_MAX_LENGTH = 64

REFUSAL_REASONS = ["limit_exceeded", "not_entitled", "unknown_account", "unknown_feature"]


class ItemEntitlement(models.Model):
    """The value a plan or add-on grants for one feature."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="entitlements")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="item_entitlements")
    value = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item", "feature"]
        constraints = [
            models.UniqueConstraint(fields=["item", "feature"], name="entitlements_itementitlement_unique_feature"),
            models.CheckConstraint(condition=~Q(value=""), name="entitlements_itementitlement_value_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.feature} = {self.value}"


class Subscription(models.Model):
    """An account's subscription to one or more items, named by the vendor's external id."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        IN_TRIAL = "in_trial", "In trial"
        CANCELLED = "cancelled", "Cancelled"

    # Only these statuses grant anything (GRANTING_SQL below spells them for raw queries).
    GRANTING = (Status.ACTIVE, Status.IN_TRIAL)

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="subscriptions")
    external_id = models.CharField(max_length=SUBSCRIPTION_ID_MAX_LENGTH)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    current_term_start = models.DateTimeField(null=True, blank=True)
    current_term_end = models.DateTimeField(null=True, blank=True)
    items = models.ManyToManyField(Item, related_name="subscriptions", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_id"], name="entitlements_subscription_unique_external_id"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "in_trial", "cancelled"]),
                name="entitlements_subscription_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="entitlements_subscription_external_id_not_empty"
            ),
            models.CheckConstraint(
                condition=Q(current_term_start__isnull=True)
                | Q(current_term_end__isnull=True)
                | Q(current_term_end__gt=F("current_term_start")),
                name="entitlements_subscription_term_ordered",
            ),
        ]
        indexes = [models.Index(fields=["account", "status"], name="entl_subscription_acct_idx")]

    def __str__(self) -> str:
        return self.external_id


# Subscription.GRANTING as an SQL list, `('active', 'in_trial')`: `s.status IN {GRANTING_SQL}` in raw queries.
GRANTING_SQL = "(" + ", ".join(f"'{status}'" for status in Subscription.GRANTING) + ")"

# Items grant what they hold unless they are drafts (archived ones keep granting to the subscriptions that have
# them): the join every raw grant query makes from a subscription's items (`si`) to the items that grant.
ITEM_GRANTING = (Lifecycle.ACTIVE, Lifecycle.ARCHIVED)
GRANTING_ITEMS_JOIN_SQL = (
    "JOIN catalog_item i ON i.id = si.item_id AND i.status IN ("
    + ", ".join(f"'{status}'" for status in ITEM_GRANTING)
    + ")"
)


class SubscriptionEntitlement(models.Model):
    """An override (or addition) of one feature's value for one subscription, optionally expiring."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="overrides")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="subscription_entitlements")
    value = models.CharField(max_length=64)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["subscription", "feature"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "feature"], name="entitlements_subscriptionentitlement_unique_feature"
            ),
            models.CheckConstraint(condition=~Q(value=""), name="entitlements_subscriptionentitlement_value_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.feature} = {self.value}"


class AllowanceUsageDaily(models.Model):
    """Net quantity of an account's events for a metered feature on one UTC day. Upserted by
    `allowance_usage_apply` in the transaction that stores the events."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    quantity = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "feature", "day"], name="entitlements_allowanceusagedaily_unique_day"
            ),
        ]
        # A feature's counters of one day: what a rebuild replaces (and the foreign key's index).
        indexes = [models.Index(fields=["feature", "day"], name="entl_usage_daily_feat_day_idx")]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.feature_id}@{self.day}={self.quantity}"


class AllowanceUsageEntry(models.Model):
    """One metered event's quantity at its timestamp, so periods that start inside a day (term-anchored) are
    summed exactly over their partial first and last days."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="+", db_index=False)
    occurred_at = models.DateTimeField()
    quantity = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(
                fields=["account", "feature", "occurred_at"],
                include=["quantity"],
                name="entl_usage_entry_acct_feat_idx",
            ),
            models.Index(fields=["workspace"], name="entl_usage_entry_ws_idx"),
            # A feature's entries of one day: what a rebuild replaces (and the foreign key's index).
            models.Index(fields=["feature", "occurred_at"], name="entl_usage_entry_feat_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.feature_id}@{self.occurred_at}={self.quantity}"


class AllowanceCounterState(models.Model):
    """The metering version of a feature (`Feature.metering_version`) its allowance counters were last rebuilt
    for. A feature without a row is at version 0: metered or not since it was created, its counters were kept
    from its first event. While the versions differ, a rebuild is pending (usage/allowances.py)."""

    feature = models.OneToOneField(Feature, primary_key=True, on_delete=models.CASCADE, related_name="+")
    metering_version = models.PositiveIntegerField()
    rebuilt_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.feature_id}@{self.metering_version}"


class RecordOutcome(models.Model):
    """The answer `POST /api/v1/usage/record` gave for an event id, so a replay gets the same answer and
    records nothing new. Refusals are stored too (they have no UsageEvent)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=EVENT_ID_MAX_LENGTH)
    recorded = models.BooleanField()
    reason = models.CharField(max_length=32, blank=True)
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "event_id"], name="entitlements_recordoutcome_unique_event_id"
            ),
            models.CheckConstraint(
                condition=Q(recorded=True, reason="") | Q(recorded=False, reason__in=REFUSAL_REASONS),
                name="entitlements_recordoutcome_reason_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {'recorded' if self.recorded else self.reason}"
