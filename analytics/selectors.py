"""Analytics reads. They read the rollup tables, never raw events across accounts (one account's events, through
their (workspace, account, feature, occurred_at) index, are read only for that account's heatmap).

Results are plain dataclasses and dicts so that the API, the dashboard and CSV export can share them; days
without rows are filled with zeros.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q

from accounts.models import Account, Workspace
from catalog.models import Feature, Product
from core.errors import DomainError, NotFound

DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 366
# Windows (and the prior windows before them) stay far from the ends of Python's and PostgreSQL's calendars.
WINDOW_FIRST_DATE = date(1970, 1, 1)
WINDOW_LAST_DATE = date(2999, 12, 31)


@dataclass(frozen=True)
class Window:
    """Inclusive range of UTC dates."""

    start: date
    end: date

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.length)]

    @property
    def prior(self) -> Window:
        """The window of equal length just before this one."""
        return Window(self.start - timedelta(days=self.length), self.start - timedelta(days=1))

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


def analytics_window(*, date_from: date | None, date_to: date | None, today: date) -> Window:
    """Resolve from/to: `to` defaults to today (inclusive), `from` to 29 days before `to` (30 days in all)."""
    for name, value in (("from", date_from), ("to", date_to)):
        if value is not None and not WINDOW_FIRST_DATE <= value <= WINDOW_LAST_DATE:
            raise DomainError(
                f"'{name}' ({value.isoformat()}) must be a UTC date from {WINDOW_FIRST_DATE.isoformat()} to "
                f"{WINDOW_LAST_DATE.isoformat()}.",
                code="date_out_of_range",
                field=name,
            )
    end = date_to or today
    start = date_from or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    if end < start:
        raise DomainError(
            f"'to' ({end.isoformat()}) is before 'from' ({start.isoformat()}).", code="invalid_range", field="to"
        )
    if (end - start).days + 1 > MAX_WINDOW_DAYS:
        raise DomainError(
            f"The window from {start.isoformat()} to {end.isoformat()} is longer than {MAX_WINDOW_DAYS} days.",
            code="window_too_long",
            field="from",
        )
    return Window(start, end)


def analytics_require_paid(*, workspace: Workspace) -> None:
    from core.errors import PaymentRequired

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


def _covers_every_feature(*, workspace: Workspace, product: Product | None, feature_ids) -> bool:
    """Whether feature_ids are all the features of the product (of the workspace when None): then the
    per-product rollups (account × product × day, product × 15 minutes) hold exactly their sums."""
    qs = Feature.objects.filter(workspace=workspace)
    if product is not None:
        qs = qs.filter(product=product)
    return set(qs.values_list("id", flat=True)) == set(feature_ids)


def _pct(part: int, whole: int) -> float:
    if whole <= 0:
        return 0.0
    return float((Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _domain(value: str) -> str:
    return (value or "").strip().lower()


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


def usage_pattern(
    *,
    workspace: Workspace,
    feature_ids: list[int],
    window: Window,
    account: Account | None = None,
    whole_product: Product | None = None,
) -> list[list[int]]:
    """7×24 net uses by local weekday (0 = Sunday) and hour in the workspace's timezone. `whole_product`: the
    caller's feature_ids are every feature of that product, so its per-product buckets can be read."""
    grid = [[0] * 24 for _ in range(7)]
    if not feature_ids:
        return grid
    with connection.cursor() as cursor:
        if account is None and whole_product is not None:
            cursor.execute(
                """
                SELECT bucket, uses FROM analytics_productquarterhour
                WHERE workspace_id = %s AND product_id = %s AND bucket >= %s AND bucket < %s
                """,
                [workspace.pk, whole_product.pk, window.start_at, window.end_before],
            )
        elif account is None:
            cursor.execute(
                """
                SELECT bucket, sum(uses) FROM analytics_featurequarterhour
                WHERE workspace_id = %s AND feature_id = ANY(%s) AND bucket >= %s AND bucket < %s
                GROUP BY bucket
                """,
                [workspace.pk, feature_ids, window.start_at, window.end_before],
            )
        else:
            # One account's events through their (workspace, account, feature, occurred_at) index.
            cursor.execute(
                """
                SELECT date_bin('15 minutes', occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), sum(quantity)
                FROM usage_usageevent
                WHERE workspace_id = %s AND account_id = %s AND feature_id = ANY(%s)
                  AND occurred_at >= %s AND occurred_at < %s
                GROUP BY 1
                """,
                [workspace.pk, account.pk, feature_ids, window.start_at, window.end_before],
            )
        rows = cursor.fetchall()
    zone = ZoneInfo(workspace.timezone or "UTC")
    for bucket, uses in rows:
        local = bucket.astimezone(zone)
        grid[local.isoweekday() % 7][local.hour] += int(uses)
    return grid


