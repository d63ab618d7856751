"""Raw usage events (append-only) and the marks that tell rollups which (workspace, UTC day) changed."""

from django.contrib.postgres.fields import ArrayField
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
    event_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
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


# ---------------------------------------------------------------------------------------------------------------
# Alert pipelines: trigger → filter → enrichment → destinations (code in usage/alerts/; see DESIGN.md)
# ---------------------------------------------------------------------------------------------------------------


class AlertPipeline(models.Model):
    """A rule that turns matching usage moments into messages for its destinations."""

    class TriggerType(models.TextChoices):
        EVENT = "event", "A matching usage event"
        THRESHOLD = "threshold", "An allowance crossing a threshold"
        PAID_FEATURE_ON_FREE_PLAN = "paid_feature_on_free_plan", "A free-plan account using a feature it lacks"
        DORMANT = "dormant", "An account gone dormant"
        USAGE_DROP = "usage_drop", "An account whose usage dropped"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alert_pipelines")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    trigger_type = models.CharField(max_length=32, choices=TriggerType.choices)
    # Validated by usage.alerts.services: features (keys), plans (labels), min_quantity, percent, days.
    trigger_config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="usage_alertpipeline_unique_name"),
            models.CheckConstraint(
                condition=Q(
                    trigger_type__in=["event", "threshold", "paid_feature_on_free_plan", "dormant", "usage_drop"]
                ),
                name="usage_alertpipeline_trigger_type_valid",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="usage_alertpipeline_name_not_empty"),
        ]
        indexes = [models.Index(fields=["workspace", "enabled", "trigger_type"], name="usage_alertpipeline_ws_idx")]

    def __str__(self) -> str:
        return self.name


class AlertDestination(models.Model):
    """Where a pipeline's alerts go. `secret` signs webhook bodies and is never shown back in full."""

    class Type(models.TextChoices):
        SLACK = "slack", "Slack incoming webhook"
        DISCORD = "discord", "Discord webhook"
        WEBHOOK = "webhook", "Generic webhook (HMAC-signed)"
        EMAIL = "email", "E-mail"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(AlertPipeline, on_delete=models.CASCADE, related_name="destinations")
    type = models.CharField(max_length=8, choices=Type.choices)
    url = models.URLField(max_length=2000, blank=True)
    to = models.CharField(max_length=1000, blank=True, help_text="Comma-separated e-mail addresses.")
    secret = models.CharField(max_length=200, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(default=60)
    # Off by default: @everyone, @here, role and user mentions in alert text are neutralised (opt-in).
    mentions = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(type__in=["slack", "discord", "webhook", "email"]), name="usage_alertdestination_type_valid"
            ),
            # E-mail goes to addresses, everything else to a URL: exactly one target, matching the type.
            models.CheckConstraint(
                condition=(Q(type="email") & ~Q(to="") & Q(url="")) | (~Q(type="email") & ~Q(url="") & Q(to="")),
                name="usage_alertdestination_target_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(rate_limit_per_minute__gte=1), name="usage_alertdestination_rate_limit_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} #{self.pk}"


class AlertDelivery(models.Model):
    """One message to one destination, and what became of it (the delivery log)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        COALESCED = "coalesced", "Coalesced into a summary"

    class Kind(models.TextChoices):
        ALERT = "alert", "Alert"
        SUMMARY = "summary", "Summary of rate-limited alerts"
        TEST = "test", "Test message"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(AlertPipeline, on_delete=models.CASCADE, related_name="deliveries")
    destination = models.ForeignKey(AlertDestination, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ALERT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Makes evaluation idempotent: a retried trigger task finds its deliveries already there.
    dedupe_key = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    summary = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="coalesced",
        help_text="For a coalesced alert: the summary message that carried it.",
    )
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "alert deliveries"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "failed", "coalesced"]),
                name="usage_alertdelivery_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["alert", "summary", "test"]), name="usage_alertdelivery_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False) | ~Q(status="sent"),
                name="usage_alertdelivery_sent_has_time",
            ),
            models.UniqueConstraint(
                fields=["destination", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="usage_alertdelivery_unique_dedupe_key",
            ),
        ]
        indexes = [
            models.Index(fields=["pipeline", "-id"], name="usage_alertdelivery_pipe_idx"),
            models.Index(fields=["destination", "status"], name="usage_alertdelivery_dest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} → {self.destination_id} ({self.status})"


class AlertRateWindow(models.Model):
    """Messages sent to one destination in one fixed minute, and how many were held back for the summary."""

    destination = models.ForeignKey(AlertDestination, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    sent = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["destination", "window_start"], name="usage_alertratewindow_unique_window")
        ]


class AlertThresholdMark(models.Model):
    """One alert per threshold per allowance period: the row exists once the alert was raised."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(AlertPipeline, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="+")
    threshold = models.PositiveSmallIntegerField()
    period_start = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "account", "feature", "threshold", "period_start"],
                name="usage_alertthresholdmark_unique_period",
            )
        ]


class AlertWindowMark(models.Model):
    """One dormant / usage-drop alert per account per evaluation window."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(AlertPipeline, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "account", "window_start"], name="usage_alertwindowmark_unique_window"
            )
        ]


class AlertEventsPending(models.Model):
    """Stored events whose alert evaluation has not run yet: an outbox. Ingestion writes the row in the events'
    transaction when the workspace has an enabled event-driven pipeline and queues its evaluation after
    COMMIT; the evaluation deletes it. When that task is lost (the broker was down at COMMIT, a worker died),
    the alerts sweep evaluates rows older than UPTAKE_ALERT_PENDING_GRACE_SECONDS, so no batch's alerts are
    lost. Evaluation is idempotent (deliveries are keyed by event), so a row evaluated twice alerts once."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    event_ids = ArrayField(models.BigIntegerField())
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="usage_alertpending_created")]
