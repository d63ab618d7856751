"""Reads for the CSM dashboard's pages (analytics/views.py): filter choices, the overview (feature_usage, one
code path with the analytics API), the feature page and the account page. They read the rollups, the
last-seen table and the entitlement selectors, never raw events across accounts."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime

from django.db import connection

from accounts.models import Account, Workspace
from catalog.models import Feature, Product
from core.errors import NotFound

from .account_lists import NEAR_LIMIT_PCT, allowance_limit_state, allowance_used_pct
from .common import OWNERS_TABLE, account_rows, accounts_with_grants, analytics_features, rollup_cached
from .daily_series import account_daily_series, account_feature_trend, feature_daily_series
from .feature_usage import FeatureUsage, feature_usage_cached
from .windows import Window


def dashboard_has_usage(*, workspace: Workspace) -> bool:
    """Whether any usage has been rolled up for the workspace (else the pages show how to send a first event)."""
    from analytics.models import FeatureAccountDay

    return FeatureAccountDay.objects.filter(workspace=workspace).exists()


def dashboard_overview(
    *,
    workspace: Workspace,
    product: Product | None,
    window: Window,
    module_key: str | None = None,
    plan: str | None = None,
    features_offset: int = 0,
) -> FeatureUsage:
    """feature_usage (one code path with the analytics API), narrowed to one module's features and/or the
    accounts on one plan label, cached like the API's answer: computed once per rollup generation for every
    viewer. With a plan filter the heatmap is left out (`usage_pattern` None)."""
    return feature_usage_cached(
        workspace=workspace,
        product=product,
        window=window,
        module_key=module_key or None,
        plan=plan or None,
        features_offset=features_offset,
    )


def features_never_used(*, workspace: Workspace, product: Product | None) -> list[dict]:
    """Active features of the product (or of every product) without a single day of positive net uses in the
    rollups, by name. There is no activation date to count from: a feature used only before it was activated
    counts as used. One index probe of the feature × day rollup per feature."""
    features = {f["id"]: f for f in analytics_features(workspace=workspace, product=product)}
    active = Feature.objects.filter(workspace=workspace, pk__in=list(features), status="active")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT f.id FROM unnest(%s::bigint[]) AS f(id)
            WHERE NOT EXISTS (
                SELECT 1 FROM analytics_featureday d
                WHERE d.workspace_id = %s AND d.feature_id = f.id AND d.uses > 0
            )
            """,
            [list(active.values_list("id", flat=True)), workspace.pk],
        )
        never = {row[0] for row in cursor.fetchall()}
    rows = [{"feature_id": features[fid]["key"], "name": features[fid]["name"]} for fid in never]
    return sorted(rows, key=lambda r: (r["name"].lower(), r["feature_id"]))


def dashboard_feature_get(*, workspace: Workspace, key: str) -> Feature:
    feature = Feature.objects.filter(workspace=workspace, key=key).select_related("product", "module").first()
    if feature is None:
        raise NotFound(f"No feature '{key}' in this workspace.", code="unknown_feature", field="feature_id")
    return feature


def _feature_account_uses(*, workspace: Workspace, feature: Feature, window: Window) -> tuple[dict, dict]:
    """(account → net uses of the feature in the window, when > 0; account → when it last used it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT account_id, sum(uses) FROM analytics_featureaccountday
            WHERE workspace_id = %s AND feature_id = %s AND day >= %s AND day <= %s
            GROUP BY account_id HAVING sum(uses) > 0
            """,
            [workspace.pk, feature.pk, window.start, window.end],
        )
        uses = {account_id: int(total) for account_id, total in cursor.fetchall()}
        cursor.execute(
            """
            SELECT account_id, last_seen_at FROM analytics_accountfeaturelastseen
            WHERE workspace_id = %s AND feature_id = %s AND account_id = ANY(%s)
            """,
            [workspace.pk, feature.pk, list(uses)],
        )
        last_seen = dict(cursor.fetchall())
    return uses, last_seen


FEATURE_PAGE_TOP_ACCOUNTS = 100


