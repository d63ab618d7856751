"""Writes for tenancy and API keys."""

import hashlib
import hmac
import secrets
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from core.errors import Conflict, DomainError, NotFound
from core.staff import StaffRole
from core.text import text_problem
from core.unset import UNSET

from .ids import external_id_check
from .models import EXTERNAL_ID_MAX_LENGTH, Account, ApiKey, EndUser, Membership, Workspace
from .selectors import api_key_cache_forget

API_KEY_PREFIX = "upt"
VALID_SCOPES = frozenset(choice.value for choice in ApiKey.Scope)


def api_key_hash(secret: str) -> str:
    """SHA-256 of the whole key; keys carry 256 bits of entropy, so a fast hash is the right tool."""
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_split(raw: str) -> str | None:
    """Return the lookup prefix of a key shaped `upt_<prefix>_<secret>`, or None when it is malformed."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def api_key_matches(*, api_key: ApiKey, raw: str) -> bool:
    return hmac.compare_digest(api_key.key_hash, api_key_hash(raw))


def parse_scopes(raw: str | list[str]) -> list[str]:
    """Validate a comma-separated (or listed) set of scopes; refuse unknown ones by name."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = [item.strip() for item in items if item.strip()]
    if not scopes:
        raise DomainError("At least one scope is required: ingest, read, admin.", code="invalid_scopes", field="scopes")
    unknown = sorted(set(scopes) - VALID_SCOPES)
    if unknown:
        raise DomainError(
            f"Unknown scope(s): {', '.join(unknown)}. Valid scopes: ingest, read, admin.",
            code="invalid_scopes",
            field="scopes",
        )
    return sorted(set(scopes), key=["ingest", "read", "admin"].index)


def workspace_create(
    *, slug: str, name: str = "", tier: str = Workspace.Tier.PAID, timezone_name: str = "UTC"
) -> Workspace:
    """Create a workspace; the slug must be a valid, unused slug."""
    if not slug or slugify(slug) != slug:
        raise DomainError(
            f"'{slug}' is not a valid slug: use lowercase letters, digits, hyphens and underscores.",
            code="invalid_slug",
            field="slug",
        )
    if len(slug) > 64:
        raise DomainError("A workspace slug is at most 64 characters.", code="invalid_slug", field="slug")
    if tier not in Workspace.Tier.values:
        raise DomainError(f"Unknown tier '{tier}': use free or paid.", code="invalid_tier", field="tier")
    _validate_timezone(timezone_name)
    with transaction.atomic():
        if Workspace.objects.filter(slug=slug).exists():
            raise Conflict(f"A workspace with slug '{slug}' already exists.", code="workspace_exists", field="slug")
        return Workspace.objects.create(slug=slug, name=name or slug, tier=tier, timezone=timezone_name)


_WORKSPACE_CAPS = ("max_features", "max_modules", "max_products")


@transaction.atomic
def workspace_update(
    *,
    workspace: Workspace,
    name: str | None = None,
    tier: str | None = None,
    timezone_name: str | None = None,
    caps: dict[str, int] | None = None,
    late_event_policy: str | None = None,
    late_event_window_days: int | None = None,
    reserved_prefixes: list[str] | None = None,
) -> Workspace:
    """Change a workspace's settings; the slug never changes. Arguments left as None stay as they are."""
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    if name is not None:
        if not name.strip():
            raise DomainError("A workspace name cannot be empty.", code="missing_field", field="name")
        workspace.name = name.strip()
    if tier is not None:
        if tier not in Workspace.Tier.values:
            raise DomainError(f"Unknown tier '{tier}': use free or paid.", code="invalid_tier", field="tier")
        workspace.tier = tier
    if timezone_name is not None:
        _validate_timezone(timezone_name)
        workspace.timezone = timezone_name
    for field, value in (caps or {}).items():
        if field not in _WORKSPACE_CAPS:
            raise DomainError(f"Unknown cap '{field}'.", code="invalid_value", field=field)
        if not isinstance(value, int) or value < 0:
            raise DomainError(f"'{field}' must be a whole number ≥ 0.", code="invalid_value", field=field)
        setattr(workspace, field, value)
    if late_event_policy is not None:
        if late_event_policy not in Workspace.LateEventPolicy.values:
            raise DomainError(
                f"Unknown late-event policy '{late_event_policy}': use window or reject_backdated.",
                code="invalid_value",
                field="late_event_policy",
            )
        workspace.late_event_policy = late_event_policy
    if late_event_window_days is not None:
        if late_event_window_days < 1:
            raise DomainError(
                "'late_event_window_days' must be at least 1.", code="invalid_value", field="late_event_window_days"
            )
        workspace.late_event_window_days = late_event_window_days
    if reserved_prefixes is not None:
        workspace.reserved_prefixes = [prefix.strip() for prefix in reserved_prefixes if prefix.strip()]
    workspace.save()
    # Authentication caches keys with their workspace: forget them (again after commit, in case a request
    # cached the old row meanwhile).
    api_key_cache_forget()
    transaction.on_commit(api_key_cache_forget)
    return workspace


