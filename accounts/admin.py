"""Admin for tenancy: workspaces, memberships, API keys, customer accounts and end users (core.admin's mixins)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.utils.html import format_html

from core.admin import (
    ServiceErrorsAdminMixin,
    ServiceModelForm,
    WorkspaceScopedAdmin,
    constraint_messages_register,
    report_each,
)
from core.errors import DomainError
from core.staff import StaffRole
from core.views import workspace_url

from .ids import external_id_check, external_id_reverse
from .models import Account, ApiKey, EndUser, Membership, Workspace
from .services import (
    account_upsert,
    api_key_create,
    api_key_revoke,
    end_user_upsert,
    membership_set,
    workspace_create,
    workspace_update,
)

constraint_messages_register(
    {
        "accounts_workspace_window_positive": ("late_event_window_days", "The late-event window is at least 1 day."),
        "accounts_account_unique_external_id": ("external_id", "Another account has this external id."),
        "accounts_account_external_id_not_empty": ("external_id", "An account needs an external id."),
        "accounts_enduser_unique_external_id": ("external_id", "Another end user of this account has this id."),
        "accounts_enduser_external_id_not_empty": ("external_id", "An end user needs an external id."),
    }
)


class ExternalIdForm(ServiceModelForm):
    """Accounts and end users, saved through account_upsert / end_user_upsert: an external id is printable text,
    as over the API (accounts.ids), checked on the form so the message names its field."""

    def clean_external_id(self) -> str:
        value = self.cleaned_data["external_id"]
        try:
            external_id_check(value, field="external_id")
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc
        return value


class AccountForm(ExternalIdForm):
    field_aliases = {"account_id": "external_id"}


class EndUserForm(ExternalIdForm):
    field_aliases = {"account_id": "account", "user_id": "external_id"}


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
    edit_roles = frozenset({StaffRole.OWNER})
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
    edit_roles = frozenset({StaffRole.OWNER})
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
        report_each(
            self,
            request,
            queryset.select_related("workspace"),
            lambda api_key: api_key_revoke(workspace=api_key.workspace, prefix=api_key.prefix),
            done="API key(s) revoked",
            # Keys have no change permission (they are read-only once created); revoking takes an edit role.
            may=lambda api_key: self._can(request, api_key, self.edit_roles),
            refusal=lambda api_key: f"You may not revoke key {api_key.prefix}.",
        )

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
class AccountAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    form = AccountForm
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
        return ("workspace", "external_id", "dashboard", *base) if obj is not None else base

    def save_model(self, request, obj: Account, form, change: bool) -> None:
        # Through the service, as PUT /api/v1/accounts/{id}: ids checked, domain lower-cased, the owner a staff
        # member of the account's workspace; a new id must be new.
        data = form.cleaned_data
        editable = ("name", "domain", "plan", "customer_email", "owner", "status", "attributes")
        account, _ = account_upsert(
            workspace=obj.workspace if change else data["workspace"],
            external_id=obj.external_id if change else data["external_id"],
            create_only=not change,
            **{field: data[field] for field in editable if field in data},
        )
        obj.pk = account.pk
        obj.refresh_from_db()

    def save_formset(self, request, form, formset, change: bool) -> None:
        # The end users' inline rows (e-mail and attributes) are saved through end_user_upsert too.
        account = form.instance
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not inline_form.has_changed() or inline_form.instance.pk is None:
                continue
            data = inline_form.cleaned_data
            user, _ = end_user_upsert(
                workspace=account.workspace,
                account_external_id=account.external_id,
                external_id=inline_form.instance.external_id,
                **{field: data[field] for field in ("email", "attributes") if field in inline_form.changed_data},
            )
            formset.changed_objects.append((user, inline_form.changed_data))

    @admin.display(description="dashboard")
    def dashboard(self, obj: Account):
        url = workspace_url(
            external_id_reverse("dashboard:account", external_id=obj.external_id), workspace=obj.workspace
        )
        return format_html('<a href="{}">Usage and entitlements of {} on the dashboard</a>', url, obj)


@admin.register(EndUser)
class EndUserAdmin(ServiceErrorsAdminMixin, WorkspaceScopedAdmin, admin.ModelAdmin):
    form = EndUserForm
    list_display = ("external_id", "email", "account", "workspace", "last_seen_at")
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("external_id", "email", "account__external_id", "account__name")
    list_select_related = ("account", "workspace")
    allow_delete = True

    def get_readonly_fields(self, request, obj=None):
        base = ("first_seen_at", "last_seen_at", "created_at", "updated_at")
        return ("workspace", "account", "external_id", *base) if obj is not None else base

    def save_model(self, request, obj: EndUser, form, change: bool) -> None:
        # Through the service, as PUT /api/v1/accounts/{id}/users/{user_id}: ids checked, e-mail validated, an
        # account without a domain takes the e-mail's; a new id must be new in its account.
        data = form.cleaned_data
        account = obj.account if change else data["account"]
        user, _ = end_user_upsert(
            workspace=account.workspace,
            account_external_id=account.external_id,
            external_id=obj.external_id if change else data["external_id"],
            create_only=not change,
            **{field: data[field] for field in ("email", "attributes") if field in data},
        )
        obj.pk = user.pk
        obj.refresh_from_db()

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [field for field in fields if obj is not None or field != "workspace"]