def feature_usage(
    *,
    workspace: Workspace,
    product: Product,
    window: Window,
    event: str | None = None,
    account: Account | None = None,
    module_key: str | None = None,
    plan: str | None = None,
) -> dict:
    """The feature-usage analytics (net uses from the rollups) of one product and window.

    The dashboard's filters: `module_key` keeps the features of that module, `plan` the accounts with that plan
    label (active accounts and adoption too). With `plan` the heatmap is None: its rollups are per feature
    across accounts and cannot be split by plan."""
    features = analytics_features(workspace=workspace, product=product, event=event)
    if module_key:
        in_module = set(
            Feature.objects.filter(workspace=workspace, product=product, module__key=module_key).values_list(
                "id", flat=True
            )
        )
        features = [f for f in features if f["id"] in in_module]
    account_ids: list[int] | None = None
    if plan:
        account_ids = list(Account.objects.filter(workspace=workspace, plan=plan).values_list("id", flat=True))
    by_id = {f["id"]: f for f in features}
    feature_ids = list(by_id)
    prior = window.prior

    # One pass over the window and the prior window, aggregated in SQL per (feature, account), then per
    # feature, per account, per (feature, domain) and per domain; Python only sorts a few thousand rows.
    feature_net: dict[int, int] = {}
    prior_by_feature: dict[int, int] = {}
    feature_accounts: dict[int, int] = {}
    feature_domains: dict[int, int] = {}
    account_net: dict[int, int] = {}
    account_features: dict[int, int] = {}
    account_keys: dict[int, str] = {}
    domain_net: dict[str, int] = {}
    whole = (
        bool(feature_ids)
        and account is None
        and _covers_every_feature(workspace=workspace, product=product, feature_ids=feature_ids)
    )
    if feature_ids and account is None and account_ids != []:
        # Per-feature numbers from the feature × day rollup, per-account ones from account × product × day
        # (whole product) or from (feature, account) pairs of the window; the per-pair numbers that only the
        # top 12 features / accounts show are computed for those alone, below.
        # `account_ids` (a plan's accounts): the same sums over those accounts' rows only.
        _window_feature_sums(
            workspace=workspace,
            feature_ids=feature_ids,
            window=window,
            net=feature_net,
            prior=prior_by_feature,
            account_ids=account_ids,
        )
        _window_account_sums(
            workspace=workspace,
            product=product if whole else None,
            feature_ids=feature_ids,
            window=window,
            net=account_net,
            keys=account_keys,
            domains=domain_net,
            account_ids=account_ids,
        )
    elif feature_ids and account is not None:
        account_sql = " AND account_id = %(account)s"
        with transaction.atomic(), connection.cursor() as cursor:
            # Hundreds of thousands of (feature, account) groups: let the aggregate stay in memory.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute(
                f"""
                WITH pairs AS MATERIALIZED (
                    SELECT feature_id, account_id,
                           COALESCE(sum(uses) FILTER (WHERE day >= %(start)s), 0) AS cur,
                           COALESCE(sum(uses) FILTER (WHERE day < %(start)s), 0) AS prior
                    FROM analytics_featureaccountday
                    WHERE workspace_id = %(ws)s AND feature_id = ANY(%(features)s)
                      AND day >= %(prior_start)s AND day <= %(end)s{account_sql}
                    GROUP BY feature_id, account_id
                ), cur AS MATERIALIZED (
                    SELECT p.feature_id, p.account_id, p.cur, a.external_id, lower(btrim(a.domain)) AS domain
                    FROM pairs p JOIN accounts_account a ON a.id = p.account_id
                    WHERE p.cur <> 0 AND a.workspace_id = %(ws)s
                )
                SELECT 'feature', feature_id, NULL, sum(cur), sum(prior), count(*) FILTER (WHERE cur > 0)
                FROM pairs GROUP BY feature_id
                UNION ALL
                SELECT 'account', account_id, external_id, sum(cur), NULL, count(*) FILTER (WHERE cur > 0)
                FROM cur GROUP BY account_id, external_id
                UNION ALL
                SELECT 'feature_domains', feature_id, NULL, NULL, NULL, count(*)
                FROM (SELECT feature_id FROM cur WHERE domain <> '' GROUP BY feature_id, domain
                      HAVING sum(cur) > 0) used GROUP BY feature_id
                UNION ALL
                SELECT 'domain', NULL, domain, sum(cur), NULL, NULL FROM cur WHERE domain <> '' GROUP BY domain
                """,
                {
                    "ws": workspace.pk,
                    "features": feature_ids,
                    "start": window.start,
                    "prior_start": prior.start,
                    "end": window.end,
                    "account": account.pk if account is not None else None,
                },
            )
            for kind, pk, text, now_uses, prior_uses, count in cursor.fetchall():
                if kind == "feature":
                    feature_net[pk] = int(now_uses)
                    prior_by_feature[pk] = int(prior_uses)
                    feature_accounts[pk] = int(count)
                elif kind == "account":
                    account_net[pk] = int(now_uses)
                    account_features[pk] = int(count)
                    account_keys[pk] = text
                elif kind == "feature_domains":
                    feature_domains[pk] = int(count)
                else:
                    domain_net[text] = int(now_uses)

    active = active_accounts_count(workspace=workspace, by=window.end, account=account, plan=plan or None)
    used_features = sorted(
        (fid for fid, uses in feature_net.items() if uses > 0), key=lambda fid: (-feature_net[fid], by_id[fid]["key"])
    )
    top_ids = used_features[:12]
    used_accounts = sorted(
        (aid for aid, uses in account_net.items() if uses > 0), key=lambda aid: (-account_net[aid], account_keys[aid])
    )
    if feature_ids and account is None and account_ids != []:
        _top_pair_counts(
            workspace=workspace,
            feature_ids=feature_ids,
            top_feature_ids=top_ids,
            top_account_ids=used_accounts[:12],
            window=window,
            feature_accounts=feature_accounts,
            feature_domains=feature_domains,
            account_features=account_features,
            account_ids=account_ids,
        )
    sparklines = feature_daily_uses(
        workspace=workspace, feature_ids=top_ids, window=window, account=account, account_ids=account_ids
    )
    sparkline_days = [d.isoformat() for d in window.days]

    top_features = [
        {
            "feature_id": by_id[fid]["key"],
            "name": by_id[fid]["name"],
            "events": feature_net[fid],
            "prior_events": prior_by_feature.get(fid, 0),
            "accounts": feature_accounts.get(fid, 0),
            "domains": feature_domains.get(fid, 0),
            "adoption_pct": _pct(feature_accounts.get(fid, 0), active),
            "sparkline": [sparklines[fid].get(d, 0) for d in window.days],
            "sparkline_days": sparkline_days,
        }
        for fid in top_ids
    ]
    quiet = sorted(
        (fid for fid in feature_ids if prior_by_feature.get(fid, 0) > 0 and feature_net.get(fid, 0) <= 0),
        key=lambda fid: (-prior_by_feature[fid], by_id[fid]["key"]),
    )
    quiet_features = [
        {"feature_id": by_id[fid]["key"], "name": by_id[fid]["name"], "prior_events": prior_by_feature[fid]}
        for fid in quiet
    ]
    names = dict(Account.objects.filter(pk__in=used_accounts[:12]).values_list("pk", "name"))
    top_accounts = [
        {
            "account_id": account_keys[aid],
            "name": names[aid],
            "events": account_net[aid],
            "features": account_features.get(aid, 0),
        }
        for aid in used_accounts[:12]
    ]
    used_domains = sorted((d for d, uses in domain_net.items() if uses > 0), key=lambda d: (-domain_net[d], d))
    top_domains = [{"domain": d, "events": domain_net[d]} for d in used_domains[:12]]

    return {
        "product_id": product.key,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "prior_from": prior.start.isoformat(),
        "prior_to": prior.end.isoformat(),
        "timezone": workspace.timezone or "UTC",
        "totals": {
            "events": sum(feature_net.values()),
            "unique_features": len(used_features),
            "unique_accounts": len(used_accounts),
            "unique_domains": len(used_domains),
            "active_accounts": active,
        },
        "top_features": top_features,
        "quiet_features": quiet_features,
        "usage_pattern": None
        if plan
        else usage_pattern(
            workspace=workspace,
            feature_ids=feature_ids,
            window=window,
            account=account,
            whole_product=product if whole else None,
        ),
        "top_accounts": top_accounts,
        "top_domains": top_domains,
    }


