"""Raw usage events (append-only) and the marks that tell rollups which (workspace, UTC day) changed."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from accounts.models import Account, EndUser, Workspace
from catalog.models import Feature
from entitlements.models import EVENT_ID_MAX_LENGTH, MAX_QUANTITY


class UsageEvent(models.Model):
    """One usage event as received. Never updated; a negative quantity reverts earlier usage."""

    class Source(models.TextChoices):
        EVENTS = "events", "POST /api/v1/events"
        RECORD = "record", "POST /api/v1/usage/record"

    id = models.BigAutoField(primary_key=True)
    # No single-column indexes on workspace (every composite index below leads with it) nor on end_user (no
    # read filters by it; only deleting an end user would scan): each index is paid on every ingested row.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="+")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    quantity = models.BigIntegerField()
    # NULL, not "", for "no id": the partial unique constraint below must ignore events without one.
    event_id = models.CharField(max_length=EVENT_ID_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    properties = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.EVENTS)

    class Meta:
        constraints = [
            # An event id names one event in a workspace forever: a replay is a duplicate, not a new event.
            models.UniqueConstraint(
                fields=["workspace", "event_id"],
                condition=Q(event_id__isnull=False),
                name="usage_usageevent_unique_event_id",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=-MAX_QUANTITY, quantity__lte=MAX_QUANTITY) & ~Q(quantity=0),
                name="usage_usageevent_quantity_bounds",
            ),
            models.CheckConstraint(condition=Q(source__in=["events", "record"]), name="usage_usageevent_source_valid"),
        ]
        indexes = [
            models.Index(fields=["workspace", "occurred_at"], name="usage_event_ws_time_idx"),
            models.Index(fields=["workspace", "account", "feature", "occurred_at"], name="usage_event_acct_feat_idx"),
        ]


class UsageDayDirty(models.Model):
    """A (workspace, UTC day) whose events changed since its rollup, as one or more shard rows. Ingestion
    upserts its shard's row (`pg_backend_pid() % UPTAKE_DIRTY_SHARDS`) in the same transaction as the events,
    bumping `version`: concurrent transactions of one workspace and day bump different rows instead of queueing
    on one row lock until COMMIT. The day is dirty while any shard row exists; a rollup reads every shard row's
    version, recomputes the day once and deletes each row only if its `version` is still the one it read, so a
    day touched during a rollup is rolled up again."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    shard = models.SmallIntegerField(default=0, db_default=0)
    version = models.BigIntegerField(default=1)
    marked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day", "shard"], name="usage_usagedaydirty_unique_day_shard"),
            models.CheckConstraint(condition=Q(shard__gte=0), name="usage_usagedaydirty_shard_not_negative"),
        ]


class EventOutbox(models.Model):
    """Stored events that subscribers (see EventSubscription) have not processed yet. Ingestion writes the row
    in the events' transaction and publishes it after COMMIT; the subscriber deletes it once processed, and
    sweeps rows older than a grace period, so a message lost at COMMIT loses no events."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    event_ids = ArrayField(models.BigIntegerField())
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="usage_eventoutbox_created")]


class EventSubscription(models.Model):
    """A workspace whose stored events someone processes after COMMIT (today: event-driven alert pipelines).
    Maintained by the subscriber's services; ingestion reads it to decide whether to write an outbox row."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, primary_key=True, related_name="+")
    updated_at = models.DateTimeField()


class IngestionProblem(models.Model):
    """A message that was answered 200 (as the Segment API answers messages it cannot use) but could not be
    stored as usage, with the reason: nothing is dropped without a trace. Shown to workspace admins (dashboard
    page, admin, a count in the dashboard header); rows older than UPTAKE_INGESTION_PROBLEMS_RETENTION_DAYS, and
    beyond UPTAKE_INGESTION_PROBLEMS_MAX_ROWS per workspace, are pruned by a periodic task."""

    class Source(models.TextChoices):
        SEGMENT = "segment", "Segment tracking API"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.SEGMENT)
    reason = models.CharField(max_length=40)
    message = models.TextField()
    message_type = models.CharField(max_length=16, blank=True)
    # The client's messageId: a replayed message records its problem once.
    message_id = models.CharField(max_length=EVENT_ID_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    payload_excerpt = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "message_id", "reason"],
                condition=Q(message_id__isnull=False),
                name="usage_ingestionproblem_unique_message",
            ),
            models.CheckConstraint(condition=Q(source__in=["segment"]), name="usage_ingestionproblem_source_valid"),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="usage_problem_ws_created"),
            models.Index(fields=["created_at"], name="usage_problem_created"),
        ]

    def __str__(self) -> str:
        return f"{self.reason}: {self.message[:80]}"


class SegmentUser(models.Model):
    """An end user as Segment clients name it: a `userId` (or `anonymousId`) that is workspace-wide, while
    Uptake's end users belong to one account. Holds the traits of `identify` calls and the account of the last
    `group` call, so a `track` without `context.groupId` finds its account and an `identify` that arrives before
    any `group` is applied when the user is grouped."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    user_id = models.CharField(max_length=64)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    email = models.EmailField(blank=True)
    traits = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user_id"], name="usage_segmentuser_unique_user"),
            models.CheckConstraint(condition=~Q(user_id=""), name="usage_segmentuser_user_id_not_empty"),
        ]

    def __str__(self) -> str:
        return self.user_id


class SegmentIgnoredDay(models.Model):
    """How many `page` and `screen` calls a workspace sent per UTC day: acknowledged and counted, not stored
    (they describe views, not feature use)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=8)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day", "kind"], name="usage_segmentignoredday_unique"),
            models.CheckConstraint(condition=Q(kind__in=["page", "screen"]), name="usage_segmentignoredday_kind_valid"),
        ]


class SegmentMapping(models.Model):
    """Where a workspace's Segment tracking plan keeps what Uptake needs, when it differs from the defaults
    (property and trait names; edited in the admin). A workspace without a row uses the defaults."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="segment_mapping")
    feature_property = models.CharField(max_length=64, default="feature_id")
    module_property = models.CharField(max_length=64, default="module_id")
    product_property = models.CharField(max_length=64, default="product_id")
    quantity_property = models.CharField(max_length=64, default="quantity")
    account_property = models.CharField(max_length=64, default="account_id")
    plan_trait = models.CharField(max_length=64, default="plan")
    owner_email_trait = models.CharField(max_length=64, default="owner_email")

    def __str__(self) -> str:
        return f"Segment mapping of {self.workspace}"
