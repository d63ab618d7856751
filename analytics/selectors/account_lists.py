"""The CSM lists — near limit, free plan using ungranted features, dormant, usage dropped — with one selector
per concept. The dormant and usage-drop alert triggers call these same selectors, so a list and its alert
always name the same accounts."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction

from accounts.models import Account, Workspace
from catalog.models import Feature, Product
from entitlements.values import feature_use_granted

from .common import (
    account_rows,
    accounts_with_grants,
    analytics_features,
    features_cover_all,
    ids_digest,
    percent_of,
    rollup_cached,
    window_and_prior_sums,
)
from .windows import Window

NEAR_LIMIT_PCT = 80
DORMANT_DAYS = 14
USAGE_DROP_PERCENT = 50


# ---------------------------------------------------------------------------
# Near limit
# ---------------------------------------------------------------------------


def allowance_reached(*, used: int, limit: int, percent: int) -> bool:
    """Whether `used` is at least `percent` % of a positive `limit` (a limit of 0 means "not entitled")."""
    return limit > 0 and used * 100 >= percent * limit


def allowance_limit_state(*, used: int | None, limit: int | None, threshold: int = NEAR_LIMIT_PCT) -> str | None:
    """The near-limit state of an allowance: "over" when used > a positive limit, "near" when used reached
    `threshold` % of it, else None (also for a limit of 0, "not entitled", and for an unlimited one, None)."""
    if limit is None or used is None or limit <= 0:
        return None
    if used > limit:
        return "over"
    return "near" if allowance_reached(used=used, limit=limit, percent=threshold) else None


def allowance_used_pct(payload: dict) -> float | None:
    """`used` as a percent of a positive `limit` of an entitlement payload (one decimal), else None."""
    if payload.get("limit") is None or payload.get("used") is None or payload["limit"] <= 0:
        return None
    return percent_of(payload["used"], payload["limit"])


def accounts_near_limit(*, workspace: Workspace, now: datetime, threshold: int = NEAR_LIMIT_PCT) -> list[dict]:
    """(account, metered feature) pairs whose use in the current period is ≥ `threshold` % of a positive limit
    (`limit_state` "over" when above the limit): the upsell list. Each metered feature's accounts are resolved
    and summed at once (entitlements' batch selectors)."""
    from entitlements.selectors import effective_entitlements_for_accounts, entitlement_payloads

    grants = accounts_with_grants(workspace=workspace, now=now, metered_only=True)
    features = {
        f.pk: f
        for f in Feature.objects.filter(workspace=workspace, pk__in={fid for fids in grants.values() for fid in fids})
        .exclude(status="draft")
        .prefetch_related("levels")
    }
    accounts_by_feature: dict[int, list[int]] = defaultdict(list)
    for account_id, fids in grants.items():
        for fid in fids:
            if fid in features:
                accounts_by_feature[fid].append(account_id)
    rows = account_rows(workspace=workspace, ids=grants)
    out = []
    for fid, account_ids in accounts_by_feature.items():
        feature = features[fid]
        effectives = effective_entitlements_for_accounts(
            workspace=workspace, feature=feature, account_ids=account_ids, now=now
        )
        for account_id, payload in entitlement_payloads(feature=feature, effectives=effectives, now=now).items():
            state = allowance_limit_state(used=payload["used"], limit=payload["limit"], threshold=threshold)
            if state is None:
                continue
            out.append(
                {
                    **rows[account_id],
                    "feature_key": feature.key,
                    "feature_name": feature.name,
                    "limit": payload["limit"],
                    "used": payload["used"],
                    "used_pct": allowance_used_pct(payload),
                    "resets_at": payload["resets_at"],
                    "limit_state": state,
                    "over": state == "over",
                }
            )
    return sorted(out, key=lambda r: (-r["used_pct"], r["external_id"], r["feature_key"]))


# ---------------------------------------------------------------------------
# Free plan using ungranted features
# ---------------------------------------------------------------------------


def free_accounts_using_ungranted(
    *, workspace: Workspace, window: Window, now: datetime, free_plan: str = "free"
) -> list[dict]:
    """Accounts on the free plan label that used (net > 0, in the window) features their plan does not grant
    (a metered allowance of 0 grants nothing)."""
    from entitlements.selectors import effective_entitlements_by_account

    free = list(Account.objects.filter(workspace=workspace, plan__iexact=free_plan).values_list("id", flat=True))
    if not free:
        return []
    features = analytics_features(workspace=workspace, product=None)
    by_id = {f["id"]: f for f in features}
    # What each free account holds is resolved on every request, at once (entitlements' batch selector):
    # subscriptions change at any time. The account's positive (feature, uses) pairs of the window come from
    # the rollups only, so they are cached under the rollup generation, keyed by the free accounts and the
    # analytics features too (~100k pairs at 10M events: ~300 ms of SQL, computed once per rollup).
    held = effective_entitlements_by_account(workspace=workspace, account_ids=free, now=now)
    pairs = rollup_cached(
        workspace=workspace,
        parts=[
            "free-pairs",
            window.start.isoformat(),
            window.end.isoformat(),
            ids_digest(free),
            hashlib.sha256(repr(sorted((f, by_id[f]["key"]) for f in by_id)).encode()).hexdigest(),
        ],
        compute=lambda: _positive_pairs(workspace=workspace, account_ids=free, by_id=by_id, window=window),
    )
    ungranted: dict[int, tuple[str, int, int]] = {}
    for account_id, (feature_ids, uses, all_used) in pairs.items():
        granted = {f.pk for f, eff in held[account_id] if feature_use_granted(feature=f, value=eff.value)}
        if not granted.intersection(feature_ids):  # most free accounts: every used feature is ungranted
            ungranted[account_id] = all_used
            continue
        kept = [(by_id[f]["key"], u) for f, u in zip(feature_ids, uses, strict=True) if f not in granted]
        if kept:
            ungranted[account_id] = (", ".join(sorted(k for k, _ in kept)), len(kept), sum(u for _, u in kept))
    rows = account_rows(workspace=workspace, ids=ungranted)
    out = [
        {**rows[a], "features": keys, "feature_count": count, "uses": uses}
        for a, (keys, count, uses) in ungranted.items()
    ]
    return sorted(out, key=lambda r: (-r["uses"], r["external_id"]))


def _positive_pairs(
    *, workspace: Workspace, account_ids: list[int], by_id: dict[int, dict], window: Window
) -> dict[int, tuple[list[int], list[int], tuple[str, int, int]]]:
    """Account → (feature ids, net uses) of its (feature, account) pairs with net uses > 0 in the window, and
    (their keys joined in order, count, total uses) for an account that holds none of them."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")  # ~100k pair groups: no spill to disk
        cursor.execute(
            """
            WITH pairs AS MATERIALIZED (
                SELECT account_id, feature_id, sum(uses) AS uses FROM analytics_featureaccountday
                WHERE workspace_id = %(ws)s AND account_id = ANY(%(accounts)s) AND day >= %(start)s
                  AND day <= %(end)s
                GROUP BY 1, 2 HAVING sum(uses) > 0
            )
            -- the features are hash-joined to the pairs, not tested against 200 ids on each raw row
            SELECT p.account_id, array_agg(p.feature_id), array_agg(p.uses::bigint)
            FROM pairs p JOIN unnest(%(features)s::bigint[]) wanted(id) ON wanted.id = p.feature_id
            GROUP BY p.account_id
            """,
            {
                "ws": workspace.pk,
                "accounts": account_ids,
                "features": list(by_id),
                "start": window.start,
                "end": window.end,
            },
        )
        rows = cursor.fetchall()
    return {
        account_id: (
            list(features),
            list(uses),
            (", ".join(sorted(by_id[f]["key"] for f in features)), len(features), int(sum(uses))),
        )
        for account_id, features, uses in rows
    }


# ---------------------------------------------------------------------------
# Dormant
# ---------------------------------------------------------------------------


def dormant_accounts(*, workspace: Workspace, today: date, days: int = DORMANT_DAYS) -> list[dict]:
    """Active accounts that had net uses > 0 (analytics features) on some UTC day but on none of the last `days`
    UTC days, `today` included; an account first seen less than `days` days ago is not dormant. Each row
    carries the last such day (`last_used_on`), the last positive use on it and the days since."""
    since = today - timedelta(days=days - 1)
    feature_ids = [f["id"] for f in analytics_features(workspace=workspace, product=None)]
    # The last day with net uses > 0 comes from the rollups only: computed once per rollup generation. Which
    # accounts are active, and since when they are known, is read on every request.
    last_used = rollup_cached(
        workspace=workspace,
        parts=["last-used-day", ids_digest(feature_ids)],
        compute=lambda: _last_used_days(workspace=workspace, feature_ids=feature_ids),
    )
    quiet = [account for account, (day, _) in last_used.items() if day < since]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id FROM accounts_account
            WHERE workspace_id = %s AND id = ANY(%s) AND status = %s AND COALESCE(first_seen_at, created_at) < %s
            """,
            [workspace.pk, quiet, Account.Status.ACTIVE, datetime.combine(since, time.min, tzinfo=UTC)],
        )
        dormant = [row[0] for row in cursor.fetchall()]
    rows = account_rows(workspace=workspace, ids=dormant)
    out = [
        {
            **rows[a],
            "last_used_on": last_used[a][0],
            "last_used_at": last_used[a][1],
            "days_quiet": (today - last_used[a][0]).days,
        }
        for a in dormant
    ]
    return sorted(out, key=lambda r: (r["last_used_on"], r["external_id"]))


