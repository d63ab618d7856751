"""Admin for catalog editing. Every write goes through catalog.services, so caps, key and name rules, levels,
lifecycle moves and `resource_version` are enforced exactly as over the API; a refused save shows the
service's message on the form, and lifecycle actions report each refusal as a message."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from core.admin import (
    ServiceErrorsAdminMixin,
    ServiceModelForm,
    WorkspaceScopedAdmin,
    report_each,
)

from .models import Feature, FeatureLevel, Item, Lifecycle, Module, Product
from .services import (
    LevelSpec,
    feature_activate,
    feature_archive,
    feature_create,
    feature_reactivate,
    feature_update,
    item_activate,
    item_archive,
    item_create,
    item_reactivate,
    item_update,
    module_create,
    module_update,
    product_create,
    product_update,
)

VERSION_FIELDS = ("resource_version", "created_at", "updated_at")


def _workspace_filter(request, fields: tuple) -> tuple:
    """Superusers also filter by workspace; staff see one or few workspaces and do not need it."""
    if request.user.is_superuser:
        return (("workspace", admin.RelatedOnlyFieldListFilter), *fields)
    return fields


class CatalogAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    form = ServiceModelForm
    save_as = False
    # Fields shown only when adding (they are fixed afterwards) and the rest.
    create_only_fields: tuple[str, ...] = ("key",)
    editable_fields: tuple[str, ...] = ("name", "description")
    base_list_filter: tuple = ()

    def get_fields(self, request, obj=None):
        if obj is None:
            return (*self.create_only_fields, *self.editable_fields)
        return (*self.create_only_fields, *self.editable_fields, *self.extra_readonly(obj), *VERSION_FIELDS)

    def extra_readonly(self, obj) -> tuple[str, ...]:
        return ()

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (*self.create_only_fields, *self.extra_readonly(obj), *VERSION_FIELDS)

    def get_list_filter(self, request):
        return _workspace_filter(request, self.base_list_filter)

    def _adopt(self, obj, saved) -> None:
        """Point the admin's in-memory object at what the service stored."""
        obj.pk = saved.pk
        obj.refresh_from_db()


# ---------------------------------------------------------------------------------------------------------
# Products and modules
# ---------------------------------------------------------------------------------------------------------