def _window_feature_sums(
    *,
    workspace: Workspace,
    feature_ids: list[int],
    window: Window,
    net: dict,
    prior: dict,
    account_ids: list[int] | None = None,
) -> None:
    """Per feature: net uses in the window and in the prior window (features with rows in either), over every
    account (the feature × day rollup) or over `account_ids` (their (feature, account, day) rows, read through
    the (workspace, account, day) covering index and grouped by feature; the features are picked from the
    groups: a `feature_id = ANY(200 ids)` test on each of ~1M rows cost more than the aggregate)."""
    if account_ids is None:
        table, filter_sql = "analytics_featureday", " AND feature_id = ANY(%(features)s)"
    else:
        table, filter_sql = "analytics_featureaccountday", " AND account_id = ANY(%(accounts)s)"
    wanted = set(feature_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT feature_id, COALESCE(sum(uses) FILTER (WHERE day >= %(start)s), 0),
                   COALESCE(sum(uses) FILTER (WHERE day < %(start)s), 0)
            FROM {table}
            WHERE workspace_id = %(ws)s AND day >= %(prior_start)s AND day <= %(end)s{filter_sql}
            GROUP BY feature_id
            """,
            {
                "ws": workspace.pk,
                "features": feature_ids,
                "start": window.start,
                "prior_start": window.prior.start,
                "end": window.end,
                "accounts": account_ids,
            },
        )
        for feature_id, now_uses, prior_uses in cursor.fetchall():
            if feature_id in wanted:
                net[feature_id] = int(now_uses)
                prior[feature_id] = int(prior_uses)


def _window_account_sums(
    *,
    workspace: Workspace,
    product: Product | None,
    feature_ids: list[int],
    window: Window,
    net: dict,
    keys: dict,
    domains: dict,
    account_ids: list[int] | None = None,
) -> None:
    """Per account: net uses of the features in the window (with its external id); per domain (lower-cased,
    trimmed, non-empty): the sum over its accounts. `product`: feature_ids are all of its features, so the
    account × product × day rollup is read instead of (feature, account) pairs. `account_ids`: only those."""
    account_sql = " AND r.account_id = ANY(%s)" if account_ids is not None else ""
    account_params = [account_ids] if account_ids is not None else []
    with connection.cursor() as cursor:
        if product is not None:
            cursor.execute(
                f"""
                SELECT r.account_id, a.external_id, lower(btrim(a.domain)), sum(r.uses)
                FROM analytics_accountproductday r JOIN accounts_account a ON a.id = r.account_id
                WHERE r.workspace_id = %s AND r.product_id = %s AND r.day >= %s AND r.day <= %s{account_sql}
                GROUP BY 1, 2, 3
                """,
                [workspace.pk, product.pk, window.start, window.end, *account_params],
            )
        else:
            cursor.execute(
                f"""
                SELECT r.account_id, a.external_id, lower(btrim(a.domain)), sum(r.uses)
                FROM analytics_featureaccountday r JOIN accounts_account a ON a.id = r.account_id
                WHERE r.workspace_id = %s AND r.feature_id = ANY(%s) AND r.day >= %s AND r.day <= %s{account_sql}
                GROUP BY 1, 2, 3
                """,
                [workspace.pk, feature_ids, window.start, window.end, *account_params],
            )
        for account_id, external_id, domain, uses in cursor.fetchall():
            net[account_id] = int(uses)
            keys[account_id] = external_id
            if domain:
                domains[domain] = domains.get(domain, 0) + int(uses)


def _top_pair_counts(
    *,
    workspace: Workspace,
    feature_ids: list[int],
    top_feature_ids: list[int],
    top_account_ids: list[int],
    window: Window,
    feature_accounts: dict,
    feature_domains: dict,
    account_features: dict,
    account_ids: list[int] | None = None,
) -> None:
    """Numbers that need per-(feature, account) net uses, for the listed features and accounts only: accounts
    and domains using each top feature, features used by each top account. `account_ids`: among those only."""
    account_sql = " AND account_id = ANY(%(accounts)s)" if account_ids is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH pairs AS MATERIALIZED (
                SELECT feature_id, account_id, sum(uses) AS cur FROM analytics_featureaccountday
                WHERE workspace_id = %(ws)s AND feature_id = ANY(%(top_features)s)
                  AND day >= %(start)s AND day <= %(end)s{account_sql}
                GROUP BY 1, 2
            )
            SELECT 'accounts', feature_id, count(*) FROM pairs WHERE cur > 0 GROUP BY feature_id
            UNION ALL
            SELECT 'domains', feature_id, count(*) FROM (
                SELECT p.feature_id FROM pairs p JOIN accounts_account a ON a.id = p.account_id
                WHERE lower(btrim(a.domain)) <> ''
                GROUP BY p.feature_id, lower(btrim(a.domain)) HAVING sum(p.cur) > 0
            ) used GROUP BY feature_id
            UNION ALL
            SELECT 'features', account_id, count(*) FROM (
                SELECT account_id FROM analytics_featureaccountday
                WHERE workspace_id = %(ws)s AND account_id = ANY(%(top_accounts)s)
                  AND feature_id = ANY(%(features)s) AND day >= %(start)s AND day <= %(end)s
                GROUP BY account_id, feature_id HAVING sum(uses) > 0
            ) used GROUP BY account_id
            """,
            {
                "ws": workspace.pk,
                "top_features": top_feature_ids,
                "top_accounts": top_account_ids,
                "features": feature_ids,
                "start": window.start,
                "end": window.end,
                "accounts": account_ids,
            },
        )
        for kind, pk, count in cursor.fetchall():
            {"accounts": feature_accounts, "domains": feature_domains, "features": account_features}[kind][pk] = int(
                count
            )


