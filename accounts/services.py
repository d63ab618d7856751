"""Writes for tenancy and API keys."""

import hashlib
import hmac
import secrets
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from .errors import Conflict, DomainError, NotFound
from .models import ApiKey, Membership, Workspace

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


def _validate_timezone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError(f"Unknown time zone '{name}'.", code="invalid_timezone", field="timezone") from exc


def membership_set(*, workspace: Workspace, user: AbstractBaseUser, role: str) -> Membership:
    """Give a staff user a role in a workspace (idempotent)."""
    if role not in Membership.Role.values:
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
    return api_key


def api_key_touch(*, api_key: ApiKey, now: datetime) -> None:
    """Record use at most once a minute, so authentication does not write on every request."""
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() >= 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