@admin.register(Product)
class ProductAdmin(CatalogAdmin):
    create_only_fields = ("workspace", "key")
    list_display = ("key", "name", "workspace", "resource_version", "updated_at")
    search_fields = ("key", "name")

    def save_model(self, request, obj: Product, form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = product_update(product=obj, name=data["name"], description=data["description"])
        else:
            saved = product_create(
                workspace=data["workspace"], key=data["key"], name=data["name"], description=data["description"]
            )
        self._adopt(obj, saved)


@admin.register(Module)
class ModuleAdmin(CatalogAdmin):
    create_only_fields = ("product", "key")
    list_display = ("key", "name", "product", "workspace", "resource_version", "updated_at")
    list_select_related = ("product", "workspace")
    search_fields = ("key", "name", "product__key")
    base_list_filter = (("product", admin.RelatedOnlyFieldListFilter),)

    def save_model(self, request, obj: Module, form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = module_update(module=obj, name=data["name"], description=data["description"])
        else:
            product = data["product"]
            saved = module_create(
                workspace=product.workspace,
                product=product,
                key=data["key"],
                name=data["name"],
                description=data["description"],
            )
        self._adopt(obj, saved)


# ---------------------------------------------------------------------------------------------------------
# Features and their levels
# ---------------------------------------------------------------------------------------------------------


class FeatureLevelForm(forms.ModelForm):
    class Meta:
        model = FeatureLevel
        fields = ("value", "name", "is_unlimited")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = "defaults to the value"

    def validate_unique(self) -> None:
        # Levels are validated together, by catalog.services.validate_levels.
        return None


class FeatureLevelFormSet(forms.BaseInlineFormSet):
    def validate_unique(self) -> None:
        return None


class FeatureLevelInline(WorkspaceScopedAdmin, admin.TabularInline):
    model = FeatureLevel
    form = FeatureLevelForm
    formset = FeatureLevelFormSet
    fields = ("value", "name", "is_unlimited")
    extra = 2
    verbose_name = "level"
    verbose_name_plural = "levels (in order: none for switch; minimum and maximum for range)"

    def has_delete_permission(self, request, obj=None) -> bool:
        # Removing a level is a change of the feature (saved through feature_update).
        return self.has_change_permission(request, obj)


def _levels_from(formsets) -> list[LevelSpec]:
    """The levels as the inline shows them, in order, skipping blank extra rows and rows marked for deletion."""
    levels: list[LevelSpec] = []
    for formset in formsets:
        if formset.model is not FeatureLevel:
            continue
        for level_form in formset.forms:
            data = getattr(level_form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("value"):
                continue
            levels.append(
                LevelSpec(value=data["value"], name=data.get("name") or "", is_unlimited=bool(data["is_unlimited"]))
            )
        # The formset is not saved directly; the admin's change message still reads these.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    return levels


@admin.register(Feature)
class FeatureAdmin(CatalogAdmin):
    create_only_fields = ("product", "module", "key")
    editable_fields = ("name", "description", "type", "unit", "metered", "reset_period", "reset_anchor")
    inlines = (FeatureLevelInline,)
    list_display = ("key", "name", "product", "module", "type", "status", "unit", "metered", "resource_version")
    list_select_related = ("product", "module")
    search_fields = ("key", "name", "description")
    base_list_filter = (
        "status",
        "type",
        "metered",
        ("product", admin.RelatedOnlyFieldListFilter),
        ("module", admin.RelatedOnlyFieldListFilter),
    )
    actions = ("activate", "archive", "reactivate")

    def extra_readonly(self, obj: Feature) -> tuple[str, ...]:
        return ("status",)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.status != Lifecycle.DRAFT:
            readonly = (*readonly, "type")  # the type is fixed once a feature leaves draft
        return readonly

    def save_model(self, request, obj: Feature, form, change: bool) -> None:
        # Saved with its levels in save_related, through the service, in one go.
        return None

    def save_related(self, request, form, formsets, change: bool) -> None:
        data = form.cleaned_data
        levels = _levels_from(formsets)
        editable = {field: data[field] for field in self.editable_fields if field in data}
        if change:
            saved = feature_update(feature=form.instance, levels=levels, **editable)
        else:
            product = data["product"]
            saved = feature_create(
                workspace=product.workspace,
                product=product,
                module=data.get("module"),
                key=data["key"],
                levels=levels,
                **editable,
            )
        self._adopt(form.instance, saved)
        # Inlines other apps attach (e.g. entitlements) save as usual, now that the feature exists.
        for formset in formsets:
            if formset.model is not FeatureLevel:
                formset.instance = form.instance
                self.save_formset(request, form, formset, change=change)

    @admin.action(description="Activate selected features (draft → active)", permissions=["change"])
    def activate(self, request, queryset):
        report_each(self, request, queryset, lambda f: feature_activate(feature=f), done="feature(s) activated")

    @admin.action(description="Archive selected features (active → archived)", permissions=["change"])
    def archive(self, request, queryset):
        report_each(self, request, queryset, lambda f: feature_archive(feature=f), done="feature(s) archived")

    @admin.action(description="Reactivate selected features (archived → active)", permissions=["change"])
    def reactivate(self, request, queryset):
        report_each(self, request, queryset, lambda f: feature_reactivate(feature=f), done="feature(s) reactivated")


# ---------------------------------------------------------------------------------------------------------
# Items (plans and add-ons)
# ---------------------------------------------------------------------------------------------------------


@admin.register(Item)
class ItemAdmin(CatalogAdmin):
    create_only_fields = ("workspace", "key", "type")
    list_display = ("key", "name", "type", "status", "workspace", "resource_version", "updated_at")
    search_fields = ("key", "name")
    base_list_filter = ("status", "type")
    actions = ("activate", "archive", "reactivate")

    def extra_readonly(self, obj: Item) -> tuple[str, ...]:
        return ("status",)

    def save_model(self, request, obj: Item, form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = item_update(item=obj, name=data["name"], description=data["description"])
        else:
            saved = item_create(
                workspace=data["workspace"],
                key=data["key"],
                name=data["name"],
                type=data["type"],
                description=data["description"],
            )
        self._adopt(obj, saved)

    @admin.action(description="Activate selected items (draft → active)", permissions=["change"])
    def activate(self, request, queryset):
        report_each(self, request, queryset, lambda i: item_activate(item=i), done="item(s) activated")

    @admin.action(description="Archive selected items (active → archived)", permissions=["change"])
    def archive(self, request, queryset):
        report_each(self, request, queryset, lambda i: item_archive(item=i), done="item(s) archived")

    @admin.action(description="Reactivate selected items (archived → active)", permissions=["change"])
    def reactivate(self, request, queryset):
        report_each(self, request, queryset, lambda i: item_reactivate(item=i), done="item(s) reactivated")
