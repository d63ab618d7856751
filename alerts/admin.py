"""Admin for alert pipelines and channels: a pipeline's channels inline, channels with their secrets masked, a
read-only delivery log, and "send test message" actions. Staff see their workspaces' objects; superusers all."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from core.errors import DomainError

from .channels import channel_test_send, channel_validate
from .destinations import channel_target_shown, mask_secret
from .models import AlertChannel, AlertDelivery, AlertPipeline, AlertPipelineChannel
from .services import alerts_subscription_sync, pipeline_test_send


def _workspace_ids(request) -> list[int] | None:
    if request.user.is_superuser:
        return None
    return list(request.user.memberships.values_list("workspace_id", flat=True))


class _WorkspaceScoped:
    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = _workspace_ids(request)
        return queryset if ids is None else queryset.filter(workspace_id__in=ids)


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
        fields = [
            "workspace",
            "name",
            "type",
            "url",
            "to",
            "secret",
            "token",
            "chat_id",
            "table",
            "mentions",
            "rate_limit_per_minute",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("secret", "token"):
            stored = getattr(self.instance, name, "") if self.instance.pk else ""
            if stored:
                self.fields[name].help_text = f"Stored: {mask_secret(stored)}. Leave empty to keep it."

    def clean(self):
        data = super().clean()
        spec = {
            k: data.get(k)
            for k in ("type", "url", "to", "secret", "token", "chat_id", "table", "mentions", "rate_limit_per_minute")
        }
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


@admin.register(AlertChannel)
class AlertChannelAdmin(_WorkspaceScoped, admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "workspace", "type", "target", "rate_limit_per_minute"]
    list_filter = ["type"]
    search_fields = ["name"]
    actions = ["send_test_message"]

    @admin.display(description="Target")
    def target(self, obj: AlertChannel) -> str:
        return channel_target_shown(type=obj.type, url=obj.url, to=obj.to, chat_id=obj.chat_id, table=obj.table)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        ids = _workspace_ids(request)
        if db_field.name == "workspace" and ids is not None:
            kwargs["queryset"] = db_field.related_model.objects.filter(pk__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def delete_model(self, request, obj):
        if AlertPipelineChannel.objects.filter(channel=obj).exists():
            self.message_user(request, f"{obj} is used by pipelines; remove it from them first.", messages.ERROR)
            return
        super().delete_model(request, obj)

    @admin.action(description="Send a test message to the channel")
    def send_test_message(self, request, queryset):
        for channel in queryset:
            channel_test_send(channel=channel, now=timezone.now())
        self.message_user(
            request, f"Queued {queryset.count()} test message(s); see the delivery log.", messages.SUCCESS
        )


class PipelineChannelInline(admin.TabularInline):
    model = AlertPipelineChannel
    extra = 0
    fields = ["channel", "position"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        ids = _workspace_ids(request)
        if db_field.name == "channel" and ids is not None:
            kwargs["queryset"] = AlertChannel.objects.filter(workspace_id__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(AlertPipeline)
class AlertPipelineAdmin(_WorkspaceScoped, admin.ModelAdmin):
    list_display = ["name", "workspace", "trigger_type", "enabled", "updated_at"]
    list_filter = ["enabled", "trigger_type"]
    search_fields = ["name"]
    inlines = [PipelineChannelInline]
    actions = ["send_test_message"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        ids = _workspace_ids(request)
        if db_field.name == "workspace" and ids is not None:
            kwargs["queryset"] = db_field.related_model.objects.filter(pk__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

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
            try:
                total += len(pipeline_test_send(pipeline=pipeline, now=timezone.now()))
            except DomainError as exc:
                self.message_user(request, f"{pipeline}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Queued {total} test message(s); see the delivery log.", messages.SUCCESS)


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(_WorkspaceScoped, admin.ModelAdmin):
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