def _last_used_days(*, workspace: Workspace, feature_ids: list[int]) -> dict[int, tuple[date, datetime]]:
    """Account → (its last UTC day with net uses > 0 of the features, its latest positive use that day).

    A day with net uses > 0 has a positive use, so the day of the last positive use (the last-seen table, or
    the account × product × day rollup when the features are all of them) is the answer unless that day nets
    ≤ 0 (reversals); only those accounts look further back. Grouping every (account, day) instead took ~5× as
    long as that read (720k account × product × day rows)."""
    whole = features_cover_all(workspace=workspace, product=None, feature_ids=feature_ids)
    params = {
        "ws": workspace.pk,
        "features": feature_ids,
        "products": list(Product.objects.filter(workspace=workspace).values_list("id", flat=True)),
    }
    with connection.cursor() as cursor:
        cursor.execute(_LAST_POSITIVE_SQL[whole], params)
        candidates = {account: seen.astimezone(UTC).date() for account, seen in cursor.fetchall()}
        found: dict[int, tuple[date, datetime]] = {}
        while candidates:
            accounts, days = list(candidates), list(candidates.values())
            cursor.execute(_DAY_NET_SQL[whole], {**params, "accounts": accounts, "days": days})
            for account, uses, last_at in cursor.fetchall():
                if uses > 0:
                    found[account] = (candidates[account], last_at)
            before = {a: d for a, d in candidates.items() if a not in found}
            if not before:
                break
            cursor.execute(
                _POSITIVE_BEFORE_SQL[whole], {**params, "accounts": list(before), "days": list(before.values())}
            )
            candidates = dict(cursor.fetchall())
    return found


