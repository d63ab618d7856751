"""Daily series of one feature or one account (the daily APIs and the dashboard's feature and account pages),
and an account's per-feature trend against the prior window."""

from __future__ import annotations

from datetime import date

from django.db import connection

from accounts.models import Account, Workspace
from catalog.models import Feature, Product

from .common import analytics_features
from .feature_usage import feature_daily_uses
from .windows import Window


def feature_daily_series(
    *, workspace: Workspace, feature: Feature, window: Window, account: Account | None = None
) -> dict:
    """One feature's daily series: net uses, events, accounts using it (net > 0) and distinct end users."""
    per_day: dict[date, dict] = {d: {"uses": 0, "events": 0, "accounts": 0, "users": 0} for d in window.days}
    account_sql = " AND account_id = %s" if account is not None else ""
    account_params = [account.pk] if account is not None else []
    base = [workspace.pk, feature.pk, window.start, window.end]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT day, sum(uses), sum(events), count(*) FILTER (WHERE uses > 0)
            FROM analytics_featureaccountday
            WHERE workspace_id = %s AND feature_id = %s AND day >= %s AND day <= %s{account_sql}
            GROUP BY day
            """,
            base + account_params,
        )
        for day, uses, events, accounts in cursor.fetchall():
            per_day[day].update(uses=int(uses), events=int(events), accounts=int(accounts))
        cursor.execute(
            f"""
            SELECT day, count(*) FROM analytics_featureuserday
            WHERE workspace_id = %s AND feature_id = %s AND day >= %s AND day <= %s{account_sql}
            GROUP BY day
            """,
            base + account_params,
        )
        for day, users in cursor.fetchall():
            per_day[day]["users"] = int(users)
        cursor.execute(
            f"""
            SELECT count(DISTINCT end_user_id) FROM analytics_featureuserday
            WHERE workspace_id = %s AND feature_id = %s AND day >= %s AND day <= %s{account_sql}
            """,
            base + account_params,
        )
        window_users = int(cursor.fetchone()[0])
        cursor.execute(
            f"""
            SELECT count(*) FROM (
                SELECT account_id FROM analytics_featureaccountday
                WHERE workspace_id = %s AND feature_id = %s AND day >= %s AND day <= %s{account_sql}
                GROUP BY account_id HAVING sum(uses) > 0
            ) used
            """,
            base + account_params,
        )
        window_accounts = int(cursor.fetchone()[0])
    return {
        "feature_id": feature.key,
        "name": feature.name,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "uses": sum(v["uses"] for v in per_day.values()),
        "accounts": window_accounts,
        "users": window_users,
        "days": [{"day": d.isoformat(), **per_day[d]} for d in window.days],
    }


def account_daily_series(
    *, workspace: Workspace, account: Account, window: Window, product: Product | None = None
) -> dict:
    """One account's daily series over analytics features: net uses, events, features used (net > 0)."""
    features = analytics_features(workspace=workspace, product=product)
    by_id = {f["id"]: f for f in features}
    per_day: dict[date, dict] = {d: {"uses": 0, "events": 0, "features": 0} for d in window.days}
    last_seen: list[dict] = []
    if by_id:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT day, sum(uses), sum(events), count(*) FILTER (WHERE uses > 0)
                FROM analytics_featureaccountday
                WHERE workspace_id = %s AND account_id = %s AND feature_id = ANY(%s) AND day >= %s AND day <= %s
                GROUP BY day
                """,
                [workspace.pk, account.pk, list(by_id), window.start, window.end],
            )
            for day, uses, events, used in cursor.fetchall():
                per_day[day].update(uses=int(uses), events=int(events), features=int(used))
        last_seen = account_feature_last_seen(workspace=workspace, account=account, feature_names=by_id)
    return {
        "account_id": account.external_id,
        "name": account.name,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "uses": sum(v["uses"] for v in per_day.values()),
        "days": [{"day": d.isoformat(), **per_day[d]} for d in window.days],
        "last_seen": last_seen,
    }


def account_feature_last_seen(*, workspace: Workspace, account: Account, feature_names: dict[int, dict]) -> list[dict]:
    """When the account last used each feature (most recent first)."""
    from analytics.models import AccountFeatureLastSeen

    rows = AccountFeatureLastSeen.objects.filter(
        workspace=workspace, account=account, feature_id__in=list(feature_names)
    ).order_by("-last_seen_at", "feature_id")
    return [
        {"feature_id": feature_names[r.feature_id]["key"], "last_seen_at": r.last_seen_at.isoformat()} for r in rows
    ]


def account_feature_trend(*, workspace: Workspace, account: Account, window: Window) -> list[dict]:
    """Per analytics feature: the account's net uses in the window and the prior one (features used in either)."""
    features = analytics_features(workspace=workspace, product=None)
    by_id = {f["id"]: f for f in features}
    now_uses = feature_daily_uses(workspace=workspace, feature_ids=list(by_id), window=window, account=account)
    prior_uses = feature_daily_uses(workspace=workspace, feature_ids=list(by_id), window=window.prior, account=account)
    out = []
    for fid in set(now_uses) | set(prior_uses):
        cur, before = sum(now_uses.get(fid, {}).values()), sum(prior_uses.get(fid, {}).values())
        if cur or before:
            out.append(
                {
                    "feature_id": by_id[fid]["key"],
                    "name": by_id[fid]["name"],
                    "uses": cur,
                    "prior_uses": before,
                    "quiet": before > 0 and cur <= 0,
                }
            )
    return sorted(out, key=lambda r: (-r["uses"], -r["prior_uses"], r["feature_id"]))
