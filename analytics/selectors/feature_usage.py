"""Product feature usage: the feature-usage API's answer (also the dashboard overview), its heatmap and the
per-feature daily uses behind its sparklines, read from the rollup tables."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from accounts.models import Account, Workspace
from catalog.models import Feature, Product

from .common import (
    active_accounts_count,
    analytics_features,
    features_cover_all,
    percent_of,
    rollup_cached,
    window_and_prior_sums,
)
from .windows import Window

TOP = 12  # rows of the top features, accounts and domains
# Rows of a page of the top features (the dashboard's adoption table pages through every used feature).
TOP_FEATURES = TOP
ALL_PRODUCTS = "*"  # the product key meaning every product of the workspace


def usage_pattern(
    *,
    workspace: Workspace,
    feature_ids: list[int],
    window: Window,
    account: Account | None = None,
    whole_product: Product | None = None,
    whole_workspace: bool = False,
) -> list[list[int]]:
    """7×24 net uses by local weekday (0 = Sunday) and hour in the workspace's timezone. `whole_product`: the
    caller's feature_ids are every feature of that product, so its per-product buckets can be read;
    `whole_workspace`: they are every feature of the workspace, so every product's buckets are summed."""
    grid = [[0] * 24 for _ in range(7)]
    if not feature_ids:
        return grid
    with connection.cursor() as cursor:
        if account is None and whole_workspace:
            cursor.execute(
                """
                SELECT bucket, sum(uses) FROM analytics_productquarterhour
                WHERE workspace_id = %s AND bucket >= %s AND bucket < %s
                GROUP BY bucket
                """,
                [workspace.pk, window.start_at, window.end_before],
            )
        elif account is None and whole_product is not None:
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


@dataclass
class FeatureSums:
    """Per feature: net uses in the window and in the prior window (features with rows in either)."""

    net: dict[int, int] = field(default_factory=dict)
    prior: dict[int, int] = field(default_factory=dict)


@dataclass
class AccountSums:
    """Per account: net uses in the window and its external id; per domain (lower-cased, trimmed, non-empty):
    the sum over its accounts."""

    net: dict[int, int] = field(default_factory=dict)
    external_ids: dict[int, str] = field(default_factory=dict)
    domains: dict[str, int] = field(default_factory=dict)


@dataclass
class PairCounts:
    """Counts that need per-(feature, account) net uses: accounts and domains using each feature (net > 0),
    features used by each account."""

    feature_accounts: dict[int, int] = field(default_factory=dict)
    feature_domains: dict[int, int] = field(default_factory=dict)
    account_features: dict[int, int] = field(default_factory=dict)


@dataclass
class WindowSums:
    features: FeatureSums = field(default_factory=FeatureSums)
    accounts: AccountSums = field(default_factory=AccountSums)
    pairs: PairCounts = field(default_factory=PairCounts)


@dataclass(frozen=True)
class UsageTotals:
    events: int
    unique_features: int
    unique_accounts: int
    unique_domains: int
    active_accounts: int


@dataclass(frozen=True)
class TopFeature:
    feature_id: str
    name: str
    events: int
    prior_events: int
    accounts: int
    domains: int
    adoption_pct: float
    sparkline: list[int]
    sparkline_days: list[str]


@dataclass(frozen=True)
class QuietFeature:
    feature_id: str
    name: str
    prior_events: int


@dataclass(frozen=True)
class TopAccount:
    account_id: str
    name: str
    customer_email: str  # the account's billing contact ("" if none)
    events: int
    features: int


@dataclass(frozen=True)
class TopDomain:
    domain: str
    events: int


@dataclass(frozen=True)
class FeatureUsage:
    """One product's feature usage over a window; as_json() is the feature-usage API's body."""

    product_id: str
    window: Window
    timezone: str
    totals: UsageTotals
    top_features: list[TopFeature]
    quiet_features: list[QuietFeature]
    usage_pattern: list[list[int]] | None
    top_accounts: list[TopAccount]
    top_domains: list[TopDomain]

    def as_json(self) -> dict:
        return {
            "product_id": self.product_id,
            "from": self.window.start.isoformat(),
            "to": self.window.end.isoformat(),
            "prior_from": self.window.prior.start.isoformat(),
            "prior_to": self.window.prior.end.isoformat(),
            "timezone": self.timezone,
            "totals": asdict(self.totals),
            "top_features": [asdict(f) for f in self.top_features],
            "quiet_features": [asdict(f) for f in self.quiet_features],
            "usage_pattern": self.usage_pattern,
            "top_accounts": [asdict(a) for a in self.top_accounts],
            "top_domains": [asdict(d) for d in self.top_domains],
        }