FEATURE_USAGE_CACHE_SECONDS = 60


def feature_usage_cached(
    *,
    workspace: Workspace,
    product: Product,
    window: Window,
    event: str | None = None,
    account: Account | None = None,
    module_key: str | None = None,
    plan: str | None = None,
) -> dict:
    """feature_usage, cached under the workspace's rollup generation (any rollup makes a new key) for at most
    FEATURE_USAGE_CACHE_SECONDS, which bounds how long account metadata (names, domains, status, plan labels)
    may lag."""
    args = {
        "workspace": workspace,
        "product": product,
        "window": window,
        "event": event,
        "account": account,
        "module_key": module_key or None,
        "plan": plan or None,
    }
    parts = [
        "feature-usage",
        str(product.pk),
        window.start.isoformat(),
        window.end.isoformat(),
        event or "",
        str(account.pk) if account is not None else "",
        workspace.timezone or "UTC",
        "|".join(workspace.reserved_prefixes or ()),
        module_key or "",
        plan or "",
    ]
    return _rollup_cached(workspace=workspace, parts=parts, compute=lambda: feature_usage(**args))


def _rollup_cached(*, workspace: Workspace, parts: list[str], compute):
    """compute(), cached under the workspace's rollup generation (any rollup makes a new key) and `parts` (every
    other input of the answer) for at most FEATURE_USAGE_CACHE_SECONDS; not cached before the first rollup."""
    from .models import RollupGeneration

    state = RollupGeneration.objects.filter(workspace=workspace).values_list("token", "generation").first()
    if state is None:
        return compute()
    key = "analytics:" + hashlib.sha256("\x1f".join([str(state[0]), str(state[1]), *parts]).encode()).hexdigest()
    cached = cache.get(key)
    if cached is None:
        cached = compute()
        cache.set(key, cached, FEATURE_USAGE_CACHE_SECONDS)
    return cached


def feature_daily_uses(
    *,
    workspace: Workspace,
    feature_ids: list[int],
    window: Window,
    account: Account | None = None,
    account_ids: list[int] | None = None,
) -> dict[int, dict[date, int]]:
    """Net uses per feature per UTC day of the window (missing days are absent: callers fill zeros), of one
    account, of the listed accounts, or of all."""
    out: dict[int, dict[date, int]] = defaultdict(dict)
    if not feature_ids or account_ids == []:
        return out
    per_account = account is not None or account_ids is not None
    table = "analytics_featureaccountday" if per_account else "analytics_featureday"
    sql = f"""
        SELECT feature_id, day, sum(uses) FROM {table}
        WHERE workspace_id = %s AND feature_id = ANY(%s) AND day >= %s AND day <= %s
    """
    params: list = [workspace.pk, feature_ids, window.start, window.end]
    if account is not None:
        sql += " AND account_id = %s"
        params.append(account.pk)
    if account_ids is not None:
        sql += " AND account_id = ANY(%s)"
        params.append(account_ids)
    sql += " GROUP BY 1, 2"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for feature_id, day, uses in cursor.fetchall():
            out[feature_id][day] = int(uses)
    return out


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
    from .models import AccountFeatureLastSeen

    rows = AccountFeatureLastSeen.objects.filter(
        workspace=workspace, account=account, feature_id__in=list(feature_names)
    ).order_by("-last_seen_at", "feature_id")
    return [
        {"feature_id": feature_names[r.feature_id]["key"], "last_seen_at": r.last_seen_at.isoformat()} for r in rows
    ]


