"""Admin of the usage app: ingestion problems (read-only, workspace owners and admins) and the per-workspace
Segment mapping."""

from django.contrib import admin

from core.admin import WorkspaceScopedAdmin
from core.staff import EDIT_ROLES

from .models import IngestionProblem, SegmentMapping
from .segment import segment_mapping_cache_forget


@admin.register(IngestionProblem)
class IngestionProblemAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = ["created_at", "workspace", "reason", "message_type", "message_id", "message"]
    list_filter = ["reason", "source", "workspace"]
    search_fields = ["message_id", "message", "payload_excerpt"]
    ordering = ["-created_at", "-id"]
    readonly_fields = [
        "workspace",
        "source",
        "reason",
        "message",
        "message_type",
        "message_id",
        "payload_excerpt",
        "created_at",
    ]

    def has_module_permission(self, request) -> bool:
        return self._can(request, None, EDIT_ROLES)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._can(request, obj, EDIT_ROLES)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SegmentMapping)
class SegmentMappingAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = ["workspace", "feature_property", "quantity_property", "account_property"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        # Other web processes pick the change up within segment.MAPPING_CACHE_SECONDS.
        segment_mapping_cache_forget()