def feature_usage(
    *,
    workspace: Workspace,
    product: Product | None,
    window: Window,
    event: str | None = None,
    account: Account | None = None,
    module_key: str | None = None,
    plan: str | None = None,
    features_offset: int = 0,
) -> FeatureUsage:
    """The feature usage of one product (None: every product) over a window (the API's answer, also the
    dashboard overview). `top_features` are the TOP_FEATURES used features with the most uses from
    `features_offset` on (the dashboard pages through all of them; `totals.unique_features` says how many).

    The dashboard's filters: `module_key` keeps the features of that module, `plan` the accounts with that plan
    label (active accounts and adoption too). With `plan` the heatmap is None: its rollups are per feature
    across accounts and cannot be split by plan."""
    features = analytics_features(workspace=workspace, product=product, event=event)
    if module_key:
        in_product = Feature.objects.filter(workspace=workspace, module__key=module_key)
        if product is not None:
            in_product = in_product.filter(product=product)
        in_module = set(in_product.values_list("id", flat=True))
        features = [f for f in features if f["id"] in in_module]
    account_ids: list[int] | None = None
    if plan:
        account_ids = list(Account.objects.filter(workspace=workspace, plan=plan).values_list("id", flat=True))
    by_id = {f["id"]: f for f in features}
    feature_ids = list(by_id)
    whole = (
        bool(feature_ids)
        and account is None
        and features_cover_all(workspace=workspace, product=product, feature_ids=feature_ids)
    )
    across_accounts = bool(feature_ids) and account is None and account_ids != []
    if across_accounts:
        # Per-feature numbers from the feature × day rollup, per-account ones from account × product × day
        # (whole product) or from (feature, account) pairs of the window; the per-pair numbers that only the
        # top features / accounts show are computed for those alone, below.
        # `account_ids` (a plan's accounts): the same sums over those accounts' rows only.
        sums = WindowSums(
            features=_feature_sums(
                workspace=workspace, feature_ids=feature_ids, window=window, account_ids=account_ids
            ),
            accounts=_account_sums(
                workspace=workspace,
                product=product if whole else None,
                all_products=whole and product is None,
                feature_ids=feature_ids,
                window=window,
                account_ids=account_ids,
            ),
        )
    elif feature_ids and account is not None:
        sums = _one_account_sums(workspace=workspace, feature_ids=feature_ids, window=window, account=account)
    else:
        sums = WindowSums()

    active = active_accounts_count(workspace=workspace, by=window.end, account=account, plan=plan or None)
    feature_net, account_net = sums.features.net, sums.accounts.net
    used_features = sorted(
        (fid for fid, uses in feature_net.items() if uses > 0), key=lambda fid: (-feature_net[fid], by_id[fid]["key"])
    )
    top_ids = used_features[features_offset : features_offset + TOP_FEATURES]
    used_accounts = sorted(
        (aid for aid, uses in account_net.items() if uses > 0),
        key=lambda aid: (-account_net[aid], sums.accounts.external_ids[aid]),
    )
    if across_accounts:
        sums.pairs = _top_pair_counts(
            workspace=workspace,
            feature_ids=feature_ids,
            top_feature_ids=top_ids,
            top_account_ids=used_accounts[:TOP],
            window=window,
            account_ids=account_ids,
        )
    sparklines = feature_daily_uses(
        workspace=workspace, feature_ids=top_ids, window=window, account=account, account_ids=account_ids
    )
    return FeatureUsage(
        product_id=product.key if product is not None else ALL_PRODUCTS,
        window=window,
        timezone=workspace.timezone or "UTC",
        totals=UsageTotals(
            events=sum(feature_net.values()),
            unique_features=len(used_features),
            unique_accounts=len(used_accounts),
            unique_domains=len([d for d, uses in sums.accounts.domains.items() if uses > 0]),
            active_accounts=active,
        ),
        top_features=_top_features(
            sums, by_id=by_id, top_ids=top_ids, active=active, sparklines=sparklines, window=window
        ),
        quiet_features=_quiet_features(sums.features, by_id=by_id, feature_ids=feature_ids),
        usage_pattern=None
        if plan
        else usage_pattern(
            workspace=workspace,
            feature_ids=feature_ids,
            window=window,
            account=account,
            whole_product=product if whole else None,
            whole_workspace=whole and product is None,
        ),
        top_accounts=_top_accounts(sums, account_ids=used_accounts[:TOP]),
        top_domains=_top_domains(sums.accounts.domains),
    )