# ---------------------------------------------------------------------------
# Verification: rollups against raw-event aggregates
# ---------------------------------------------------------------------------

_VERIFY_QUERIES = {
    "analytics_featureaccountday": (
        """SELECT (occurred_at AT TIME ZONE 'UTC')::date, feature_id, account_id, sum(quantity), count(*),
                  count(DISTINCT end_user_id), max(occurred_at) FILTER (WHERE quantity > 0)
           FROM usage_usageevent WHERE workspace_id = %(ws)s GROUP BY 1, 2, 3""",
        """SELECT day, feature_id, account_id, uses, events, users::bigint, last_at
           FROM analytics_featureaccountday WHERE workspace_id = %(ws)s""",
    ),
    "analytics_featurequarterhour": (
        """SELECT date_bin('15 minutes', occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), feature_id,
                  sum(quantity), count(*)
           FROM usage_usageevent WHERE workspace_id = %(ws)s GROUP BY 1, 2""",
        """SELECT bucket, feature_id, uses, events FROM analytics_featurequarterhour WHERE workspace_id = %(ws)s""",
    ),
    "analytics_featureuserday": (
        """SELECT (occurred_at AT TIME ZONE 'UTC')::date, feature_id, end_user_id, sum(quantity), count(*)
           FROM usage_usageevent WHERE workspace_id = %(ws)s AND end_user_id IS NOT NULL GROUP BY 1, 2, 3""",
        """SELECT day, feature_id, end_user_id, uses, events FROM analytics_featureuserday
           WHERE workspace_id = %(ws)s""",
    ),
    "analytics_featureday": (
        """SELECT (occurred_at AT TIME ZONE 'UTC')::date, feature_id, sum(quantity), count(*)
           FROM usage_usageevent WHERE workspace_id = %(ws)s GROUP BY 1, 2""",
        """SELECT day, feature_id, uses, events FROM analytics_featureday WHERE workspace_id = %(ws)s""",
    ),
    "analytics_accountproductday": (
        """SELECT (e.occurred_at AT TIME ZONE 'UTC')::date, f.product_id, e.account_id, sum(e.quantity), count(*),
                  max(e.occurred_at) FILTER (WHERE e.quantity > 0)
           FROM usage_usageevent e JOIN catalog_feature f ON f.id = e.feature_id
           WHERE e.workspace_id = %(ws)s GROUP BY 1, 2, 3""",
        """SELECT day, product_id, account_id, uses, events, last_at FROM analytics_accountproductday
           WHERE workspace_id = %(ws)s""",
    ),
    "analytics_productquarterhour": (
        """SELECT date_bin('15 minutes', e.occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), f.product_id,
                  sum(e.quantity), count(*)
           FROM usage_usageevent e JOIN catalog_feature f ON f.id = e.feature_id
           WHERE e.workspace_id = %(ws)s GROUP BY 1, 2""",
        """SELECT bucket, product_id, uses, events FROM analytics_productquarterhour WHERE workspace_id = %(ws)s""",
    ),
    "analytics_accountfeaturelastseen": (
        """SELECT account_id, feature_id, max(occurred_at) FROM usage_usageevent
           WHERE workspace_id = %(ws)s AND quantity > 0 GROUP BY 1, 2""",
        """SELECT account_id, feature_id, last_seen_at FROM analytics_accountfeaturelastseen
           WHERE workspace_id = %(ws)s""",
    ),
}


def rollup_differences(*, workspace_id: int, limit: int = 50) -> tuple[list[str], int]:
    """Rows where a rollup table disagrees with raw events, skipping days still marked dirty.

    Returns (differences, pending_days)."""
    differences: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT day FROM usage_usagedaydirty WHERE workspace_id = %s", [workspace_id])
        dirty = {row[0] for row in cursor.fetchall()}
        for table, (expected_sql, actual_sql) in _VERIFY_QUERIES.items():
            cursor.execute(
                f"""
                SELECT 'missing or different', * FROM (({expected_sql}) EXCEPT ({actual_sql})) a
                UNION ALL
                SELECT 'unexpected', * FROM (({actual_sql}) EXCEPT ({expected_sql})) b
                """,
                {"ws": workspace_id},
            )
            for kind, *values in cursor.fetchall():
                # The time that names the bucket: last seen is checked against the day of the last use.
                first = values[2] if table == "analytics_accountfeaturelastseen" else values[0]
                day = first.astimezone(UTC).date() if isinstance(first, datetime) else first
                if day in dirty:
                    continue
                differences.append(f"{table}: {kind}: {tuple(values)!r}")
                if len(differences) >= limit:
                    return differences, len(dirty)
    return differences, len(dirty)


# ---------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------
# Reads for the CSM dashboard (analytics/views.py). Without module/plan filters the overview IS feature_usage
# (so the page and the analytics API show the same numbers); the list selectors read the rollups, the
# last-seen table and the entitlement selectors, never raw events across accounts.

