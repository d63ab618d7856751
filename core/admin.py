"""Admin mixins every app's admin reuses for workspace-owned models.

`WorkspaceScopedAdmin`: staff see only the objects of their workspaces (superusers see all), and a membership's
role replaces Django's per-model permissions: any role may view, `edit_roles` (owners and admins by default) may
add, change and run lifecycle actions. Objects of a workspace the user cannot see answer 404, and foreign-key
choices offer only the workspaces the user may edit. Writes go through services; a `DomainError` they raise is
shown as a form error (`ServiceErrorsAdminMixin`) or, for actions, as one admin message per refused object.
A database constraint the form or the save runs into is shown with the sentence its app registered
(`constraint_messages_register`), never as Django's `Constraint "…" is violated.` nor as a 500. JSON fields are
`StorableJSONField`s: what jsonb cannot store (NUL, lone surrogates, non-finite numbers, nesting past
core.text.JSON_MAX_DEPTH) is a form error naming the place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError
from django.db.models import JSONField, Model, QuerySet, UniqueConstraint
from django.http import Http404, HttpRequest

from .errors import DomainError
from .staff import EDIT_ROLES, VIEW_ROLES, staff_directory
from .text import JSON_MAX_DEPTH, json_text_problem


def _roles(request: HttpRequest) -> dict[int, str]:
    """The request user's role per workspace id, read once per request."""
    if not hasattr(request, "_uptake_roles"):
        request._uptake_roles = staff_directory().membership_roles(user=request.user)
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


# Constraint name → (form field or None, the sentence a person reads). Filled by each app's admin module.
_CONSTRAINT_MESSAGES: dict[str, tuple[str | None, str]] = {}


def constraint_messages_register(messages_by_name: dict[str, tuple[str | None, str]]) -> None:
    """Give database constraints the sentence the admin shows when a form or a save breaks them."""
    _CONSTRAINT_MESSAGES.update(messages_by_name)


def constraint_error(exc: IntegrityError) -> DomainError:
    """The refusal an IntegrityError stands for: the registered sentence, else the database's own words."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name in _CONSTRAINT_MESSAGES:
        field, message = _CONSTRAINT_MESSAGES[name]
        return DomainError(message, code="constraint", field=field)
    detail = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
    return DomainError(f"The database refused this change: {detail}.", code="constraint")


class ConstraintMessagesFormMixin:
    """Replace Django's `Constraint "<name>" is violated.` (from model validation) by the registered sentence,
    on the field it is about."""

    def full_clean(self) -> None:
        super().full_clean()
        non_field = self._errors.get(NON_FIELD_ERRORS) if self._errors else None
        if not non_field:
            return
        defaults = {
            message: _CONSTRAINT_MESSAGES[constraint.name]
            for constraint in self._meta.model._meta.constraints
            if constraint.name in _CONSTRAINT_MESSAGES
            for message in self._violation_messages(constraint)
        }
        replaced = [defaults[message] for message in non_field if message in defaults]
        if not replaced:
            return
        kept = [message for message in non_field if message not in defaults]
        del self._errors[NON_FIELD_ERRORS]
        for message in kept:
            self.add_error(None, message)
        for field, message in replaced:
            self.add_error(field if field in self.fields else None, message)

    def _violation_messages(self, constraint) -> list[str]:
        """What model validation says when the constraint is broken: a unique constraint on plain fields says
        Django's "… with this … already exists." instead of its violation message."""
        found = [constraint.get_violation_error_message()]
        if isinstance(constraint, UniqueConstraint) and constraint.fields and not constraint.condition:
            model = self._meta.model
            found.extend(model(pk=None).unique_error_message(model, constraint.fields).messages)
        return found


class ServiceModelForm(ConstraintMessagesFormMixin, forms.ModelForm):
    """A model form whose uniqueness rules are left to the services (clearer messages) and whose constraint
    errors read as sentences; a `DomainError` raised while saving is carried back onto the re-rendered form by
    ServiceErrorsAdminMixin."""

    # Service field names (API vocabulary) → form field names.
    field_aliases = {"id": "key", "product_id": "product", "module_id": "module", "feature_id": "feature"}

    def validate_unique(self) -> None:
        return None


class _CarriesDomainError:
    """Mixed into any admin form by ServiceErrorsAdminMixin after a save was refused: the refusal is added to
    the form (on its field when the form has it), so the form is invalid and nothing is saved again."""

    domain_error: DomainError

    def full_clean(self) -> None:
        super().full_clean()
        if self._errors is None:  # an unbound form
            return
        aliases = getattr(self, "field_aliases", {})
        field = aliases.get(self.domain_error.field or "", self.domain_error.field)
        self.add_error(field if field in self.fields else None, self.domain_error.message)


class _NotStorable(ValueError):
    pass


def _refuse_number(literal: str) -> float:
    """json.loads hook for floats and NaN/Infinity: a number that is not finite has no jsonb form."""
    value = float(literal)
    if value in (float("inf"), float("-inf")) or value != value:
        raise _NotStorable(literal)
    return value