# Keyed by whether the features are every feature (the account × product × day rollup holds their sums).
# The account's latest positive use:
_LAST_POSITIVE_SQL = {
    True: """
        SELECT account_id, max(last_at) FROM analytics_accountproductday
        WHERE workspace_id = %(ws)s AND last_at IS NOT NULL GROUP BY account_id
    """,
    False: """
        SELECT account_id, max(last_seen_at) FROM analytics_accountfeaturelastseen
        WHERE workspace_id = %(ws)s AND feature_id = ANY(%(features)s) GROUP BY account_id
    """,
}
# Net uses and latest positive use of each (account, day), read through the rollups' indexes (the aggregate
# inside LATERAL keeps them index lookups):
_DAY_NET_SQL = {
    True: """
        SELECT b.account_id, x.uses, x.last_at FROM unnest(%(accounts)s::bigint[], %(days)s::date[]) b(account_id, day)
        CROSS JOIN LATERAL (
            SELECT COALESCE(sum(r.uses), 0) AS uses, max(r.last_at) AS last_at FROM analytics_accountproductday r
            WHERE r.workspace_id = %(ws)s AND r.product_id = ANY(%(products)s) AND r.day = b.day
              AND r.account_id = b.account_id
        ) x
    """,
    False: """
        SELECT b.account_id, x.uses, x.last_at FROM unnest(%(accounts)s::bigint[], %(days)s::date[]) b(account_id, day)
        CROSS JOIN LATERAL (
            SELECT COALESCE(sum(r.uses), 0) AS uses, max(r.last_at) AS last_at FROM analytics_featureaccountday r
            WHERE r.workspace_id = %(ws)s AND r.account_id = b.account_id AND r.day = b.day
              AND r.feature_id = ANY(%(features)s)
        ) x
    """,
}
# The last day with a positive use before a given day (rare: the later one netted ≤ 0):
_POSITIVE_BEFORE_SQL = {
    True: """
        SELECT r.account_id, max(r.day) FROM analytics_accountproductday r
        JOIN unnest(%(accounts)s::bigint[], %(days)s::date[]) b(account_id, day)
          ON b.account_id = r.account_id AND r.day < b.day
        WHERE r.workspace_id = %(ws)s AND r.last_at IS NOT NULL
        GROUP BY r.account_id
    """,
    False: """
        SELECT b.account_id, x.day FROM unnest(%(accounts)s::bigint[], %(days)s::date[]) b(account_id, day)
        CROSS JOIN LATERAL (
            SELECT max(r.day) AS day FROM analytics_featureaccountday r
            WHERE r.workspace_id = %(ws)s AND r.account_id = b.account_id AND r.day < b.day
              AND r.feature_id = ANY(%(features)s) AND r.last_at IS NOT NULL
        ) x
        WHERE x.day IS NOT NULL
    """,
}