NEAR_LIMIT_PCT = 80


def dashboard_has_usage(*, workspace: Workspace) -> bool:
    """Whether any usage has been rolled up for the workspace (else the pages show how to send a first event)."""
    from .models import FeatureAccountDay

    return FeatureAccountDay.objects.filter(workspace=workspace).exists()


def dashboard_overview(
    *,
    workspace: Workspace,
    product: Product,
    window: Window,
    module_key: str | None = None,
    plan: str | None = None,
) -> dict:
    """feature_usage (one code path with the analytics API), narrowed to one module's features and/or the
    accounts on one plan label, cached like the API's answer: computed once per rollup generation for every
    viewer. With a plan filter the heatmap is left out (`usage_pattern` None)."""
    return feature_usage_cached(
        workspace=workspace, product=product, window=window, module_key=module_key or None, plan=plan or None
    )


def dashboard_feature_get(*, workspace: Workspace, key: str) -> Feature:
    feature = Feature.objects.filter(workspace=workspace, key=key).select_related("product", "module").first()
    if feature is None:
        raise NotFound(f"No feature '{key}' in this workspace.", code="unknown_feature", field="feature_id")
    return feature


# The table of account owners (the user model's), for the account rows' raw SQL.
_OWNERS = Account._meta.get_field("owner").related_model._meta.db_table


def _account_rows(*, workspace: Workspace, ids) -> dict[int, dict]:
    """Account id → the list columns (owner as a username, "" without one); the ids are bound as one array (an
    IN list of 2,000 parameters cost ~10 ms of client-side binding on the feature page)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.id, a.external_id, a.name, a.domain, a.plan, a.status, COALESCE(u.username, ''), a.last_seen_at
            FROM accounts_account a LEFT JOIN {_OWNERS} u ON u.id = a.owner_id
            WHERE a.workspace_id = %s AND a.id = ANY(%s)
            """,
            [workspace.pk, list(ids)],
        )
        columns = ("id", "external_id", "name", "domain", "plan", "status", "owner", "last_seen_at")
        return {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}


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