class StorableJSONField(forms.JSONField):
    """forms.JSONField for what jsonb can store, each refusal naming its place (`attributes.note`): NUL, lone
    surrogates, non-finite numbers and nesting past JSON_MAX_DEPTH (however deep: no RecursionError). With
    `require_object`, the document must be an object."""

    def __init__(self, *, name: str, require_object: bool = False, **kwargs):
        self.name = name
        self.require_object = require_object
        super().__init__(**kwargs)

    def to_python(self, value):
        if self.require_object and not self.disabled and value in self.empty_values:
            # A cleared object field is the empty object (None would break its NOT NULL column: a 500).
            return {}
        if self.disabled or value in self.empty_values or not isinstance(value, str):
            return super().to_python(value)
        try:
            decoded = json.loads(value, cls=self.decoder, parse_float=_refuse_number, parse_constant=_refuse_number)
        except _NotStorable as exc:
            raise ValidationError(f"'{self.name}' holds a number jsonb cannot store ({exc}).", code="invalid") from exc
        except RecursionError:
            raise self._too_deep() from None
        except json.JSONDecodeError as exc:
            raise ValidationError(self.error_messages["invalid"], code="invalid", params={"value": value}) from exc
        # Wrapped in {name: …} so that paths start with the field's name.
        if found := json_text_problem({self.name: decoded}, max_depth=JSON_MAX_DEPTH + 1):
            path, problem = found
            if problem.code == "too_deep":
                raise self._too_deep()
            raise ValidationError(f"'{path}' {problem.phrase}.", code=problem.code)
        if self.require_object and not isinstance(decoded, dict):
            raise ValidationError(f"'{self.name}' must be a JSON object.", code="invalid_type")
        return decoded

    def _too_deep(self) -> ValidationError:
        return ValidationError(f"'{self.name}' nests JSON deeper than {JSON_MAX_DEPTH} levels.", code="too_deep")

    def bound_data(self, data, initial):
        # A refused document is shown again as it was typed (decoding it again could fail the same way).
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return self.to_python(data)
        except ValidationError:
            return forms.fields.InvalidJSONInput(data)


class _ReadableChoicesOnly:
    """An autocomplete widget that drops a submitted value its related key cannot hold (`abc` for an integer
    id) before looking the selection up: Django's looks it up as sent and raises ValueError, so re-rendering a
    refused form with such a value was a 500. The form field itself refuses it ("Select a valid choice")."""

    def optgroups(self, name, value, attr=None):
        remote = self.field.remote_field
        target = remote.model._meta.get_field(getattr(remote, "field_name", None) or remote.model._meta.pk.name)
        readable = []
        for item in value:
            try:
                target.get_prep_value(target.to_python(item))
            except (ValidationError, ValueError, TypeError):
                continue
            readable.append(item)
        return super().optgroups(name, readable, attr)


class ReadableAutocompleteSelect(_ReadableChoicesOnly, AutocompleteSelect):
    pass


class ReadableAutocompleteSelectMultiple(_ReadableChoicesOnly, AutocompleteSelectMultiple):
    pass


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

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if isinstance(db_field, JSONField):
            # A JSON field whose default is an empty object holds an object.
            require_object = db_field.default is dict
            return db_field.formfield(
                form_class=StorableJSONField, name=db_field.name, require_object=require_object, **kwargs
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    # --- choices limited to what the user may edit --------------------------------------------------------
    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        ids = editable_workspace_ids(request, self.edit_roles)
        related = db_field.related_model
        workspace_model = staff_directory().workspace_model
        if related is workspace_model:
            workspaces = workspace_model._default_manager.all()
            kwargs["queryset"] = workspaces if ids is None else workspaces.filter(pk__in=ids)
        elif related is get_user_model():
            users = get_user_model().objects.filter(is_staff=True, is_active=True)
            if ids is not None:
                users = users.filter(memberships__workspace_id__in=ids).distinct()
            kwargs["queryset"] = users.order_by("username")
        elif any(field.name == "workspace" for field in related._meta.get_fields()):
            queryset = related._default_manager.all()
            kwargs["queryset"] = queryset if ids is None else queryset.filter(workspace_id__in=ids)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = ReadableAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = ReadableAutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ServiceErrorsAdminMixin:
    """Re-render the add/change form with the service's message when saving raises a `DomainError`, or the
    registered sentence when the database refuses it (`IntegrityError`).

    The admin saves inside a transaction; the error aborts it (nothing stored), then the same POST is validated
    again with the error attached to the form, so the user sees it next to the field at fault.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            request._uptake_domain_error = exc
        except IntegrityError as exc:
            request._uptake_domain_error = constraint_error(exc)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, "_uptake_domain_error", None)
        if error is None:
            return form
        return type(form.__name__, (_CarriesDomainError, form), {"domain_error": error})


def report_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    action,
    *,
    done: str,
    may: Callable[[Model], bool] | None = None,
    refusal: Callable[[Model], str] | None = None,
) -> None:
    """Run a service on each selected object; report successes once and every refusal by name. An object is
    skipped (and named) unless `may(obj)`, by default the admin's change permission."""
    succeeded = 0
    for obj in queryset:
        if not (may(obj) if may is not None else modeladmin.has_change_permission(request, obj)):
            message = (
                refusal(obj)
                if refusal is not None
                else f"You may not change '{obj}': your role in its workspace is view-only."
            )
            modeladmin.message_user(request, message, messages.ERROR)
            continue
        try:
            action(obj)
        except DomainError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", messages.SUCCESS)