# ---------------------------------------------------------------------------
# Usage dropped
# ---------------------------------------------------------------------------


def usage_dropped(*, current: int, prior: int, percent: int) -> bool:
    """Net uses dropped by at least `percent` %: current ≤ (1 − percent/100) × prior, with prior > 0."""
    return prior > 0 and current * 100 <= prior * (100 - percent)


def accounts_usage_dropped(
    *,
    workspace: Workspace,
    window: Window,
    percent: int = USAGE_DROP_PERCENT,
    feature_keys: Collection[str] | None = None,
) -> list[dict]:
    """Active accounts whose net uses in `window` dropped by at least `percent` % against the prior window of
    equal length (usage_dropped), over the analytics features (`feature_keys`: those of them only)."""
    wanted = set(feature_keys or ())
    feature_ids = [
        f["id"] for f in analytics_features(workspace=workspace, product=None) if not wanted or f["key"] in wanted
    ]
    if not feature_ids:
        return []
    pairs = rollup_cached(  # rollup numbers only: once per rollup generation
        workspace=workspace,
        parts=["window-and-prior", window.start.isoformat(), window.end.isoformat(), ids_digest(feature_ids)],
        compute=lambda: _account_window_and_prior(workspace=workspace, feature_ids=feature_ids, window=window),
    )
    dropped = {a: (c, p) for a, (c, p) in pairs.items() if usage_dropped(current=c, prior=p, percent=percent)}
    rows = account_rows(workspace=workspace, ids=dropped)
    out = [
        {**rows[a], "uses": c, "prior_uses": p, "change_pct": -percent_of(p - max(c, 0), p)}
        for a, (c, p) in dropped.items()
        if rows[a]["status"] == Account.Status.ACTIVE
    ]
    return sorted(out, key=lambda r: (r["change_pct"], r["external_id"]))


def _account_window_and_prior(
    *, workspace: Workspace, feature_ids: list[int], window: Window
) -> dict[int, tuple[int, int]]:
    """Account → (net uses of the features in `window`, in the prior window), accounts with rows in either.
    When the features are every feature of the workspace, the account × product × day rollup holds the sums."""
    if features_cover_all(workspace=workspace, product=None, feature_ids=feature_ids):
        table, among = "analytics_accountproductday", None
    else:
        table, among = "analytics_featureaccountday", ("feature_id", feature_ids)
    return window_and_prior_sums(workspace=workspace, window=window, table=table, key="account_id", among=among)
