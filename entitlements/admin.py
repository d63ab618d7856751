"""Admin for entitlements: item entitlements (inline, read-only, on items and features; edited on their own
page through the service), subscriptions with their overrides, and effective entitlements on the account.
Catalog and accounts must not import entitlements, so the inlines are attached to their admins from here."""

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html_join

from accounts.models import Account
from catalog.models import Feature, Item
from core.admin import (
    ConstraintMessagesFormMixin,
    ServiceErrorsAdminMixin,
    ServiceModelForm,
    WorkspaceScopedAdmin,
    constraint_messages_register,
    editable_workspace_ids,
)

from . import selectors, services
from .models import ItemEntitlement, Subscription, SubscriptionEntitlement

constraint_messages_register(
    {
        "entitlements_itementitlement_value_not_empty": ("value", "A value is required."),
        "entitlements_subscriptionentitlement_value_not_empty": ("value", "A value is required."),
        "entitlements_subscription_external_id_not_empty": ("external_id", "A subscription needs an id."),
        "entitlements_subscription_term_ordered": ("current_term_end", "The term must end after it starts."),
    }
)


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


class SubscriptionEntitlementForm(ConstraintMessagesFormMixin, forms.ModelForm):
    class Meta:
        model = SubscriptionEntitlement
        fields = ("feature", "value", "expires_at")


class SubscriptionEntitlementInline(WorkspaceScopedAdmin, admin.TabularInline):
    """Overrides of one subscription, written through entitlements.services by SubscriptionAdmin.save_formset."""

    model = SubscriptionEntitlement
    form = SubscriptionEntitlementForm
    extra = 0
    fields = ("feature", "value", "expires_at")
    autocomplete_fields = ("feature",)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Removing an override is an edit of the subscription (its items' values count again).
        return self.has_change_permission(request, obj)


class ItemEntitlementForm(ServiceModelForm):
    field_aliases = {"feature_id": "feature", "item_id": "item"}

    class Meta:
        model = ItemEntitlement
        fields = ("item", "feature", "value")
        help_texts = {
            "value": "switch: true or false; quantity and range: a whole number or 'unlimited'; custom: one of "
            "the feature's level values.",
        }


@admin.register(ItemEntitlement)
class ItemEntitlementAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    """What a plan or add-on grants; saved through `item_entitlement_set` (levels, archived features, workspace)."""

    form = ItemEntitlementForm
    list_display = ("__str__", "item", "feature", "value", "workspace")
    list_select_related = ("item", "feature", "workspace")
    fields = ("item", "feature", "value")
    search_fields = ("item__key", "item__name", "feature__key", "feature__name")
    autocomplete_fields = ("item", "feature")

    def get_readonly_fields(self, request, obj=None):
        # Another item or feature is another entitlement: add it, do not re-point this one.
        return ("item", "feature") if obj is not None else ()

    def save_model(self, request, obj, form, change) -> None:
        saved = services.item_entitlement_set(item=obj.item, feature=obj.feature, value=obj.value)
        obj.pk, obj.workspace_id = saved.pk, saved.workspace_id


class SubscriptionForm(ServiceModelForm):
    field_aliases = {"id": "external_id", "account_id": "account"}

    class Meta:
        model = Subscription
        fields = ("external_id", "account", "status", "items", "current_term_start", "current_term_end")


@admin.register(Subscription)
class SubscriptionAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    """Subscriptions and their overrides; every write goes through entitlements.services."""

    form = SubscriptionForm
    list_display = ("external_id", "account", "status", "current_term_start", "current_term_end", "workspace")
    list_filter = ("status",)
    list_select_related = ("account", "workspace")
    search_fields = ("external_id", "account__external_id", "account__name")
    autocomplete_fields = ("account", "items")
    inlines = (SubscriptionEntitlementInline,)

    def get_fields(self, request, obj=None):
        head = ("workspace", "external_id", "account") if obj else ("external_id", "account")
        return (*head, "status", "items", "current_term_start", "current_term_end")

    def get_readonly_fields(self, request, obj=None):
        # The id and the account never change (subscription_update has no way to change them).
        return ("workspace", "external_id", "account") if obj else ()

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "items":
            ids = editable_workspace_ids(request, self.edit_roles)
            items = Item.objects.select_related("workspace").order_by("workspace__slug", "key")
            kwargs["queryset"] = items if ids is None else items.filter(workspace_id__in=ids)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj: Subscription, form, change: bool) -> None:
        data = form.cleaned_data
        terms = {"current_term_start": data["current_term_start"], "current_term_end": data["current_term_end"]}
        if change:
            saved = services.subscription_update(
                subscription=obj, status=data["status"], items=list(data["items"]), **terms
            )
        else:
            account = data["account"]
            saved = services.subscription_create(
                workspace=account.workspace,
                external_id=data["external_id"],
                account=account,
                status=data["status"],
                items=list(data["items"]),
                **terms,
            )
        obj.pk, obj.workspace_id = saved.pk, saved.workspace_id

    def save_related(self, request, form, formsets, change: bool) -> None:
        # Items were set by the service; only the overrides remain, each through its service.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change: bool) -> None:
        subscription = form.instance
        # The admin's change message reads these three lists.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not inline_form.has_changed() or not hasattr(inline_form, "cleaned_data"):
                continue
            data = inline_form.cleaned_data
            feature = data.get("feature")
            if feature is None:
                continue
            if data.get("DELETE"):
                if inline_form.instance.pk:
                    services.subscription_entitlement_delete(subscription=subscription, feature=feature)
                    formset.deleted_objects.append(inline_form.instance)
                continue
            existed = inline_form.instance.pk is not None
            saved = services.subscription_entitlement_set(
                subscription=subscription, feature=feature, value=data["value"], expires_at=data.get("expires_at")
            )
            if existed:
                formset.changed_objects.append((saved, inline_form.changed_data))
            else:
                formset.new_objects.append(saved)


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