def _top_features(
    sums: WindowSums, *, by_id: dict, top_ids: list[int], active: int, sparklines: dict, window: Window
) -> list[TopFeature]:
    sparkline_days = [d.isoformat() for d in window.days]
    return [
        TopFeature(
            feature_id=by_id[fid]["key"],
            name=by_id[fid]["name"],
            events=sums.features.net[fid],
            prior_events=sums.features.prior.get(fid, 0),
            accounts=sums.pairs.feature_accounts.get(fid, 0),
            domains=sums.pairs.feature_domains.get(fid, 0),
            adoption_pct=percent_of(sums.pairs.feature_accounts.get(fid, 0), active),
            sparkline=[sparklines[fid].get(d, 0) for d in window.days],
            sparkline_days=sparkline_days,
        )
        for fid in top_ids
    ]


def _quiet_features(sums: FeatureSums, *, by_id: dict, feature_ids: list[int]) -> list[QuietFeature]:
    """Features used in the prior window (net > 0) and not in this one (net ≤ 0), most used before first."""
    quiet = sorted(
        (fid for fid in feature_ids if sums.prior.get(fid, 0) > 0 and sums.net.get(fid, 0) <= 0),
        key=lambda fid: (-sums.prior[fid], by_id[fid]["key"]),
    )
    return [QuietFeature(by_id[fid]["key"], by_id[fid]["name"], sums.prior[fid]) for fid in quiet]


def _top_accounts(sums: WindowSums, *, account_ids: list[int]) -> list[TopAccount]:
    names = {
        pk: (name, email)
        for pk, name, email in Account.objects.filter(pk__in=account_ids).values_list("pk", "name", "customer_email")
    }
    return [
        TopAccount(
            account_id=sums.accounts.external_ids[aid],
            name=names[aid][0],
            customer_email=names[aid][1],
            events=sums.accounts.net[aid],
            features=sums.pairs.account_features.get(aid, 0),
        )
        for aid in account_ids
    ]


def _top_domains(domains: dict[str, int]) -> list[TopDomain]:
    used = sorted((d for d, uses in domains.items() if uses > 0), key=lambda d: (-domains[d], d))
    return [TopDomain(d, domains[d]) for d in used[:TOP]]


