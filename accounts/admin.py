"""Admin for tenancy: workspaces, memberships, API keys, customer accounts and end users.

`WorkspaceScopedAdmin` is the base every app's admin reuses: staff see only the objects of their workspaces
(superusers see all), and a membership's role replaces Django's per-model permissions:

    viewer, manager   → view
    admin, owner      → view and edit (`edit_roles`), including lifecycle actions

Objects of a workspace the user cannot see answer 404, and foreign-key choices offer only the workspaces the
user may edit. Writes go through services; a `DomainError` they raise is shown as a form error (see
`ServiceErrorsAdminMixin`) or, for actions, as one admin message per refused object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from .errors import DomainError
from .models import Account, ApiKey, EndUser, Membership, Workspace
from .selectors import membership_roles
from .services import api_key_create, api_key_revoke, membership_set, workspace_create, workspace_update

VIEW_ROLES = frozenset(Membership.Role.values)
EDIT_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN})


def _roles(request: HttpRequest) -> dict[int, str]:
    """The request user's role per workspace id, read once per request."""
    if not hasattr(request, "_uptake_roles"):
        request._uptake_roles = membership_roles(user=request.user)
    return request._uptake_roles


def viewable_workspace_ids(request: HttpRequest) -> set[int] | None:
    """Workspace ids the user may view; None means every workspace (superuser)."""
    if request.user.is_superuser:
        return None
    return set(_roles(request))


def editable_workspace_ids(request: HttpRequest, edit_roles: Iterable[str] = EDIT_ROLES) -> set[int] | None:
    """Workspace ids where the user's role allows edits; None means every workspace (superuser)."""
    if request.user.is_superuser:
        return None
    roles = frozenset(edit_roles)
    return {ws for ws, role in _roles(request).items() if role in roles}


class ServiceModelForm(forms.ModelForm):
    """A model form whose uniqueness and constraint rules are left to the services (clearer messages), and that
    can carry a `DomainError` raised while saving back onto the re-rendered form."""

    domain_error: DomainError | None = None
    # Service field names (API vocabulary) → form field names.
    field_aliases = {"id": "key", "product_id": "product", "module_id": "module"}

    def validate_unique(self) -> None:
        return None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.domain_error is not None:
            field = self.field_aliases.get(self.domain_error.field or "", self.domain_error.field)
            self.add_error(field if field in self.fields else None, self.domain_error.message)
        return cleaned


