"""Admin for alert pipelines: destinations inline (secrets masked), a read-only delivery log, and a
"send test message" action. Staff see the pipelines of their workspaces; superusers see all."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from core.admin import WorkspaceScopedAdmin
from core.errors import DomainError
from core.staff import EDIT_ROLES

from .destinations import mask_secret
from .models import AlertDelivery, AlertDestination, AlertPipeline
from .services import alerts_subscription_sync, destinations_validate, pipeline_test_send, trigger_validate


class DestinationForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook signing secret. Leave empty to keep the stored one.",
    )

    class Meta:
        model = AlertDestination
        fields = ["type", "url", "to", "secret", "mentions", "rate_limit_per_minute"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.secret:
            self.fields["secret"].help_text = f"Stored: {mask_secret(self.instance.secret)}. Leave empty to keep it."

    def clean_secret(self) -> str:
        return self.cleaned_data["secret"] or (self.instance.secret if self.instance.pk else "")

    def clean(self):
        # The rules of the REST API and the dashboard form (addresses that may not be reached included).
        cleaned = super().clean()
        if self.errors or cleaned.get("DELETE"):
            return cleaned
        spec = {k: cleaned.get(k) for k in ("type", "mentions", "rate_limit_per_minute")}
        for key in ("url", "to", "secret"):
            if cleaned.get(key):
                spec[key] = cleaned[key]
        try:
            destinations_validate([spec])
        except DomainError as exc:
            name = (exc.field or "").rsplit(".", 1)[-1]
            self.add_error(name if name in self.fields else None, exc.message)
        return cleaned


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


class DestinationInline(WorkspaceScopedAdmin, admin.TabularInline):
    model = AlertDestination
    form = DestinationForm
    extra = 0

    def has_delete_permission(self, request, obj=None) -> bool:
        # Removing a destination is a change of its pipeline.
        return self._can(request, obj, self.edit_roles)


@admin.register(AlertPipeline)
class AlertPipelineAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    """Membership roles decide, as on the dashboard: admins and owners edit, delete and send tests; viewers and
    managers read."""

    list_display = ["name", "workspace", "trigger_type", "enabled", "updated_at"]
    list_filter = ["enabled", "trigger_type"]
    search_fields = ["name"]
    form = PipelineForm
    inlines = [DestinationInline]
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

    def save_formset(self, request, form, formset, change):
        for obj in formset.save(commit=False):
            obj.workspace_id = form.instance.workspace_id
            obj.save()
        for obj in formset.deleted_objects:
            obj.delete()

    @admin.action(description="Send a test message to every destination")
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
        "destination",
        "kind",
        "status",
        "attempts",
        "response_code",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["pipeline", "destination"]
    readonly_fields = [f.name for f in AlertDelivery._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