def _feature_account_rows(
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
            LEFT JOIN {_OWNERS} u ON u.id = a.owner_id
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
    series, uses, last_seen = _rollup_cached(
        workspace=workspace,
        parts=["feature-page", str(feature.pk), window.start.isoformat(), window.end.isoformat()],
        compute=lambda: (
            feature_daily_series(workspace=workspace, feature=feature, window=window),
            *_feature_account_uses(workspace=workspace, feature=feature, window=window),
        ),
    )
    rows, count, by_plan = _feature_account_rows(workspace=workspace, uses=uses, last_seen=last_seen, limit=top)
    return {**series, "feature_id": feature.key, "name": feature.name}, rows, count, set(uses), by_plan


def dashboard_account_usage(*, workspace: Workspace, account: Account, window: Window) -> tuple[dict, dict, list]:
    """The account page's rollup reads: account_daily_series of the window and of the prior one, and
    account_feature_trend, computed once per rollup generation (keyed by the analytics features' ids, keys and
    names too); the account's name is read on every request."""
    features = analytics_features(workspace=workspace, product=None)
    series, prior, trend = _rollup_cached(
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


def plan_distribution(*, rows: list[dict]) -> list[dict]:
    """Accounts and uses per plan label over account rows (with `plan` and `uses`)."""
    return _plan_rows((r["plan"], 1, r["uses"]) for r in rows)


def _plan_rows(counts) -> list[dict]:
    """(plan label, accounts, uses) triples summed per label ("(none)" for no label), by uses then label."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for plan, accounts, uses in counts:
        acc[plan or "(none)"][0] += accounts
        acc[plan or "(none)"][1] += uses
    ordered = sorted(acc.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return [{"plan": p, "accounts": a, "uses": u} for p, (a, u) in ordered]


def _accounts_with_grants(
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
            JOIN entitlements_itementitlement ie ON ie.item_id = si.item_id
            JOIN catalog_feature f ON f.id = ie.feature_id
            WHERE s.workspace_id = %(ws)s AND s.status IN ('active', 'in_trial'){feature_sql}{metered_sql}
            UNION
            SELECT DISTINCT s.account_id, f.id FROM entitlements_subscription s
            JOIN entitlements_subscriptionentitlement se ON se.subscription_id = s.id
            JOIN catalog_feature f ON f.id = se.feature_id
            WHERE s.workspace_id = %(ws)s AND s.status IN ('active', 'in_trial')
              AND (se.expires_at IS NULL OR se.expires_at > %(now)s){feature_sql}{metered_sql}
            """,
            {"ws": workspace.pk, "now": now, "feature": feature_id},
        )
        out: dict[int, list[int]] = defaultdict(list)
        for account_id, fid in cursor.fetchall():
            out[account_id].append(fid)
    return out


def feature_entitled_accounts(*, workspace: Workspace, feature: Feature, now: datetime) -> list[dict]:
    """Accounts entitled to a feature, each with its check answer (entitlements.selectors.entitlement_payloads:
    every account resolved at once)."""
    from entitlements.selectors import effective_entitlements_for_accounts, entitlement_payloads

    account_ids = list(_accounts_with_grants(workspace=workspace, now=now, feature_id=feature.pk))
    rows = _account_rows(workspace=workspace, ids=account_ids)
    effectives = effective_entitlements_for_accounts(
        workspace=workspace, feature=feature, account_ids=account_ids, now=now
    )
    payloads = entitlement_payloads(feature=feature, effectives=effectives, now=now)
    out = []
    for account_id in account_ids:
        payload = payloads[account_id]
        if payload["value"] is None or (payload["reason"] == "not_entitled"):
            continue
        out.append({**rows[account_id], "entitlement": payload, "used_pct": _used_pct(payload)})
    return sorted(out, key=lambda r: r["external_id"])


def _used_pct(payload: dict) -> float | None:
    if payload.get("limit") is None:
        return None
    if payload["limit"] <= 0:
        return 100.0 if payload["used"] > 0 else 0.0
    return _pct(payload["used"], payload["limit"])


def accounts_near_limit(*, workspace: Workspace, now: datetime, threshold_pct: int = NEAR_LIMIT_PCT) -> list[dict]:
    """(account, metered feature) pairs whose allowance use is ≥ threshold % of the limit: the upsell list.
    Each metered feature's accounts are resolved and summed at once (entitlements' batch selectors)."""
    from entitlements.selectors import effective_entitlements_for_accounts, entitlement_payloads

    grants = _accounts_with_grants(workspace=workspace, now=now, metered_only=True)
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
    rows = _account_rows(workspace=workspace, ids=grants)
    out = []
    for fid, account_ids in accounts_by_feature.items():
        feature = features[fid]
        effectives = effective_entitlements_for_accounts(
            workspace=workspace, feature=feature, account_ids=account_ids, now=now
        )
        for account_id, payload in entitlement_payloads(feature=feature, effectives=effectives, now=now).items():
            pct = _used_pct(payload)
            if pct is None or pct < threshold_pct:
                continue
            out.append(
                {
                    **rows[account_id],
                    "feature_key": feature.key,
                    "feature_name": feature.name,
                    "limit": payload["limit"],
                    "used": payload["used"],
                    "used_pct": pct,
                    "resets_at": payload["resets_at"],
                    "over": payload["used"] >= payload["limit"],
                }
            )
    return sorted(out, key=lambda r: (-r["used_pct"], r["external_id"], r["feature_key"]))


def free_accounts_using_ungranted(
    *, workspace: Workspace, window: Window, now: datetime, free_plan: str = "free"
) -> list[dict]:
    """Accounts on the free plan label that used (net > 0, in the window) features their plan does not grant."""
    from entitlements.selectors import effective_entitlements_by_account
    from entitlements.values import value_grants

    free = list(Account.objects.filter(workspace=workspace, plan__iexact=free_plan).values_list("id", flat=True))
    if not free:
        return []
    features = analytics_features(workspace=workspace, product=None)
    by_id = {f["id"]: f for f in features}
    # What each free account holds, resolved at once (entitlements' batch selector); SQL then sums the
    # (account, feature) pairs of the window, drops the granted ones and returns one row per account (the
    # pairs, ~100k at 10M events, never come to Python).
    # What each free account holds is resolved on every request, at once (entitlements' batch selector):
    # subscriptions change at any time. The account's positive (feature, uses) pairs of the window come from
    # the rollups only, so they are cached under the rollup generation, keyed by the free accounts and the
    # analytics features too (~100k pairs at 10M events: ~300 ms of SQL, computed once per rollup).
    held = effective_entitlements_by_account(workspace=workspace, account_ids=free, now=now)
    pairs = _rollup_cached(
        workspace=workspace,
        parts=[
            "free-pairs",
            window.start.isoformat(),
            window.end.isoformat(),
            hashlib.sha256(",".join(map(str, sorted(free))).encode()).hexdigest(),
            hashlib.sha256(repr(sorted((f, by_id[f]["key"]) for f in by_id)).encode()).hexdigest(),
        ],
        compute=lambda: _positive_pairs(workspace=workspace, account_ids=free, by_id=by_id, window=window),
    )
    ungranted: dict[int, tuple[str, int, int]] = {}
    for account_id, (feature_ids, uses, all_used) in pairs.items():
        granted = {f.pk for f, eff in held[account_id] if value_grants(feature_type=f.type, value=eff.value)}
        if not granted.intersection(feature_ids):  # most free accounts: every used feature is ungranted
            ungranted[account_id] = all_used
            continue
        kept = [(by_id[f]["key"], u) for f, u in zip(feature_ids, uses, strict=True) if f not in granted]
        if kept:
            ungranted[account_id] = (", ".join(sorted(k for k, _ in kept)), len(kept), sum(u for _, u in kept))
    rows = _account_rows(workspace=workspace, ids=ungranted)
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


def dormant_accounts(*, workspace: Workspace, now: datetime, days: int = 14) -> list[dict]:
    """Active accounts whose last use of any analytics feature is more than `days` days ago (or never)."""
    features = analytics_features(workspace=workspace, product=None)
    feature_ids = [f["id"] for f in features]
    cutoff = now - timedelta(days=days)
    if _covers_every_feature(workspace=workspace, product=None, feature_ids=feature_ids):
        # Last positive use over every feature = the latest last_at of the account's account × product days.
        last_sql = """
            SELECT account_id, max(last_at) AS seen FROM analytics_accountproductday
            WHERE workspace_id = %(ws)s AND last_at IS NOT NULL GROUP BY account_id
        """
    else:
        last_sql = """
            SELECT account_id, max(last_seen_at) AS seen FROM analytics_accountfeaturelastseen
            WHERE workspace_id = %(ws)s AND feature_id = ANY(%(features)s) GROUP BY account_id
        """

    def last_seen() -> dict:
        with connection.cursor() as cursor:
            cursor.execute(last_sql, {"ws": workspace.pk, "features": feature_ids})
            return dict(cursor.fetchall())

    # Last uses come from the rollups only: computed once per rollup generation. Which accounts are active is
    # read on every request.
    seen_by_account = _rollup_cached(
        workspace=workspace,
        parts=["last-seen", hashlib.sha256(",".join(map(str, sorted(feature_ids))).encode()).hexdigest()],
        compute=last_seen,
    )
    active_ids = Account.objects.filter(workspace=workspace, status=Account.Status.ACTIVE).values_list("id", flat=True)
    last = {
        a: seen_by_account.get(a) for a in active_ids if seen_by_account.get(a) is None or seen_by_account[a] < cutoff
    }
    rows = _account_rows(workspace=workspace, ids=last)
    out = [
        {**rows[a], "last_used_at": seen, "days_quiet": (now - seen).days if seen else None} for a, seen in last.items()
    ]
    return sorted(out, key=lambda r: (r["last_used_at"] is not None, r["last_used_at"] or now, r["external_id"]))


def _account_window_and_prior(
    *, workspace: Workspace, feature_ids: list[int], window: Window
) -> dict[int, tuple[int, int]]:
    """Account → (net uses of the features in `window`, in the prior window), accounts with rows in either.
    When the features are every feature of the workspace, the account × product × day rollup holds the sums."""
    if _covers_every_feature(workspace=workspace, product=None, feature_ids=feature_ids):
        table, feature_sql = "analytics_accountproductday", ""
    else:
        table, feature_sql = "analytics_featureaccountday", " AND feature_id = ANY(%(features)s)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT account_id, COALESCE(sum(uses) FILTER (WHERE day >= %(start)s), 0),
                   COALESCE(sum(uses) FILTER (WHERE day < %(start)s), 0)
            FROM {table}
            WHERE workspace_id = %(ws)s AND day >= %(prior_start)s AND day <= %(end)s{feature_sql}
            GROUP BY account_id
            """,
            {
                "ws": workspace.pk,
                "features": feature_ids,
                "start": window.start,
                "prior_start": window.prior.start,
                "end": window.end,
            },
        )
        return {account: (int(current), int(prior)) for account, current, prior in cursor.fetchall()}


def accounts_usage_dropped(*, workspace: Workspace, window: Window, percent: int = 50) -> list[dict]:
    """Accounts whose net uses fell by at least `percent` % against the prior window (churn risk)."""
    features = analytics_features(workspace=workspace, product=None)
    feature_ids = [f["id"] for f in features]
    pairs = _rollup_cached(  # rollup numbers only: once per rollup generation
        workspace=workspace,
        parts=[
            "window-and-prior",
            window.start.isoformat(),
            window.end.isoformat(),
            hashlib.sha256(",".join(map(str, sorted(feature_ids))).encode()).hexdigest(),
        ],
        compute=lambda: _account_window_and_prior(workspace=workspace, feature_ids=feature_ids, window=window),
    )
    dropped = {
        a: (c, p) for a, (c, p) in pairs.items() if p > 0 and Decimal(max(c, 0)) * 100 <= Decimal(p) * (100 - percent)
    }
    rows = _account_rows(workspace=workspace, ids=dropped)
    out = [
        {**rows[a], "uses": c, "prior_uses": p, "change_pct": -_pct(p - max(c, 0), p)}
        for a, (c, p) in dropped.items()
        if rows[a]["status"] == Account.Status.ACTIVE
    ]
    return sorted(out, key=lambda r: (r["change_pct"], r["external_id"]))


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


# ---------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------
# Per-account numbers for the dormant and usage-drop alert triggers (alerts/rollup_triggers.py), read from the
# last-seen and account-day rollups over the analytics features (reserved prefixes left out, as on the
# dashboard).


def alert_accounts_last_used(*, workspace: Workspace, known_by: date) -> dict[int, date | None]:
    """Active accounts → UTC date of their last use of an analytics feature. An account that never used one is
    included (as None) only if first seen on or before `known_by`, so a brand-new account is not dormant."""
    features = analytics_features(workspace=workspace, product=None)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.id, (max(ls.last_seen_at) AT TIME ZONE 'UTC')::date
            FROM accounts_account a
            LEFT JOIN analytics_accountfeaturelastseen ls
              ON ls.workspace_id = a.workspace_id AND ls.account_id = a.id AND ls.feature_id = ANY(%s)
            WHERE a.workspace_id = %s AND a.status = 'active'
            GROUP BY a.id
            HAVING max(ls.last_seen_at) IS NOT NULL OR min(COALESCE(a.first_seen_at, a.created_at)) <= %s
            """,
            [[f["id"] for f in features], workspace.pk, datetime.combine(known_by, time.max, UTC)],
        )
        return dict(cursor.fetchall())


def alert_accounts_usage_windows(
    *, workspace: Workspace, window: Window, feature_keys: list[str] | None = None
) -> dict[int, tuple[int, int]]:
    """Account → (net uses in `window`, net uses in the window of equal length before it), for the accounts
    with rows in either; `feature_keys` narrows the analytics features counted."""
    wanted = set(feature_keys or ())
    features = analytics_features(workspace=workspace, product=None)
    ids = [f["id"] for f in features if not wanted or f["key"] in wanted]
    if not ids:
        return {}
    return _account_window_and_prior(workspace=workspace, feature_ids=ids, window=window)
