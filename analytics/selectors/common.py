"""Reads every analytics selector shares: lookups that answer 404s, the analytics features, the account-row
columns of the lists, grants of active subscriptions, and the cache keyed by rollup generation."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from psycopg import sql

from accounts.models import Account, Workspace
from analytics.models import AccountProductDay, FeatureAccountDay, FeatureDay
from catalog.models import Feature, Product
from core.errors import NotFound, PaymentRequired
from entitlements.models import GRANTING_ITEMS_JOIN_SQL, GRANTING_SQL

from .windows import Window

T = TypeVar("T")

# How long an answer cached under a rollup generation is kept: bounds how long account metadata (names,
# domains, status, plan labels) read along with rollup numbers may lag.
FEATURE_USAGE_CACHE_SECONDS = 60


def analytics_require_paid(*, workspace: Workspace) -> None:
    if not workspace.is_paid:
        raise PaymentRequired("Analytics are part of the paid tier; this workspace is on the free tier.")


def analytics_product_get(*, workspace: Workspace, key: str) -> Product:
    product = Product.objects.filter(workspace=workspace, key=key).first()
    if product is None:
        raise NotFound(f"No product '{key}' in this workspace.", code="unknown_product", field="product_id")
    return product


def analytics_account_get(*, workspace: Workspace, external_id: str) -> Account:
    account = Account.objects.filter(workspace=workspace, external_id=external_id).first()
    if account is None:
        raise NotFound(f"No account '{external_id}' in this workspace.", code="unknown_account", field="account_id")
    return account


def analytics_feature_get(*, workspace: Workspace, product: Product, key: str) -> Feature:
    feature = Feature.objects.filter(workspace=workspace, product=product, key=key).first()
    if feature is None:
        raise NotFound(f"No feature '{key}' in product '{product.key}'.", code="unknown_feature", field="feature_id")
    return feature


def analytics_features(*, workspace: Workspace, product: Product | None, event: str | None = None) -> list[dict]:
    """The features that analytics cover: the product's (or all), minus reserved prefixes, matching `event`."""
    prefixes = tuple(workspace.reserved_prefixes or ())
    needle = (event or "").lower()
    qs = Feature.objects.filter(workspace=workspace)
    if product is not None:
        qs = qs.filter(product=product)
    return [
        row
        for row in qs.order_by("key").values("id", "key", "name")
        if not (prefixes and row["key"].startswith(prefixes)) and needle in row["key"].lower()
    ]


def features_cover_all(*, workspace: Workspace, product: Product | None, feature_ids: Iterable[int]) -> bool:
    """Whether feature_ids are all the features of the product (of the workspace when None): then the
    per-product rollups (account × product × day, product × 15 minutes) hold exactly their sums."""
    qs = Feature.objects.filter(workspace=workspace)
    if product is not None:
        qs = qs.filter(product=product)
    return set(qs.values_list("id", flat=True)) == set(feature_ids)


def ids_digest(ids: Iterable) -> str:
    """A short cache-key part for a set of ids (or any reprs), independent of their order."""
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()