class WorkspaceScopedAdmin:
    """Mixin for ModelAdmin and InlineModelAdmin classes of workspace-owned models."""

    # The lookup from this model to its workspace id, for querysets.
    workspace_lookup = "workspace"
    # Roles that may add and change; viewing needs any membership.
    edit_roles: frozenset[str] = EDIT_ROLES
    # Deleting is off by default: catalog objects are archived, keys revoked. Superusers may delete when True.
    allow_delete = False

    def workspace_id_of(self, obj: Model) -> int | None:
        return getattr(obj, "workspace_id", None)

    # --- visibility -------------------------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        ids = viewable_workspace_ids(request)
        if ids is None:
            return queryset
        return queryset.filter(**{f"{self.workspace_lookup}__in": ids})

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Unknown, or another workspace's: the same 404, so existence does not leak.
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id!r} in your workspaces.")
        return obj

    # --- permissions (a membership role stands in for Django's model permissions) -------------------------
    def _can(self, request: HttpRequest, obj: Model | None, roles: frozenset[str]) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        mine = _roles(request)
        if obj is None:
            return any(role in roles for role in mine.values())
        return mine.get(self.workspace_id_of(obj)) in roles

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._can(request, None, VIEW_ROLES)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._can(request, obj, VIEW_ROLES)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # For inlines, `obj` is the parent object: adding a row is a change of the parent.
        return self._can(request, obj, self.edit_roles)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._can(request, obj, self.edit_roles)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.allow_delete and request.user.is_superuser

    # --- choices limited to what the user may edit --------------------------------------------------------
    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        ids = editable_workspace_ids(request, self.edit_roles)
        related = db_field.related_model
        if related is Workspace:
            kwargs["queryset"] = Workspace.objects.all() if ids is None else Workspace.objects.filter(pk__in=ids)
        elif related is get_user_model():
            users = get_user_model().objects.filter(is_staff=True, is_active=True)
            if ids is not None:
                users = users.filter(memberships__workspace_id__in=ids).distinct()
            kwargs["queryset"] = users.order_by("username")
        elif any(field.name == "workspace" for field in related._meta.get_fields()):
            queryset = related._default_manager.all()
            kwargs["queryset"] = queryset if ids is None else queryset.filter(workspace_id__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ServiceErrorsAdminMixin:
    """Re-render the add/change form with the service's message when saving raises a `DomainError`.

    The admin saves inside a transaction; the error aborts it (nothing stored), then the same POST is validated
    again with the error attached to the form, so the user sees it next to the field at fault.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            request._uptake_domain_error = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, "_uptake_domain_error", None)
        if error is None:
            return form
        return type(form.__name__, (form,), {"domain_error": error})


def report_each(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, action, *, done: str) -> None:
    """Run a service on each selected object; report successes once and every refusal by name."""
    succeeded = 0
    for obj in queryset:
        if not modeladmin.has_change_permission(request, obj):
            modeladmin.message_user(
                request, f"You may not change '{obj}': your role in its workspace is view-only.", messages.ERROR
            )
            continue
        try:
            action(obj)
        except DomainError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", messages.SUCCESS)


# ---------------------------------------------------------------------------------------------------------
# Workspaces and memberships
# ---------------------------------------------------------------------------------------------------------


class WorkspaceForm(ServiceModelForm):
    class Meta:
        model = Workspace
        fields = (
            "slug",
            "name",
            "tier",
            "timezone",
            "max_features",
            "max_modules",
            "max_products",
            "late_event_policy",
            "late_event_window_days",
            "reserved_prefixes",
        )


@admin.register(Workspace)
class WorkspaceAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    form = WorkspaceForm
    workspace_lookup = "pk"
    edit_roles = frozenset({Membership.Role.OWNER})
    list_display = ("slug", "name", "tier", "timezone", "max_features", "max_modules", "max_products", "created_at")
    list_filter = ("tier", "late_event_policy")
    search_fields = ("slug", "name")
    fields = (
        "slug",
        "name",
        "tier",
        "timezone",
        ("max_features", "max_modules", "max_products"),
        ("late_event_policy", "late_event_window_days"),
        "reserved_prefixes",
    )

    def workspace_id_of(self, obj: Workspace) -> int | None:
        return obj.pk

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Only superusers change tier and caps; owners change the rest.
        return (
            ("slug",) if request.user.is_superuser else ("slug", "tier", "max_features", "max_modules", "max_products")
        )

    def save_model(self, request, obj: Workspace, form, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = workspace_create(
                slug=data["slug"], name=data["name"], tier=data["tier"], timezone_name=data["timezone"]
            )
            obj.pk = created.pk
        caps = {field: data[field] for field in ("max_features", "max_modules", "max_products") if field in data}
        workspace_update(
            workspace=obj,
            name=data["name"],
            tier=data.get("tier"),
            timezone_name=data["timezone"],
            caps=caps,
            late_event_policy=data["late_event_policy"],
            late_event_window_days=data["late_event_window_days"],
            reserved_prefixes=data["reserved_prefixes"],
        )
        obj.refresh_from_db()


@admin.register(Membership)
class MembershipAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    edit_roles = frozenset({Membership.Role.OWNER})
    allow_delete = True
    list_display = ("user", "workspace", "role", "created_at")
    list_filter = ("role", ("workspace", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "user__email", "workspace__slug")
    fields = ("workspace", "user", "role")

    def get_readonly_fields(self, request, obj=None):
        return ("workspace", "user") if obj is not None else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._can(request, obj, self.edit_roles)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            # A new member has no membership yet: offer every active staff user.
            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj: Membership, form, change: bool) -> None:
        saved = membership_set(workspace=obj.workspace, user=obj.user, role=obj.role)
        obj.pk = saved.pk
        obj.refresh_from_db()


# ---------------------------------------------------------------------------------------------------------
# API keys: created here once (plaintext shown in a message, never again), then read-only; revoked by action.
# ---------------------------------------------------------------------------------------------------------


class ApiKeyCreateForm(ServiceModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ("workspace", "name", "scopes", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = (
        "prefix",
        "name",
        "workspace",
        "scope_list",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter), "revoked_at")
    search_fields = ("prefix", "name", "workspace__slug")
    actions = ("revoke_keys",)
    # The hash is never shown, not even read-only.
    readonly_fields = (
        "prefix",
        "workspace",
        "name",
        "scope_list",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("workspace", "name", "scopes", "expires_at")
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        # Keys are read-only once created: the change page is a view page.
        return False

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        data = form.cleaned_data
        api_key, raw = api_key_create(
            workspace=data["workspace"], scopes=list(data["scopes"]), name=data["name"], expires_at=data["expires_at"]
        )
        obj.pk = api_key.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            f"API key {api_key.prefix} created. Copy it now, it will not be shown again: {raw}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        def revoke(api_key: ApiKey) -> None:
            api_key_revoke(workspace=api_key.workspace, prefix=api_key.prefix)

        succeeded = 0
        for api_key in queryset.select_related("workspace"):
            if not self._can(request, api_key, self.edit_roles):
                self.message_user(request, f"You may not revoke key {api_key.prefix}.", messages.ERROR)
                continue
            try:
                revoke(api_key)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                succeeded += 1
        if succeeded:
            self.message_user(request, f"{succeeded} API key(s) revoked.", messages.SUCCESS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self._can(request, None, self.edit_roles):
            actions.pop("revoke_keys", None)
        return actions


# ---------------------------------------------------------------------------------------------------------
# Customer accounts and their end users
# ---------------------------------------------------------------------------------------------------------


class EndUserInline(WorkspaceScopedAdmin, admin.TabularInline):
    model = EndUser
    fields = ("external_id", "email", "attributes", "first_seen_at", "last_seen_at")
    readonly_fields = ("external_id", "first_seen_at", "last_seen_at")
    extra = 0
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = ("external_id", "name", "domain", "plan", "owner", "status", "workspace", "last_seen_at")
    list_filter = (
        "status",
        "plan",
        ("workspace", admin.RelatedOnlyFieldListFilter),
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("external_id", "name", "domain")
    list_select_related = ("owner", "workspace")
    inlines = (EndUserInline,)
    allow_delete = True

    def get_readonly_fields(self, request, obj=None):
        base = ("first_seen_at", "last_seen_at", "created_at", "updated_at")
        return ("workspace", "external_id", *base) if obj is not None else base


@admin.register(EndUser)
class EndUserAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = ("external_id", "email", "account", "workspace", "last_seen_at")
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("external_id", "email", "account__external_id", "account__name")
    list_select_related = ("account", "workspace")
    allow_delete = True

    def get_readonly_fields(self, request, obj=None):
        base = ("first_seen_at", "last_seen_at", "created_at", "updated_at")
        return ("workspace", "account", "external_id", *base) if obj is not None else base

    def save_model(self, request, obj: EndUser, form, change: bool) -> None:
        if not change:
            obj.workspace_id = obj.account.workspace_id
        super().save_model(request, obj, form, change)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [field for field in fields if obj is not None or field != "workspace"]