def _one_account_sums(*, workspace: Workspace, feature_ids: list[int], window: Window, account: Account) -> WindowSums:
    """Every number of one account's feature usage in one pass over the window and the prior window, aggregated
    in SQL per (feature, account), then per feature, per account, per (feature, domain) and per domain."""
    sums = WindowSums()
    with transaction.atomic(), connection.cursor() as cursor:
        # Hundreds of thousands of (feature, account) groups: let the aggregate stay in memory.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(
            """
            WITH pairs AS MATERIALIZED (
                SELECT feature_id, account_id,
                       COALESCE(sum(uses) FILTER (WHERE day >= %(start)s), 0) AS cur,
                       COALESCE(sum(uses) FILTER (WHERE day < %(start)s), 0) AS prior
                FROM analytics_featureaccountday
                WHERE workspace_id = %(ws)s AND feature_id = ANY(%(features)s)
                  AND day >= %(prior_start)s AND day <= %(end)s AND account_id = %(account)s
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
                "prior_start": window.prior.start,
                "end": window.end,
                "account": account.pk,
            },
        )
        for kind, pk, text, now_uses, prior_uses, count in cursor.fetchall():
            if kind == "feature":
                sums.features.net[pk] = int(now_uses)
                sums.features.prior[pk] = int(prior_uses)
                sums.pairs.feature_accounts[pk] = int(count)
            elif kind == "account":
                sums.accounts.net[pk] = int(now_uses)
                sums.accounts.external_ids[pk] = text
                sums.pairs.account_features[pk] = int(count)
            elif kind == "feature_domains":
                sums.pairs.feature_domains[pk] = int(count)
            else:
                sums.accounts.domains[text] = int(now_uses)
    return sums


def _feature_sums(
    *, workspace: Workspace, feature_ids: list[int], window: Window, account_ids: list[int] | None = None
) -> FeatureSums:
    """Per feature: net uses in the window and in the prior window (features with rows in either), over every
    account (the feature × day rollup) or over `account_ids` (their (feature, account, day) rows, read through
    the (workspace, account, day) covering index and grouped by feature; the features are picked from the
    groups: a `feature_id = ANY(200 ids)` test on each of ~1M rows cost more than the aggregate)."""
    if account_ids is None:
        table, among = "analytics_featureday", ("feature_id", feature_ids)
    else:
        table, among = "analytics_featureaccountday", ("account_id", account_ids)
    totals = window_and_prior_sums(workspace=workspace, window=window, table=table, key="feature_id", among=among)
    wanted = set(feature_ids)
    sums = FeatureSums()
    for feature_id, (now_uses, prior_uses) in totals.items():
        if feature_id in wanted:
            sums.net[feature_id] = now_uses
            sums.prior[feature_id] = prior_uses
    return sums


def _account_sums(
    *,
    workspace: Workspace,
    product: Product | None,
    feature_ids: list[int],
    window: Window,
    account_ids: list[int] | None = None,
    all_products: bool = False,
) -> AccountSums:
    """Per account: net uses of the features in the window (with its external id); per domain (lower-cased,
    trimmed, non-empty): the sum over its accounts. `product`: feature_ids are all of its features, so the
    account × product × day rollup is read instead of (feature, account) pairs (`all_products`: feature_ids are
    every feature, so that rollup is summed over every product). `account_ids`: only those."""
    account_sql = " AND r.account_id = ANY(%s)" if account_ids is not None else ""
    account_params = [account_ids] if account_ids is not None else []
    sums = AccountSums()
    with connection.cursor() as cursor:
        if all_products:
            cursor.execute(
                f"""
                SELECT r.account_id, a.external_id, lower(btrim(a.domain)), sum(r.uses)
                FROM analytics_accountproductday r JOIN accounts_account a ON a.id = r.account_id
                WHERE r.workspace_id = %s AND r.day >= %s AND r.day <= %s{account_sql}
                GROUP BY 1, 2, 3
                """,
                [workspace.pk, window.start, window.end, *account_params],
            )
        elif product is not None:
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
            sums.net[account_id] = int(uses)
            sums.external_ids[account_id] = external_id
            if domain:
                sums.domains[domain] = sums.domains.get(domain, 0) + int(uses)
    return sums


def _top_pair_counts(
    *,
    workspace: Workspace,
    feature_ids: list[int],
    top_feature_ids: list[int],
    top_account_ids: list[int],
    window: Window,
    account_ids: list[int] | None = None,
) -> PairCounts:
    """Numbers that need per-(feature, account) net uses, for the listed features and accounts only: accounts
    and domains using each top feature, features used by each top account. `account_ids`: among those only."""
    account_sql = " AND account_id = ANY(%(accounts)s)" if account_ids is not None else ""
    counts = PairCounts()
    by_kind = {
        "accounts": counts.feature_accounts,
        "domains": counts.feature_domains,
        "features": counts.account_features,
    }
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
            by_kind[kind][pk] = int(count)
    return counts


def feature_usage_cached(
    *,
    workspace: Workspace,
    product: Product | None,
    window: Window,
    event: str | None = None,
    account: Account | None = None,
    module_key: str | None = None,
    plan: str | None = None,
    features_offset: int = 0,
) -> FeatureUsage:
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
        "features_offset": features_offset,
    }
    parts = [
        "feature-usage:typed-2",  # not what earlier versions cached (dicts; TopAccount without customer_email)
        str(product.pk) if product is not None else ALL_PRODUCTS,
        window.start.isoformat(),
        window.end.isoformat(),
        event or "",
        str(account.pk) if account is not None else "",
        workspace.timezone or "UTC",
        "|".join(workspace.reserved_prefixes or ()),
        module_key or "",
        plan or "",
        str(features_offset),
    ]
    return rollup_cached(workspace=workspace, parts=parts, compute=lambda: feature_usage(**args))


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
