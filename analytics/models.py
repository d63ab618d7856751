"""Rollup (count) tables computed from usage.UsageEvent. Every table is keyed by workspace (its primary key, the
natural key of the bucket, leads with it).

A rollup either recomputes whole UTC days from raw events (writing the rows that differ; rebuilds replace them),
or, for a day with a watermark (RollupWatermark), adds the aggregates of the day's events above it and moves the
watermark in the same transaction, so a rerun or a retry after a crash finds nothing left to add: no bucket is
ever counted twice. Reserved event prefixes are rolled up like any other feature and left out at query time
(the prefix list may change).
"""

from django.db import models
from django.db.models import Q

from accounts.models import Account, EndUser, Workspace
from catalog.models import Feature, Product

# Heatmap buckets are 15 minutes wide: every UTC offset in use (…, +05:30, +05:45, -03:30) is a multiple of
# 15 minutes, so each bucket falls inside exactly one local hour in any workspace timezone, DST included.
HEATMAP_BUCKET_MINUTES = 15

# Foreign keys of rollup tables carry no database constraint (db_constraint=False): rollups are derived data,
# rebuilt from raw events whose own foreign keys are enforced, and per-row FK checks on hundreds of thousands of
# recomputed rows per day dominated rollup time. Deleting a workspace, account, user or feature still cascades
# through Django's collector (on_delete=CASCADE), and verify_rollups compares every row with raw events.
# Nor do they carry single-column indexes (db_index=False): reads go through the composite (workspace, …)
# indexes, and four extra indexes per table were most of the cost of writing rollup rows. Deleting one
# feature, account or end user therefore scans the rollup tables (a rare admin operation).


def _rollup_fk(to) -> models.ForeignKey:
    """A rollup table's foreign key, as the comment above says: no database constraint, no single-column index."""
    return models.ForeignKey(to, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False)


class FeatureAccountDay(models.Model):
    """Net uses of one feature by one account on one UTC day."""

    pk = models.CompositePrimaryKey("workspace", "day", "feature", "account")
    workspace = _rollup_fk(Workspace)
    day = models.DateField()
    feature = _rollup_fk(Feature)
    account = _rollup_fk(Account)
    uses = models.BigIntegerField(help_text="Net sum of quantities, reversals included.")
    events = models.BigIntegerField(help_text="Number of raw events.")
    users = models.IntegerField(help_text="Distinct end users with an event that day.")
    last_at = models.DateTimeField(null=True, help_text="Latest occurred_at of a positive event that day.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(events__gt=0), name="analytics_featureaccountday_events_positive"),
            models.CheckConstraint(condition=Q(users__gte=0), name="analytics_featureaccountday_users_nonnegative"),
        ]
        indexes = [
            # Covering (INCLUDE) so that one account's or one feature's rows of a window are read from the
            # index alone: the table is in day order, so fetching them from the heap costs one page per
            # row.
            models.Index(
                fields=["workspace", "account", "day"],
                include=["feature_id", "uses", "events"],
                name="analytics_fad_account_cover",
            ),
            models.Index(
                fields=["workspace", "feature", "day"],
                include=["account_id", "uses"],
                name="analytics_fad_feature_cover",
            ),
        ]


class FeatureDay(models.Model):
    """Net uses of one feature on one UTC day (all accounts): totals, prior totals and sparklines read a few
    thousand rows instead of every (feature, account) pair. Recomputed from the day's FeatureAccountDay
    rows."""

    pk = models.CompositePrimaryKey("workspace", "feature", "day")
    workspace = _rollup_fk(Workspace)
    day = models.DateField()
    feature = _rollup_fk(Feature)
    uses = models.BigIntegerField()
    events = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(events__gt=0), name="analytics_featureday_events_positive"),
        ]


class AccountProductDay(models.Model):
    """Net uses of one account on one UTC day over all features of one product (a feature never changes
    product): account totals, the usage-drop and dormant lists, without per-feature rows. Used only when a
    query covers every feature of the product(s); recomputed from the day's FeatureAccountDay rows."""

    pk = models.CompositePrimaryKey("workspace", "product", "day", "account")
    workspace = _rollup_fk(Workspace)
    day = models.DateField()
    product = _rollup_fk(Product)
    account = _rollup_fk(Account)
    uses = models.BigIntegerField()
    events = models.BigIntegerField()
    last_at = models.DateTimeField(null=True, help_text="Latest occurred_at of a positive event that day.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(events__gt=0), name="analytics_accountproductday_events_positive"),
        ]


class ProductQuarterHour(models.Model):
    """Net uses of all features of one product in one 15-minute UTC bucket: the whole-product heatmap.
    Recomputed from the day's FeatureQuarterHour rows."""

    pk = models.CompositePrimaryKey("workspace", "product", "bucket")
    workspace = _rollup_fk(Workspace)
    bucket = models.DateTimeField(help_text="Start of the 15-minute UTC bucket.")
    product = _rollup_fk(Product)
    uses = models.BigIntegerField()
    events = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(events__gt=0), name="analytics_productquarterhour_events_positive"),
        ]


class FeatureQuarterHour(models.Model):
    """Net uses of one feature in one 15-minute UTC bucket (all accounts): the 7×24 heatmap source."""

    pk = models.CompositePrimaryKey("workspace", "bucket", "feature")
    workspace = _rollup_fk(Workspace)
    bucket = models.DateTimeField(help_text="Start of the 15-minute UTC bucket.")
    feature = _rollup_fk(Feature)
    uses = models.BigIntegerField()
    events = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(events__gt=0), name="analytics_featurequarterhour_events_positive"),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "feature", "bucket"],
                include=["uses"],
                name="analytics_fqh_feature_cover",
            )
        ]


class FeatureUserDay(models.Model):
    """One end user's net uses of one feature on one UTC day: distinct users over any window."""

    pk = models.CompositePrimaryKey("workspace", "day", "feature", "end_user")
    workspace = _rollup_fk(Workspace)
    day = models.DateField()
    feature = _rollup_fk(Feature)
    end_user = _rollup_fk(EndUser)
    account = _rollup_fk(Account)
    uses = models.BigIntegerField()
    events = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(events__gt=0), name="analytics_featureuserday_events_positive"),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "feature", "day"],
                include=["end_user_id", "account_id"],
                name="analytics_fud_feature_cover",
            )
        ]


class AccountFeatureLastSeen(models.Model):
    """When an account last used a feature (latest positive event): dormancy without scanning raw events."""

    pk = models.CompositePrimaryKey("workspace", "account", "feature")
    workspace = _rollup_fk(Workspace)
    account = _rollup_fk(Account)
    feature = _rollup_fk(Feature)
    last_seen_at = models.DateTimeField()


class RollupGeneration(models.Model):
    """Bumped in every rollup transaction of a workspace: analytics responses are cached under
    (token, generation), so a cached answer is never served once the rollups it was computed from changed."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    token = models.UUIDField(help_text="Random per row, so cache keys never collide across databases.")
    generation = models.BigIntegerField(default=1)
    rolled_up_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(generation__gte=1), name="analytics_rollupgeneration_positive"),
        ]


class RollupWatermark(models.Model):
    """The rollups of one (workspace, UTC day) count exactly that day's events with id ≤ `event_id`: the next
    rollup of the day adds the aggregates of its events with higher ids (events are append-only) instead of
    recomputing the whole day. No row: unknown, the day is recomputed whole (which sets it)."""

    pk = models.CompositePrimaryKey("workspace", "day")
    workspace = _rollup_fk(Workspace)
    day = models.DateField()
    event_id = models.BigIntegerField(help_text="Highest usage event id the day's rollups count.")
