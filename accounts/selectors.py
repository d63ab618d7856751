"""Reads for tenancy and API keys."""

import hmac
import time

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Case, F, Q, QuerySet, When
from django.db.models.functions import Upper

from core.errors import NotFound

from .models import SEARCHED_COLUMNS, Account, ApiKey, EndUser, Membership, Workspace


def workspace_get(*, slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise NotFound(f"No workspace with slug '{slug}'.", code="unknown_workspace")
    return workspace


def workspaces_for_user(*, user: AbstractBaseUser) -> QuerySet[Workspace]:
    """Superusers see every workspace; other staff the workspaces of their memberships."""
    if not user.is_authenticated or not user.is_active:
        return Workspace.objects.none()
    if user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(memberships__user=user).distinct()


def membership_roles(*, user: AbstractBaseUser) -> dict[int, str]:
    """The user's role in each workspace they belong to, by workspace id (empty for anonymous users)."""
    if not user.is_authenticated or not user.is_active:
        return {}
    return dict(Membership.objects.filter(user=user).values_list("workspace_id", "role"))


def account_external_id_for_user(*, workspace: Workspace, user_external_id: str) -> str | None:
    """The external id of the account an end user belongs to, for sources that name only the user (Kana,
    IngestLayer); when accounts share the user id, the one where it was seen last. None for an unknown user."""
    return (
        EndUser.objects.filter(workspace=workspace, external_id=user_external_id)
        .order_by(F("last_seen_at").desc(nulls_last=True), "-pk")
        .values_list("account__external_id", flat=True)
        .first()
    )


def api_key_by_prefix(*, prefix: str) -> ApiKey | None:
    return ApiKey.objects.select_related("workspace").filter(prefix=prefix).first()


# Authentication runs on every API request, so the key row (with its workspace) is kept in-process for
# UPTAKE_API_KEY_CACHE_SECONDS, keyed by the SHA-256 of the whole key: a wrong secret never matches an entry.
# Revoking a key or updating a workspace through accounts.services forgets the entries at once in this
# process; other processes see the change within the TTL (≤ 5 s by default). Expiry is checked on every
# request against the cached `expires_at`, so it stays exact.
_API_KEY_CACHE: dict[str, tuple[float, ApiKey]] = {}
_API_KEY_CACHE_MAX_ENTRIES = 10_000


def api_key_for_authentication(*, prefix: str, digest: str) -> ApiKey | None:
    """The key with this prefix and this SHA-256 `digest`, with its workspace; None if none matches."""
    ttl = settings.UPTAKE_API_KEY_CACHE_SECONDS
    now = time.monotonic()
    entry = _API_KEY_CACHE.get(digest) if ttl > 0 else None
    if entry is not None and entry[0] > now and entry[1].prefix == prefix:
        # The lookup query used to be the request's first, which runs Django's connection health check
        # (CONN_HEALTH_CHECKS); keep it, so a connection broken since the last request is replaced now.
        connection.close_if_health_check_failed()
        return entry[1]
    api_key = api_key_by_prefix(prefix=prefix)
    if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
        return None
    if ttl > 0:
        if len(_API_KEY_CACHE) >= _API_KEY_CACHE_MAX_ENTRIES:
            _API_KEY_CACHE.clear()
        _API_KEY_CACHE[digest] = (now + ttl, api_key)
    return api_key


def api_key_cache_forget(*, prefix: str | None = None) -> None:
    """Drop cached keys of this process: the one with `prefix`, or all of them."""
    if prefix is None:
        _API_KEY_CACHE.clear()
        return
    for digest, (_, api_key) in list(_API_KEY_CACHE.items()):
        if api_key.prefix == prefix:
            _API_KEY_CACHE.pop(digest, None)


# Queries shorter than this match prefixes only: the trigram indexes need three characters to answer a substring.
SEARCH_SUBSTRING_MIN_LENGTH = 3


def account_search(*, workspace: Workspace, query: str, limit: int = 20) -> list[Account]:
    """Accounts whose name, domain or external id contains the query (case-insensitive), best first: the exact
    external id, then prefixes, then substrings; ties by name. Index-backed (accounts_acct_*_trgm / _prefix)."""
    query = query.strip()
    if not query:
        return []
    lookup = "icontains" if len(query) >= SEARCH_SUBSTRING_MIN_LENGTH else "istartswith"
    matches = Q()
    prefix = Q()
    for column in SEARCHED_COLUMNS:
        matches |= Q(**{f"{column}__{lookup}": query})
        prefix |= Q(**{f"{column}__istartswith": query})
    return list(
        Account.objects.filter(matches, workspace=workspace)
        .select_related("owner")
        .annotate(rank=Case(When(external_id__iexact=query, then=0), When(prefix, then=1), default=2))
        .order_by("rank", Upper("name"), "external_id")[:limit]
    )
