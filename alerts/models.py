"""Alert pipelines: a trigger, a filter and a template per pipeline, the workspace's channels they post to, the
delivery log, rate windows per channel and the marks that make each alert go out once.

These models lived in the usage app until alerts became an app of its own; the migrations moved them without
copying rows (alerts/migrations/0001, 0002) and renamed the tables, while constraint and index names kept their
`usage_` prefix.
"""

from django.db import models
from django.db.models import Q

from accounts.models import Account, Workspace
from catalog.models import Feature


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
    # Validated by alerts.services: features (keys), plans (labels), min_quantity, percent, days.
    trigger_config = models.JSONField(default=dict, blank=True)
    channels = models.ManyToManyField(
        "AlertChannel", through="AlertPipelineChannel", related_name="pipelines", blank=True
    )
    # Validated by alerts.filters: {"match": "all"|"any", "conditions": [{"field", "op", "value"}]}; {} = none.
    filter = models.JSONField(default=dict, blank=True)
    # Validated by alerts.templates: {"title", "body"} with $event.*, $account.*, $user.* placeholders; {} = none.
    template = models.JSONField(default=dict, blank=True)
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


# Triggers evaluated per stored event (after ingestion's COMMIT, through usage's events outbox); the others are
# evaluated from the rollups on a beat schedule.
EVENT_TRIGGERS = (
    AlertPipeline.TriggerType.EVENT,
    AlertPipeline.TriggerType.THRESHOLD,
    AlertPipeline.TriggerType.PAID_FEATURE_ON_FREE_PLAN,
)


class AlertChannel(models.Model):
    """A workspace-level place alerts go (a Slack or Discord webhook, a signed webhook, e-mail addresses, a
    Telegram chat, a PostgreSQL table), shared by any number of pipelines. Its rate limit is its own, whatever
    the number of pipelines posting to it. `secret` (webhook signing), `token` (Telegram bot) and a PostgreSQL
    URL are never shown back in full."""

    class Type(models.TextChoices):
        SLACK = "slack", "Slack incoming webhook"
        DISCORD = "discord", "Discord webhook"
        WEBHOOK = "webhook", "Generic webhook (HMAC-signed)"
        EMAIL = "email", "E-mail"
        TELEGRAM = "telegram", "Telegram chat"
        POSTGRES = "postgres", "PostgreSQL table"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alert_channels")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=8, choices=Type.choices)
    # An http(s) URL, or for `postgres` the connection URL (a secret).
    url = models.CharField(max_length=2000, blank=True)
    to = models.CharField(max_length=1000, blank=True, help_text="Comma-separated e-mail addresses.")
    secret = models.CharField(max_length=200, blank=True)
    token = models.CharField(max_length=200, blank=True, help_text="Telegram bot token.")
    chat_id = models.CharField(max_length=100, blank=True, help_text="Telegram chat id or @channel name.")
    table = models.CharField(max_length=130, blank=True, help_text="PostgreSQL table ([schema.]name).")
    # One channel per target in a workspace (sha256 of type and target, set by alerts.services), so that one
    # Discord channel or Telegram chat has one rate budget.
    target_key = models.CharField(max_length=64)
    rate_limit_per_minute = models.PositiveIntegerField(default=60)
    # Off by default: @everyone, @here, role and user mentions in alert text are neutralised (opt-in).
    mentions = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(type__in=["slack", "discord", "webhook", "email", "telegram", "postgres"]),
                name="alerts_alertchannel_type_valid",
            ),
            # Exactly the target its type uses: addresses for e-mail, a URL for webhooks, a bot token and chat for
            # Telegram, a connection URL and table for PostgreSQL.
            models.CheckConstraint(
                condition=(Q(type="email") & ~Q(to="") & Q(url="") & Q(token="") & Q(chat_id="") & Q(table=""))
                | (
                    Q(type__in=["slack", "discord", "webhook"])
                    & ~Q(url="")
                    & Q(to="")
                    & Q(token="")
                    & Q(chat_id="")
                    & Q(table="")
                )
                | (Q(type="telegram") & ~Q(token="") & ~Q(chat_id="") & Q(url="") & Q(to="") & Q(table=""))
                | (Q(type="postgres") & ~Q(url="") & ~Q(table="") & Q(to="") & Q(token="") & Q(chat_id="")),
                name="alerts_alertchannel_target_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(rate_limit_per_minute__gte=1), name="alerts_alertchannel_rate_limit_positive"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="alerts_alertchannel_name_not_empty"),
            models.UniqueConstraint(fields=["workspace", "name"], name="alerts_alertchannel_unique_name"),
            models.UniqueConstraint(fields=["workspace", "target_key"], name="alerts_alertchannel_unique_target"),
        ]

    def __str__(self) -> str:
        return self.name


class AlertPipelineChannel(models.Model):
    """A pipeline posts to a channel; `position` keeps the order the pipeline lists its channels in."""

    pipeline = models.ForeignKey(AlertPipeline, on_delete=models.CASCADE, related_name="channel_links")
    # A channel in use cannot be deleted (alerts.services says by which pipelines).
    channel = models.ForeignKey(AlertChannel, on_delete=models.PROTECT, related_name="pipeline_links")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "channel"], name="alerts_alertpipelinechannel_unique"),
        ]


class AlertDelivery(models.Model):
    """One message to one channel, and what became of it (the delivery log). `pipeline` is empty for a channel's
    test messages and for rate-limit summaries, which may carry the alerts of several pipelines."""

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
    pipeline = models.ForeignKey(
        AlertPipeline, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
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
    # On a paced channel (Telegram), the send slot this delivery reserved for its next attempt (alerts.pacing);
    # kept once sent, so the chat's recent sends are these rows.
    send_after = models.DateTimeField(null=True, blank=True)
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
                fields=["pipeline", "channel", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="alerts_alertdelivery_unique_dedupe_key",
            ),
        ]
        indexes = [
            models.Index(fields=["pipeline", "-id"], name="usage_alertdelivery_pipe_idx"),
            models.Index(fields=["channel", "status"], name="usage_alertdelivery_dest_idx"),
            models.Index(
                fields=["channel", "-send_after"],
                condition=Q(send_after__isnull=False),
                name="alerts_alertdelivery_slot_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} → {self.channel_id} ({self.status})"


class AlertRateWindow(models.Model):
    """Messages sent to one channel in one fixed minute, and how many were held back for the summary."""

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    sent = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "window_start"], name="usage_alertratewindow_unique_window")
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