def _featureaccount_rows(
    *, workspace: Workspace, uses: dict, last_seen: dict, limit: int
) -> tuple[list[dict], int, list[dict]]:
    """(the `limit` accounts with the most uses, by uses then external id, with their account columns; how many
    accounts used it; plan_distribution over all of them). Only the shown rows are fetched: a popular feature
    has ~2,000 using accounts, whose rows cost ~20 ms to fetch and convert on every page view."""
    ids, totals = list(uses), list(uses.values())
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.id, a.external_id, a.name, a.domain, a.plan, a.status, COALESCE(u.username, ''), x.uses
            FROM unnest(%s::bigint[], %s::bigint[]) AS x(id, uses)
            JOIN accounts_account a ON a.id = x.id AND a.workspace_id = %s
            LEFT JOIN {OWNERS_TABLE} u ON u.id = a.owner_id
            ORDER BY x.uses DESC, a.external_id
            LIMIT %s
            """,
            [ids, totals, workspace.pk, limit],
        )
        columns = ("id", "external_id", "name", "domain", "plan", "status", "owner", "uses")
        top = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        cursor.execute(
            """
            SELECT a.plan, count(*), sum(x.uses) FROM unnest(%s::bigint[], %s::bigint[]) AS x(id, uses)
            JOIN accounts_account a ON a.id = x.id AND a.workspace_id = %s
            GROUP BY a.plan
            """,
            [ids, totals, workspace.pk],
        )
        plans = cursor.fetchall()
    for row in top:
        row["last_seen_at"] = last_seen.get(row["id"])
    count = sum(accounts for _, accounts, _ in plans)
    return top, count, _plan_rows(((plan, accounts, int(total)) for plan, accounts, total in plans))


def dashboard_feature_usage(
    *, workspace: Workspace, feature: Feature, window: Window, top: int = FEATURE_PAGE_TOP_ACCOUNTS
) -> tuple[dict, list[dict], int, set[int], list[dict]]:
    """The feature page's rollup reads: feature_daily_series; the `top` accounts using the feature most in the
    window (net uses > 0, with their uses and when they last used it); how many used it; the ids of all of
    them; their plan distribution. The rollup numbers are computed once per rollup generation (cached like
    the overview); the feature's name and the accounts' names, plans and owners are read on every request."""
    series, uses, last_seen = rollup_cached(
        workspace=workspace,
        parts=["feature-page", str(feature.pk), window.start.isoformat(), window.end.isoformat()],
        compute=lambda: (
            feature_daily_series(workspace=workspace, feature=feature, window=window),
            *_feature_account_uses(workspace=workspace, feature=feature, window=window),
        ),
    )
    rows, count, by_plan = _featureaccount_rows(workspace=workspace, uses=uses, last_seen=last_seen, limit=top)
    return {**series, "feature_id": feature.key, "name": feature.name}, rows, count, set(uses), by_plan


def dashboard_account_usage(*, workspace: Workspace, account: Account, window: Window) -> tuple[dict, dict, list]:
    """The account page's rollup reads: account_daily_series of the window and of the prior one, and
    account_feature_trend, computed once per rollup generation (keyed by the analytics features' ids, keys and
    names too); the account's name is read on every request."""
    features = analytics_features(workspace=workspace, product=None)
    series, prior, trend = rollup_cached(
        workspace=workspace,
        parts=[
            "account-page",
            str(account.pk),
            window.start.isoformat(),
            window.end.isoformat(),
            hashlib.sha256(repr([(f["id"], f["key"], f["name"]) for f in features]).encode()).hexdigest(),
        ],
        compute=lambda: (
            account_daily_series(workspace=workspace, account=account, window=window),
            account_daily_series(workspace=workspace, account=account, window=window.prior),
            account_feature_trend(workspace=workspace, account=account, window=window),
        ),
    )
    return {**series, "name": account.name}, {**prior, "name": account.name}, trend


def _plan_rows(counts) -> list[dict]:
    """(plan label, accounts, uses) triples summed per label ("(none)" for no label), by uses then label."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for plan, accounts, uses in counts:
        acc[plan or "(none)"][0] += accounts
        acc[plan or "(none)"][1] += uses
    ordered = sorted(acc.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return [{"plan": p, "accounts": a, "uses": u} for p, (a, u) in ordered]


def feature_entitled_accounts(
    *, workspace: Workspace, feature: Feature, now: datetime, near_threshold: int = NEAR_LIMIT_PCT
) -> list[dict]:
    """Accounts entitled to a feature, each with its check answer (entitlements.selectors.entitlement_payloads:
    every account resolved at once) and its allowance's `limit_state` (account_lists.allowance_limit_state)."""
    from entitlements.selectors import effective_entitlements_for_accounts, entitlement_payloads

    account_ids = list(accounts_with_grants(workspace=workspace, now=now, feature_id=feature.pk))
    rows = account_rows(workspace=workspace, ids=account_ids)
    effectives = effective_entitlements_for_accounts(
        workspace=workspace, feature=feature, account_ids=account_ids, now=now
    )
    payloads = entitlement_payloads(feature=feature, effectives=effectives, now=now)
    out = []
    for account_id in account_ids:
        payload = payloads[account_id]
        if payload["value"] is None or (payload["reason"] == "not_entitled"):
            continue
        state = allowance_limit_state(used=payload["used"], limit=payload["limit"], threshold=near_threshold)
        out.append(
            {**rows[account_id], "entitlement": payload, "used_pct": allowance_used_pct(payload), "limit_state": state}
        )
    return sorted(out, key=lambda r: r["external_id"])


def dashboard_filter_choices(*, workspace: Workspace) -> dict:
    """Products, modules, plan labels and owners for the dashboard's filter forms."""
    from catalog.models import Module

    return {
        "products": list(Product.objects.filter(workspace=workspace).order_by("key").values_list("key", "name")),
        "modules": list(
            Module.objects.filter(workspace=workspace)
            .order_by("product__key", "key")
            .values_list("key", "name", "product__key")
        ),
        # order_by(): the model's default ordering would otherwise enter the DISTINCT (one option per account).
        "plans": sorted(
            p
            for p in Account.objects.filter(workspace=workspace).order_by().values_list("plan", flat=True).distinct()
            if p
        ),
        "owners": sorted(
            o
            for o in Account.objects.filter(workspace=workspace, owner__isnull=False)
            .order_by()
            .values_list("owner__username", flat=True)
            .distinct()
        ),
    }