def percent_of(part: int, whole: int) -> float:
    """100 × part / whole rounded half-up to one decimal; 0.0 when whole is not positive."""
    if whole <= 0:
        return 0.0
    return float((Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def active_accounts_count(
    *, workspace: Workspace, by: date, account: Account | None = None, plan: str | None = None
) -> int:
    """Accounts with status active that existed by the end of UTC day `by` (first seen or created); `plan`:
    only those with that plan label."""
    end = datetime.combine(by + timedelta(days=1), time.min, tzinfo=UTC)
    qs = Account.objects.filter(workspace=workspace, status=Account.Status.ACTIVE).filter(
        Q(created_at__lt=end) | Q(first_seen_at__lt=end)
    )
    if account is not None:
        qs = qs.filter(pk=account.pk)
    if plan is not None:
        qs = qs.filter(plan=plan)
    return qs.count()


def rollup_cached(*, workspace: Workspace, parts: list[str], compute: Callable[[], T]) -> T:
    """compute(), cached under the workspace's rollup generation (any rollup makes a new key) and `parts` (every
    other input of the answer) for at most FEATURE_USAGE_CACHE_SECONDS; not cached before the first rollup."""
    from analytics.models import RollupGeneration

    state = RollupGeneration.objects.filter(workspace=workspace).values_list("token", "generation").first()
    if state is None:
        return compute()
    key = "analytics:" + hashlib.sha256("\x1f".join([str(state[0]), str(state[1]), *parts]).encode()).hexdigest()
    cached = cache.get(key)
    if cached is None:
        cached = compute()
        cache.set(key, cached, FEATURE_USAGE_CACHE_SECONDS)
    return cached


# The table of account owners (the user model's), for the account rows' raw SQL.
OWNERS_TABLE = Account._meta.get_field("owner").related_model._meta.db_table


def account_rows(*, workspace: Workspace, ids: Iterable[int]) -> dict[int, dict]:
    """Account id → the list columns (owner as a username, "" without one); the ids are bound as one array (an
    IN list of 2,000 parameters cost ~10 ms of client-side binding on the feature page)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.id, a.external_id, a.name, a.domain, a.plan, a.status, COALESCE(u.username, ''), a.last_seen_at
            FROM accounts_account a LEFT JOIN {OWNERS_TABLE} u ON u.id = a.owner_id
            WHERE a.workspace_id = %s AND a.id = ANY(%s)
            """,
            [workspace.pk, list(ids)],
        )
        columns = ("id", "external_id", "name", "domain", "plan", "status", "owner", "last_seen_at")
        return {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}


def accounts_with_grants(
    *, workspace: Workspace, now: datetime, feature_id: int | None = None, metered_only: bool = False
) -> dict[int, list[int]]:
    """Account id → feature ids that their active/in-trial subscriptions mention (items or live overrides)."""
    feature_sql = " AND f.id = %(feature)s" if feature_id is not None else ""
    metered_sql = " AND f.metered" if metered_only else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT s.account_id, f.id FROM entitlements_subscription s
            JOIN entitlements_subscription_items si ON si.subscription_id = s.id
            {GRANTING_ITEMS_JOIN_SQL}
            JOIN entitlements_itementitlement ie ON ie.item_id = si.item_id
            JOIN catalog_feature f ON f.id = ie.feature_id
            WHERE s.workspace_id = %(ws)s AND s.status IN {GRANTING_SQL}{feature_sql}{metered_sql}
            UNION
            SELECT DISTINCT s.account_id, f.id FROM entitlements_subscription s
            JOIN entitlements_subscriptionentitlement se ON se.subscription_id = s.id
            JOIN catalog_feature f ON f.id = se.feature_id
            WHERE s.workspace_id = %(ws)s AND s.status IN {GRANTING_SQL}
              AND (se.expires_at IS NULL OR se.expires_at > %(now)s){feature_sql}{metered_sql}
            """,
            {"ws": workspace.pk, "now": now, "feature": feature_id},
        )
        out: dict[int, list[int]] = defaultdict(list)
        for account_id, fid in cursor.fetchall():
            out[account_id].append(fid)
    return out


# What window_and_prior_sums may read: the daily rollups, grouped and filtered by these columns. Any other name
# is refused, so only these fixed names, quoted as identifiers, ever reach its SQL.
WINDOW_SUM_TABLES = frozenset(model._meta.db_table for model in (FeatureDay, FeatureAccountDay, AccountProductDay))
WINDOW_SUM_COLUMNS = frozenset({"feature_id", "account_id"})


def window_and_prior_sums(
    *, workspace: Workspace, window: Window, table: str, key: str, among: tuple[str, list[int]] | None = None
) -> dict[int, tuple[int, int]]:
    """`key` → (net uses in `window`, in the prior window of equal length), read from the daily rollup `table`,
    for the keys with rows in either. `among` = (column, ids) keeps the rows whose column is one of `ids`. The
    table and columns must be in WINDOW_SUM_TABLES / WINDOW_SUM_COLUMNS (ValueError otherwise)."""
    columns = {key, *(among[:1] if among else ())}
    if table not in WINDOW_SUM_TABLES or not columns <= WINDOW_SUM_COLUMNS:
        raise ValueError(f"window_and_prior_sums reads no {table!r} by {sorted(columns)!r}.")
    where = sql.SQL(" AND {} = ANY(%(among)s)").format(sql.Identifier(among[0])) if among else sql.SQL("")
    query = sql.SQL(
        """
        SELECT {key}, COALESCE(sum(uses) FILTER (WHERE day >= %(start)s), 0),
               COALESCE(sum(uses) FILTER (WHERE day < %(start)s), 0)
        FROM {table}
        WHERE workspace_id = %(ws)s AND day >= %(prior_start)s AND day <= %(end)s{where}
        GROUP BY {key}
        """
    ).format(key=sql.Identifier(key), table=sql.Identifier(table), where=where)
    with connection.cursor() as cursor:
        cursor.execute(
            query,
            {
                "among": among[1] if among else None,
                "ws": workspace.pk,
                "start": window.start,
                "prior_start": window.prior.start,
                "end": window.end,
            },
        )
        return {row_key: (int(current), int(prior)) for row_key, current, prior in cursor.fetchall()}
