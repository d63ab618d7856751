"""Admin for alert pipelines: destinations inline (secrets masked), a read-only delivery log, and a
"send test message" action. Staff see the pipelines of their workspaces; superusers see all."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from core.errors import DomainError

from .destinations import mask_secret
from .models import AlertDelivery, AlertDestination, AlertPipeline
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


class DestinationInline(admin.TabularInline):
    model = AlertDestination
    form = DestinationForm
    extra = 0


@admin.register(AlertPipeline)
class AlertPipelineAdmin(_WorkspaceScoped, admin.ModelAdmin):
    list_display = ["name", "workspace", "trigger_type", "enabled", "updated_at"]
    list_filter = ["enabled", "trigger_type"]
    search_fields = ["name"]
    inlines = [DestinationInline]
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
