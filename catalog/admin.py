"""Admin for catalog editing. Every write goes through catalog.services, so caps, key and name rules, levels,
lifecycle moves and `resource_version` are enforced exactly as over the API; a refused save shows the
service's message on the form, and lifecycle actions report each refusal as a message. Features and items
show their status read-only with a button per move LIFECYCLE_MOVES allows, run through the transition service."""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin import (
    ConstraintMessagesFormMixin,
    ServiceErrorsAdminMixin,
    ServiceModelForm,
    WorkspaceScopedAdmin,
    constraint_messages_register,
    report_each,
)
from core.errors import DomainError
from core.views import workspace_url

from .models import KEY_MAX_LENGTH, KEY_RULE, LIFECYCLE_MOVES, Feature, FeatureLevel, Item, Lifecycle, Module, Product
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

VERSION_FIELDS = ("version_at", "created_at", "updated_at")

_KEY_MESSAGE = ("key", f"A key {KEY_RULE}, at most {KEY_MAX_LENGTH} characters (e.g. 'reports-export').")
constraint_messages_register(
    {
        "catalog_product_key_format": _KEY_MESSAGE,
        "catalog_module_key_format": _KEY_MESSAGE,
        "catalog_feature_key_format": _KEY_MESSAGE,
        "catalog_item_key_format": _KEY_MESSAGE,
        "catalog_feature_metered_needs_quantity": ("metered", "Only quantity and range features can be metered."),
        "catalog_featurelevel_value_not_empty": ("value", "Every level needs a value."),
    }
)

# Each allowed move (from, to) of LIFECYCLE_MOVES by the name of its button, action and service.
LIFECYCLE_MOVE_NAMES = {
    (Lifecycle.DRAFT, Lifecycle.ACTIVE): "activate",
    (Lifecycle.ACTIVE, Lifecycle.ARCHIVED): "archive",
    (Lifecycle.ARCHIVED, Lifecycle.ACTIVE): "reactivate",
}


def lifecycle_moves(status: str) -> list[tuple[str, str]]:
    """The moves allowed from `status`, as (move name, target status), in LIFECYCLE_MOVES' order."""
    return [(LIFECYCLE_MOVE_NAMES[(status, target)], target) for target in sorted(LIFECYCLE_MOVES[status])]


def version_datetime(resource_version: int) -> datetime | None:
    """`resource_version` is the millisecond timestamp of the last change (catalog.services)."""
    return datetime.fromtimestamp(resource_version / 1000, tz=UTC) if resource_version > 0 else None


def _workspace_filter(request, fields: tuple) -> tuple:
    """Superusers also filter by workspace; staff see one or few workspaces and do not need it."""
    if request.user.is_superuser:
        return (("workspace", admin.RelatedOnlyFieldListFilter), *fields)
    return fields


class CatalogAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    form = ServiceModelForm
    save_as = False
    # The services that move an object along LIFECYCLE_MOVES, by move name (features and items).
    lifecycle_services: dict = {}
    change_form_template = "admin/catalog/change_form.html"
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

    @admin.display(description="resource version", ordering="resource_version")
    def version_at(self, obj) -> str:
        """The version as the time it stands for, with the number the API's clients compare."""
        moment = version_datetime(obj.resource_version)
        if moment is None:
            return "—"
        return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} UTC ({obj.resource_version})"

    # --- lifecycle: status is read-only; one button per allowed move ---------------------------------------
    @admin.display(description="allowed moves")
    def lifecycle(self, obj) -> str:
        moves = lifecycle_moves(obj.status)
        now = ", ".join(f"{name.capitalize()} (→ {target})" for name, target in moves)
        return format_html(
            "{}<br><span class='help'>Status changes only through these buttons (or the list's actions): draft → "
            "active (Activate), active → archived (Archive), archived → active (Reactivate); nothing returns "
            "to draft.</span>",
            f"From {obj.status}: {now}." if moves else f"No move from {obj.status}.",
        )

    def _url_name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def get_urls(self):
        lifecycle = path(
            "<path:object_id>/lifecycle/<slug:move>/",
            self.admin_site.admin_view(self.lifecycle_view),
            name=self._url_name("lifecycle"),
        )
        return [lifecycle, *super().get_urls()] if self.lifecycle_services else super().get_urls()

    def lifecycle_view(self, request, object_id: str, move: str):
        """POST: run one lifecycle move through its service, then back to the change page with the outcome."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied("Your role in this workspace is view-only.")
        service = self.lifecycle_services.get(move)
        if service is None:
            self.message_user(request, f"Unknown lifecycle move '{move}'.", messages.ERROR)
        else:
            try:
                moved = service(obj)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                label = f"{self.opts.verbose_name.capitalize()} '{moved.key}'"
                self.message_user(request, f"{label} is now {moved.status}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse(f"admin:{self._url_name('change')}", args=[obj.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.lifecycle_services and self.has_change_permission(request, obj):
            context["lifecycle_buttons"] = [
                (name.capitalize(), target, reverse(f"admin:{self._url_name('lifecycle')}", args=[obj.pk, name]))
                for name, target in lifecycle_moves(obj.status)
            ]
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)


# ---------------------------------------------------------------------------------------------------------
# Products and modules
# ---------------------------------------------------------------------------------------------------------


@admin.register(Product)
class ProductAdmin(CatalogAdmin):
    create_only_fields = ("workspace", "key")
    list_display = ("key", "name", "workspace", "version_at", "updated_at")
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
    list_display = ("key", "name", "product", "workspace", "version_at", "updated_at")
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


class FeatureLevelForm(ConstraintMessagesFormMixin, forms.ModelForm):
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
    list_display = ("key", "name", "product", "module", "type", "status", "unit", "metered", "version_at")
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
    lifecycle_services = {
        "activate": lambda f: feature_activate(feature=f),
        "archive": lambda f: feature_archive(feature=f),
        "reactivate": lambda f: feature_reactivate(feature=f),
    }

    def extra_readonly(self, obj: Feature) -> tuple[str, ...]:
        return ("status", "lifecycle", "dashboard")

    @admin.display(description="dashboard")
    def dashboard(self, obj: Feature):
        url = workspace_url(reverse("dashboard:feature", kwargs={"key": obj.key}), workspace=obj.workspace)
        return format_html('<a href="{}">Usage of {} on the dashboard</a>', url, obj.name)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "module" and field is not None:
            # Modules of several products can share a name: the product says which one.
            field.queryset = field.queryset.select_related("product").order_by("product__name", "name")
            field.label_from_instance = lambda module: f"{module.product} › {module}"
        return field

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
        report_each(self, request, queryset, self.lifecycle_services["activate"], done="feature(s) activated")

    @admin.action(description="Archive selected features (active → archived)", permissions=["change"])
    def archive(self, request, queryset):
        report_each(self, request, queryset, self.lifecycle_services["archive"], done="feature(s) archived")

    @admin.action(description="Reactivate selected features (archived → active)", permissions=["change"])
    def reactivate(self, request, queryset):
        report_each(self, request, queryset, self.lifecycle_services["reactivate"], done="feature(s) reactivated")


# ---------------------------------------------------------------------------------------------------------
# Items (plans and add-ons)
# ---------------------------------------------------------------------------------------------------------


@admin.register(Item)
class ItemAdmin(CatalogAdmin):
    create_only_fields = ("workspace", "key", "type")
    list_display = ("key", "name", "type", "status", "workspace", "version_at", "updated_at")
    search_fields = ("key", "name")
    base_list_filter = ("status", "type")
    actions = ("activate", "archive", "reactivate")
    lifecycle_services = {
        "activate": lambda i: item_activate(item=i),
        "archive": lambda i: item_archive(item=i),
        "reactivate": lambda i: item_reactivate(item=i),
    }

    def extra_readonly(self, obj: Item) -> tuple[str, ...]:
        return ("status", "lifecycle")

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
        report_each(self, request, queryset, self.lifecycle_services["activate"], done="item(s) activated")

    @admin.action(description="Archive selected items (active → archived)", permissions=["change"])
    def archive(self, request, queryset):
        report_each(self, request, queryset, self.lifecycle_services["archive"], done="item(s) archived")

    @admin.action(description="Reactivate selected items (archived → active)", permissions=["change"])
    def reactivate(self, request, queryset):
        report_each(self, request, queryset, self.lifecycle_services["reactivate"], done="item(s) reactivated")
