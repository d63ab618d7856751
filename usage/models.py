"""Raw usage events (append-only) and the marks that tell rollups which (workspace, UTC day) changed."""

from django.db import models
from django.db.models import Q

from accounts.models import Account, EndUser, Workspace
from catalog.models import Feature

MAX_ABS_QUANTITY = 1_000_000_000


class UsageEvent(models.Model):
    """One usage event as received. Never updated; a negative quantity reverts earlier usage."""

    class Source(models.TextChoices):
        EVENTS = "events", "POST /api/v1/events"
        RECORD = "record", "POST /api/v1/usage/record"

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="+")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    quantity = models.BigIntegerField()
    event_id = models.CharField(max_length=128, null=True, blank=True)
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
                condition=Q(quantity__gte=-MAX_ABS_QUANTITY, quantity__lte=MAX_ABS_QUANTITY) & ~Q(quantity=0),
                name="usage_usageevent_quantity_bounds",
            ),
            models.CheckConstraint(condition=Q(source__in=["events", "record"]), name="usage_usageevent_source_valid"),
        ]
        indexes = [
            models.Index(fields=["workspace", "occurred_at"], name="usage_event_ws_time_idx"),
            models.Index(fields=["workspace", "account", "feature", "occurred_at"], name="usage_event_acct_feat_idx"),
        ]


class UsageDayDirty(models.Model):
    """A (workspace, UTC day) whose events changed since its rollup. Ingestion upserts it in the same
    transaction as the events (bumping `version`); a rollup deletes it only if `version` is still the one it
    read, so a day touched during a rollup is rolled up again."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    version = models.BigIntegerField(default=1)
    marked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "day"], name="usage_usagedaydirty_unique_day")]
