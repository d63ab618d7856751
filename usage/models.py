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