def _validate_timezone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError(f"Unknown time zone '{name}'.", code="invalid_timezone", field="timezone") from exc


def membership_set(*, workspace: Workspace, user: AbstractBaseUser, role: str) -> Membership:
    """Give a staff user a role in a workspace (idempotent)."""
    if role not in StaffRole.values:
        raise DomainError(f"Unknown role '{role}'.", code="invalid_role", field="role")
    membership, _ = Membership.objects.update_or_create(workspace=workspace, user=user, defaults={"role": role})
    return membership


def api_key_create(
    *, workspace: Workspace, scopes: list[str], name: str = "", expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and cannot be shown again."""
    scopes = parse_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("The expiry must be in the future.", code="invalid_expiry", field="expires_at")
    prefix = secrets.token_hex(6)
    raw = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        workspace=workspace, name=name, prefix=prefix, key_hash=api_key_hash(raw), scopes=scopes, expires_at=expires_at
    )
    return api_key, raw


def api_key_revoke(*, workspace: Workspace, prefix: str) -> ApiKey:
    """Revoke a key by its prefix (or its full plaintext); revoking twice is harmless."""
    lookup = api_key_split(prefix) or prefix
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().filter(workspace=workspace, prefix=lookup).first()
        if api_key is None:
            raise NotFound(f"No API key with prefix '{lookup}' in workspace '{workspace.slug}'.", code="unknown_key")
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
        # Other processes stop accepting the key within UPTAKE_API_KEY_CACHE_SECONDS; this one at once.
        api_key_cache_forget(prefix=lookup)
        transaction.on_commit(lambda: api_key_cache_forget(prefix=lookup))
    return api_key


def api_key_touch(*, api_key: ApiKey, now: datetime) -> None:
    """Record use at most once a minute, so authentication does not write on every request."""
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() >= 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


# ---------------------------------------------------------------------------
# Customer accounts and their end users (PUT /api/v1/accounts/...; ingestion registers them on first sight)
# ---------------------------------------------------------------------------


def _external_id(value: object, *, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DomainError(f"'{field}' must be a non-empty string.", code="invalid_value", field=field)
    value = value.strip()
    external_id_check(value, field=field)
    if len(value) > EXTERNAL_ID_MAX_LENGTH:
        raise DomainError(
            f"'{field}' is at most {EXTERNAL_ID_MAX_LENGTH} characters.", code="invalid_value", field=field
        )
    return value


def _text(value: object, *, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DomainError(f"'{field}' must be a string.", code="invalid_type", field=field)
    if problem := text_problem(value):  # PostgreSQL cannot store it: refused here, never a DataError
        raise DomainError(f"'{field}' {problem.phrase}.", code=problem.code, field=field)
    value = value.strip()
    if len(value) > max_length:
        raise DomainError(f"'{field}' is at most {max_length} characters.", code="invalid_value", field=field)
    return value


def _account_max_length(field: str) -> int:
    """The length the Account column allows (the model is the one place that says it)."""
    return Account._meta.get_field(field).max_length


def _email(value: object, *, field: str) -> str:
    """An e-mail address ("" clears it); anything else is refused by name."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    email = _text(value, field=field, max_length=254)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise DomainError(f"'{email}' is not a valid e-mail address.", code="invalid_value", field=field) from None
    return email


def _attributes(value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DomainError("'attributes' must be a JSON object.", code="invalid_type", field="attributes")
    return value


def _workspace_staff(workspace: Workspace):
    """The users who may own the workspace's accounts: its active staff members."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(is_active=True, memberships__workspace=workspace)


def _owner(*, workspace: Workspace, email: object):
    """The staff member of this workspace with that e-mail (None clears the owner)."""
    if email is None or email == "":
        return None
    if not isinstance(email, str):
        raise DomainError("'owner_email' must be a string.", code="invalid_type", field="owner_email")
    owner = _workspace_staff(workspace).filter(email__iexact=email.strip()).order_by("pk").first()
    if owner is None:
        raise DomainError(
            f"No active staff member of this workspace has the e-mail '{email.strip()}': add them to the "
            "workspace first, or leave 'owner_email' out.",
            code="unknown_owner",
            field="owner_email",
        )
    return owner


def _owner_member(*, workspace: Workspace, user):
    """`user` when it may own the workspace's accounts (None clears the owner)."""
    if user is None:
        return None
    if not _workspace_staff(workspace).filter(pk=user.pk).exists():
        raise DomainError(
            f"'{user.get_username()}' is not an active staff member of workspace '{workspace.slug}': add them to "
            "the workspace first, or leave the owner empty.",
            code="unknown_owner",
            field="owner",
        )
    return user


@transaction.atomic
def account_upsert(
    *,
    workspace: Workspace,
    external_id: str,
    name: object = UNSET,
    domain: object = UNSET,
    plan: object = UNSET,
    customer_email: object = UNSET,
    owner_email: object = UNSET,
    owner: object = UNSET,
    status: object = UNSET,
    attributes: object = UNSET,
    merge_attributes: bool = False,
    create_only: bool = False,
) -> tuple[Account, bool]:
    """Create or update an account by external id; fields not given stay as they are. The owner is named by
    `owner_email` (the API) or given as a user (`owner`, the admin); either way a staff member of the
    workspace. `attributes` replace the stored ones, or with `merge_attributes` are merged into them (key by
    key). `create_only` refuses an id that exists (409 `account_exists`). Returns (account, created)."""
    external_id = _external_id(external_id, field="account_id")
    changes: dict = {}
    if name is not UNSET:
        changes["name"] = _text(name, field="name", max_length=_account_max_length("name"))
    if domain is not UNSET:
        changes["domain"] = _text(domain, field="domain", max_length=_account_max_length("domain")).lower()
    if plan is not UNSET:
        changes["plan"] = _text(plan, field="plan", max_length=_account_max_length("plan"))
    if customer_email is not UNSET:
        changes["customer_email"] = _email(customer_email, field="customer_email")
    if status is not UNSET:
        if status not in Account.Status.values:
            raise DomainError(
                f"Unknown status {status!r}: use active or churned.", code="invalid_value", field="status"
            )
        changes["status"] = status
    if attributes is not UNSET:
        changes["attributes"] = _attributes(attributes)
    if owner_email is not UNSET:
        changes["owner"] = _owner(workspace=workspace, email=owner_email)
    if owner is not UNSET:
        changes["owner"] = _owner_member(workspace=workspace, user=owner)
    # INSERT … ON CONFLICT DO NOTHING (or, to create only, a plain INSERT), then lock the row: safe against
    # concurrent upserts and ingestion.
    created = not Account.objects.filter(workspace=workspace, external_id=external_id).exists()
    if create_only:
        _insert_new(
            Account(workspace=workspace, external_id=external_id),
            exists=not created,
            conflict=Conflict(
                f"An account with id '{external_id}' already exists.", code="account_exists", field="account_id"
            ),
        )
    elif created:
        Account.objects.bulk_create([Account(workspace=workspace, external_id=external_id)], ignore_conflicts=True)
    account = Account.objects.select_for_update().get(workspace=workspace, external_id=external_id)
    if merge_attributes and "attributes" in changes:
        changes["attributes"] = {**account.attributes, **changes["attributes"]}
    for field, value in changes.items():
        setattr(account, field, value)
    if changes:
        account.save(update_fields=[*changes, "updated_at"])
    return account, created


def _insert_new(row: Account | EndUser, *, exists: bool, conflict: Conflict) -> None:
    """INSERT a row that must be new: `conflict` when it exists, also when a concurrent insert wins the race
    (the unique constraint decides)."""
    if exists:
        raise conflict
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError as exc:
        raise conflict from exc


@transaction.atomic
def account_plans_set(*, workspace: Workspace, plans: dict[int, object]) -> None:
    """Set the plan label of accounts named by primary key (the accounts events were just stored under), each
    label read as account_upsert reads `plan`; rows are locked in primary-key order."""
    labels = {pk: _text(plan, field="plan", max_length=_account_max_length("plan")) for pk, plan in plans.items()}
    for pk, label in sorted(labels.items()):
        Account.objects.filter(workspace=workspace, pk=pk).update(plan=label, updated_at=timezone.now())


@transaction.atomic
def end_user_upsert(
    *,
    workspace: Workspace,
    account_external_id: str,
    external_id: str,
    email: object = UNSET,
    attributes: object = UNSET,
    merge_attributes: bool = False,
    create_only: bool = False,
) -> tuple[EndUser, bool]:
    """Create or update an end user of an account (the account is registered if new); `merge_attributes` and
    `create_only` (409 `user_exists`) as in account_upsert. Returns (user, created)."""
    account_external_id = _external_id(account_external_id, field="account_id")
    external_id = _external_id(external_id, field="user_id")
    changes: dict = {}
    if email is not UNSET:
        changes["email"] = _email(email, field="email")
    if attributes is not UNSET:
        changes["attributes"] = _attributes(attributes)
    Account.objects.bulk_create([Account(workspace=workspace, external_id=account_external_id)], ignore_conflicts=True)
    account = Account.objects.get(workspace=workspace, external_id=account_external_id)
    created = not EndUser.objects.filter(account=account, external_id=external_id).exists()
    if create_only:
        _insert_new(
            EndUser(workspace=workspace, account=account, external_id=external_id),
            exists=not created,
            conflict=Conflict(
                f"Account '{account_external_id}' already has an end user '{external_id}'.",
                code="user_exists",
                field="user_id",
            ),
        )
    elif created:
        EndUser.objects.bulk_create(
            [EndUser(workspace=workspace, account=account, external_id=external_id)], ignore_conflicts=True
        )
    user = EndUser.objects.select_for_update().get(account=account, external_id=external_id)
    if merge_attributes and "attributes" in changes:
        changes["attributes"] = {**user.attributes, **changes["attributes"]}
    for field, value in changes.items():
        setattr(user, field, value)
    if changes:
        user.save(update_fields=[*changes, "updated_at"])
    if changes.get("email") and not account.domain:
        _account_domain_from_email(account=account, email=changes["email"])
    return user, created


# Addresses at these domains say nothing about the company: they never become an account's domain.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "web.de",
        "mail.com",
        "yandex.com",
        "yandex.ru",
        "qq.com",
        "163.com",
    }
)


def _account_domain_from_email(*, account: Account, email: str) -> None:
    """An account without a domain takes its end user's e-mail domain (not a free-mail one); a domain set later
    (PUT, a group call) replaces it. Only when still empty, so concurrent upserts cannot flip it."""
    domain = email.rpartition("@")[2].strip().lower()
    if domain and domain not in FREE_MAIL_DOMAINS:
        Account.objects.filter(pk=account.pk, domain="").update(domain=domain)
