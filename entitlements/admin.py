"""Admin for entitlements: item entitlements (inline, read-only, on items and features; edited on their own
page through the service), subscriptions with their overrides, and effective entitlements on the account.
Catalog and accounts must not import entitlements, so the inlines are attached to their admins from here."""

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html_join

from accounts.admin import WorkspaceScopedAdmin
from accounts.errors import DomainError
from accounts.models import Account
from catalog.models import Feature, Item

from . import selectors, services
from .models import ItemEntitlement, Subscription, SubscriptionEntitlement


class _ReadOnlyInline(WorkspaceScopedAdmin, admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ItemEntitlementInline(_ReadOnlyInline):
    model = ItemEntitlement
    fields = readonly_fields = ("item", "feature", "value")


class SubscriptionEntitlementInline(_ReadOnlyInline):
    model = SubscriptionEntitlement
    fields = readonly_fields = ("feature", "value", "expires_at")


@admin.register(ItemEntitlement)
class ItemEntitlementAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = ("item", "feature", "value", "workspace")
    list_select_related = ("item", "feature", "workspace")
    fields = ("item", "feature", "value")
    search_fields = ("item__key", "feature__key")

    def save_model(self, request, obj, form, change) -> None:
        try:
            saved = services.item_entitlement_set(item=obj.item, feature=obj.feature, value=obj.value)
        except DomainError as exc:
            raise ValidationError(exc.message) from exc
        obj.pk, obj.workspace_id = saved.pk, saved.workspace_id


@admin.register(Subscription)
class SubscriptionAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = ("external_id", "account", "status", "current_term_start", "current_term_end", "workspace")
    list_filter = ("status",)
    list_select_related = ("account", "workspace")
    search_fields = ("external_id", "account__external_id")
    readonly_fields = ("workspace", "external_id", "account")
    fields = (
        "workspace",
        "external_id",
        "account",
        "status",
        "items",
        "current_term_start",
        "current_term_end",
    )
    inlines = (SubscriptionEntitlementInline,)

    def has_add_permission(self, request) -> bool:
        return False  # created over the API or by seed_demo, where the account and items are checked


def effective_entitlements_html(account: Account) -> str:
    rows = selectors.account_entitlements(
        workspace=account.workspace, account_key=account.external_id, now=timezone.now()
    )
    if not rows:
        return "—"
    return format_html_join(
        "",
        "<div><code>{}</code>: {}{}</div>",
        (
            (
                row["feature_id"],
                row["value"] if row["entitled"] else f"not entitled ({row['reason']})",
                f" — used {row['used']} of {row['limit']}" if row["limit"] is not None else "",
            )
            for row in rows
        ),
    )


def _attach() -> None:
    """Add the inlines and the effective-entitlements field to the catalog and accounts admins."""
    for model in (Item, Feature):
        model_admin = admin.site._registry.get(model)
        if model_admin is not None and ItemEntitlementInline not in model_admin.inlines:
            model_admin.inlines = (*model_admin.inlines, ItemEntitlementInline)
    account_admin = admin.site._registry.get(Account)
    if account_admin is not None and not hasattr(account_admin, "effective_entitlements"):

        def effective_entitlements(obj: Account) -> str:
            return effective_entitlements_html(obj) if obj.pk else "—"

        effective_entitlements.short_description = "Effective entitlements"
        account_admin.effective_entitlements = effective_entitlements
        original = account_admin.get_readonly_fields

        def get_readonly_fields(request, obj=None):
            return (*original(request, obj), "effective_entitlements")

        account_admin.get_readonly_fields = get_readonly_fields


_attach()
