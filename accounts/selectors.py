"""Reads for tenancy and API keys."""

import hmac
import time
from functools import reduce
from operator import or_

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import F, Q, QuerySet
from psycopg import sql

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
# Candidates read per rank (prefix, substring) before ordering: a broad query ("acc-0" over 100,000 accounts)
# then stops after this many rows instead of reading and sorting every match.
SEARCH_CANDIDATES = 200


def _search_order(account: Account) -> tuple:
    return (len(account.name or account.external_id), (account.name or "").upper(), account.external_id)


def _prefix_match_ids(*, workspace: Workspace, query: str, limit: int) -> list[int]:
    """Ids of accounts with a column starting with the query, up to `limit` per column, each read in the order
    of its pattern-ops index so the scan stops at the limit (a plain LIMIT lets the planner scan the table hoping
    for early matches, which a clustered prefix such as "acc-05" defeats)."""
    pattern = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    parts = [
        sql.SQL(
            "(SELECT id FROM accounts_account WHERE upper({column}::text) LIKE upper(%s) AND workspace_id = %s "
            "ORDER BY upper({column}::text) USING ~<~ LIMIT %s)"
        ).format(column=sql.Identifier(column))
        for column in SEARCHED_COLUMNS
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL(" UNION ").join(parts), [pattern, workspace.pk, limit] * len(parts))
        return [row[0] for row in cursor.fetchall()]


def account_search(*, workspace: Workspace, query: str, limit: int = 20) -> list[Account]:
    """Accounts whose name, domain or external id contains the query (case-insensitive), best first: the exact
    external id, then prefixes, then substrings; within a rank the shortest names first (closest to the query),
    among the first SEARCH_CANDIDATES matches. Each rank reads the accounts_acct_* indexes."""
    query = query.strip()
    if not query or limit < 1:
        return []
    accounts = Account.objects.filter(workspace=workspace).select_related("owner")
    found = list(accounts.filter(external_id__iexact=query)[:1])
    prefixed = accounts.filter(pk__in=_prefix_match_ids(workspace=workspace, query=query, limit=SEARCH_CANDIDATES))
    found += sorted((a for a in prefixed if a not in found), key=_search_order)
    if len(found) < limit and len(query) >= SEARCH_SUBSTRING_MIN_LENGTH:
        inside = reduce(or_, (Q(**{f"{column}__icontains": query}) for column in SEARCHED_COLUMNS))
        candidates = accounts.filter(inside).exclude(pk__in=[a.pk for a in found])[:SEARCH_CANDIDATES]
        found += sorted(candidates, key=_search_order)
    return found[:limit]
