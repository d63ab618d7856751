"""Admin for alert pipelines and channels: a pipeline's channels inline, channels with their secrets masked, a
read-only delivery log, and "send test message" actions. Staff see their workspaces' objects; superusers all."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from core.admin import WorkspaceScopedAdmin
from core.errors import DomainError
from core.staff import EDIT_ROLES

from .channels import CHANNEL_FIELDS, channel_test_send, channel_validate
from .destinations import channel_target_shown, channel_url_shown, mask_secret
from .models import AlertChannel, AlertDelivery, AlertPipeline, AlertPipelineChannel
from .services import alerts_subscription_sync, pipeline_test_send, trigger_validate


class ChannelForm(forms.ModelForm):
    """Validated by the same rules as the API (alerts.channels.channel_validate); its refusals are form errors."""

    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook signing secret. Leave empty to keep the stored one.",
    )
    token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Telegram bot token. Leave empty to keep the stored one.",
    )

    class Meta:
        model = AlertChannel
        fields = ["workspace", *CHANNEL_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.url:
            # Shown as everywhere else (credentials and webhook tokens masked); sent back as shown, it keeps the URL.
            self.initial["url"] = channel_url_shown(self.instance)
        for name in ("secret", "token"):
            stored = getattr(self.instance, name, "") if self.instance.pk else ""
            if stored:
                self.fields[name].help_text = f"Stored: {mask_secret(stored)}. Leave empty to keep it."

    def clean(self):
        data = super().clean()
        spec = {k: data.get(k) for k in CHANNEL_FIELDS if k != "name"}
        spec = {k: v for k, v in spec.items() if v not in (None, "")}
        spec["mentions"] = bool(data.get("mentions"))
        try:
            values = channel_validate(spec, field="channel", previous=self.instance if self.instance.pk else None)
        except DomainError as exc:
            key = (exc.field or "").removeprefix("channel.")
            if key in self.fields:
                self.add_error(key, exc.message)
            else:
                raise forms.ValidationError(exc.message) from None
            return data
        for key in ("url", "to", "secret", "token", "chat_id", "table", "target_key"):
            setattr(self.instance, key, values[key])
            data[key] = values[key]
        return data


class PipelineForm(forms.ModelForm):
    class Meta:
        model = AlertPipeline
        exclude: list[str] = []

    def clean(self):
        # The trigger rules of the REST API (types, settings, bounded lists).
        cleaned = super().clean()
        kind, config = cleaned.get("trigger_type"), cleaned.get("trigger_config")
        if kind and "trigger_config" not in self.errors:
            if not isinstance(config, dict | None):
                self.add_error("trigger_config", "The trigger settings must be a JSON object.")
                return cleaned
            try:
                _, cleaned["trigger_config"] = trigger_validate({**(config or {}), "type": kind})
            except DomainError as exc:
                self.add_error("trigger_config", exc.message)
        return cleaned


@admin.register(AlertChannel)
class AlertChannelAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    """Membership roles decide: admins and owners add, edit, delete and send tests; viewers and managers read."""

    form = ChannelForm
    list_display = ["name", "workspace", "type", "target", "rate_limit_per_minute"]
    list_filter = ["type"]
    search_fields = ["name"]
    actions = ["send_test_message"]
    readonly_fields = ["url_shown", "secret_shown"]

    def get_fields(self, request, obj=None) -> list[str]:
        # A view-only page shows every field as text: the URL and the secrets masked there too.
        if obj is not None and not self.has_change_permission(request, obj):
            shown = {"url": "url_shown", "secret": "secret_shown"}
            return [shown.get(f, f) for f in ChannelForm.Meta.fields if f != "token"]
        return list(ChannelForm.Meta.fields)

    @admin.display(description="Target")
    def target(self, obj: AlertChannel) -> str:
        return channel_target_shown(type=obj.type, url=obj.url, to=obj.to, chat_id=obj.chat_id, table=obj.table)

    @admin.display(description="URL")
    def url_shown(self, obj: AlertChannel) -> str:
        return channel_url_shown(obj) or "—"

    @admin.display(description="Secret or token")
    def secret_shown(self, obj: AlertChannel) -> str:
        return mask_secret(obj.secret or obj.token) or "—"

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._can(request, obj, EDIT_ROLES)

    def delete_model(self, request, obj):
        if AlertPipelineChannel.objects.filter(channel=obj).exists():
            self.message_user(request, f"{obj} is used by pipelines; remove it from them first.", messages.ERROR)
            return
        super().delete_model(request, obj)

    @admin.action(description="Send a test message to the channel")
    def send_test_message(self, request, queryset):
        total = 0
        for channel in queryset:
            if not self.has_change_permission(request, channel):
                self.message_user(request, f"{channel}: your role in its workspace is view-only.", messages.ERROR)
                continue
            channel_test_send(channel=channel, now=timezone.now())
            total += 1
        self.message_user(request, f"Queued {total} test message(s); see the delivery log.", messages.SUCCESS)


class PipelineChannelInline(WorkspaceScopedAdmin, admin.TabularInline):
    """Channel choices: those of the workspaces the user may edit (WorkspaceScopedAdmin)."""

    model = AlertPipelineChannel
    workspace_lookup = "pipeline__workspace"
    extra = 0
    fields = ["channel", "position"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # Removing a channel from a pipeline is a change of the pipeline.
        return self._can(request, obj, self.edit_roles)


@admin.register(AlertPipeline)
class AlertPipelineAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    """Membership roles decide, as on the dashboard: admins and owners edit, delete and send tests; viewers and
    managers read."""

    list_display = ["name", "workspace", "trigger_type", "enabled", "updated_at"]
    list_filter = ["enabled", "trigger_type"]
    search_fields = ["name"]
    form = PipelineForm
    inlines = [PipelineChannelInline]
    actions = ["send_test_message"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._can(request, obj, EDIT_ROLES)

    # The admin writes pipelines with the ORM: keep ingestion's subscription flag in step after each write.
    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        alerts_subscription_sync(workspace_id=form.instance.workspace_id)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        alerts_subscription_sync(workspace_id=obj.workspace_id)

    def delete_queryset(self, request, queryset):
        workspace_ids = set(queryset.values_list("workspace_id", flat=True))
        super().delete_queryset(request, queryset)
        for workspace_id in workspace_ids:
            alerts_subscription_sync(workspace_id=workspace_id)

    @admin.action(description="Send a test message to every channel of the pipeline")
    def send_test_message(self, request, queryset):
        total = 0
        for pipeline in queryset:
            if not self.has_change_permission(request, pipeline):
                self.message_user(request, f"{pipeline}: your role in its workspace is view-only.", messages.ERROR)
                continue
            try:
                total += len(pipeline_test_send(pipeline=pipeline, now=timezone.now()))
            except DomainError as exc:
                self.message_user(request, f"{pipeline}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Queued {total} test message(s); see the delivery log.", messages.SUCCESS)


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = [
        "id",
        "pipeline",
        "channel",
        "kind",
        "status",
        "attempts",
        "response_code",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["pipeline", "channel"]
    readonly_fields = [f.name for f in AlertDelivery._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
