"""Reads for entitlements: effective entitlement resolution, allowance usage, and the check payload.

Resolution: over the account's active and in-trial subscriptions, each
subscription gives a feature either its override (if one exists and has not expired) or the highest value any
of its items grants; the account gets the highest value over its subscriptions. Draft features and draft items
grant nothing; archived ones keep granting where they already are.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from django.db import connection
from django.db.models import QuerySet

from accounts.models import Account, Workspace
from catalog.models import Feature, Item, Lifecycle, level_number
from core.errors import NotFound

from .models import GRANTING_ITEMS_JOIN_SQL, GRANTING_SQL, ItemEntitlement, Subscription, SubscriptionEntitlement
from .periods import Period, period_containing
from .values import UNLIMITED, feature_use_granted, value_rank

_GRANTS_SQL = f"""
SELECT s.account_id, ie.feature_id, s.id, s.current_term_start, ie.value, false
FROM entitlements_subscription s
JOIN entitlements_subscription_items si ON si.subscription_id = s.id
{GRANTING_ITEMS_JOIN_SQL}
JOIN entitlements_itementitlement ie ON ie.item_id = si.item_id
WHERE s.account_id = ANY(%(accounts)s) AND s.status IN {GRANTING_SQL} {{item_feature}}
UNION ALL
SELECT s.account_id, se.feature_id, s.id, s.current_term_start, se.value, true
FROM entitlements_subscription s
JOIN entitlements_subscriptionentitlement se ON se.subscription_id = s.id
WHERE s.account_id = ANY(%(accounts)s) AND s.status IN {GRANTING_SQL}
  AND (se.expires_at IS NULL OR se.expires_at > %(now)s) {{override_feature}}
"""

# Net allowance use per (account, period): each period is [start, end) cut into whole UTC days (from the daily
# counters) and the partial first/last days (from the per-event ledger). An unbounded period reads every daily
# counter and no ledger row (its bounds come from _period_bounds). One statement for one account (the check's
# hot path, prepared per connection) or for many (the dashboard's lists).
_USED_SQL = """
SELECT p.account_id,
  COALESCE((SELECT SUM(d.quantity) FROM entitlements_allowanceusagedaily d
            WHERE d.account_id = p.account_id AND d.feature_id = %(feature)s
              AND d.day >= p.first_day AND d.day < p.end_day), 0)
+ COALESCE((SELECT SUM(e.quantity) FROM entitlements_allowanceusageentry e
            WHERE e.account_id = p.account_id AND e.feature_id = %(feature)s
              AND ((e.occurred_at >= p.head_start AND e.occurred_at < p.head_end)
                OR (e.occurred_at >= p.tail_start AND e.occurred_at < p.tail_end))), 0)
FROM unnest(%(accounts)s::bigint[], %(first_day)s::date[], %(end_day)s::date[], %(head_start)s::timestamptz[],
            %(head_end)s::timestamptz[], %(tail_start)s::timestamptz[], %(tail_end)s::timestamptz[])
  AS p(account_id, first_day, end_day, head_start, head_end, tail_start, tail_end)
"""

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Effective:
    """What an account holds for one feature: the winning value and the subscription that gives it."""

    value: str | None
    subscription_id: int | None = None
    term_start: datetime | None = None


@contextmanager
def _prepared_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg 3 cursor with server-side binding on Django's connection: psycopg prepares a statement it has
    run a few times on a connection, so the check's queries are not planned again on every request. Errors
    become django.db errors."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _grants(*, account_ids: list[int], feature_id: int | None, now: datetime) -> dict[int, list[tuple]]:
    """Account → its grant rows (feature_id, subscription_id, term_start, value, is_override), one query."""
    params: dict[str, Any] = {"accounts": list(account_ids), "now": now}
    item_feature = override_feature = ""
    if feature_id is not None:
        params["feature"] = feature_id
        item_feature = "AND ie.feature_id = %(feature)s"
        override_feature = "AND se.feature_id = %(feature)s"
    out: dict[int, list[tuple]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_GRANTS_SQL.format(item_feature=item_feature, override_feature=override_feature), params)
        for account_id, *row in cursor.fetchall():
            out.setdefault(account_id, []).append(tuple(row))
    return out


def _resolve(*, feature: Feature, grants: list[tuple], positions: dict[str, int] | None = None) -> Effective:
    """Highest value across subscriptions, where a subscription's override replaces what its items give."""
    if positions is None and feature.type == "custom":
        positions = {level.value: level.position for level in feature.levels.all()}
    per_subscription: dict[int, tuple[float, str, datetime | None, bool]] = {}
    for _feature_id, subscription_id, term_start, value, is_override in grants:
        rank = value_rank(feature_type=feature.type, value=value, level_positions=positions)
        current = per_subscription.get(subscription_id)
        if current is None or (is_override and not current[3]) or (is_override == current[3] and rank > current[0]):
            per_subscription[subscription_id] = (rank, value, term_start, is_override)
    best: Effective = Effective(None)
    best_rank = float("-inf")
    for subscription_id in sorted(per_subscription):
        rank, value, term_start, _ = per_subscription[subscription_id]
        if rank > best_rank:
            best, best_rank = Effective(value, subscription_id, term_start), rank
    return best


def effective_entitlements_for_accounts(
    *, workspace: Workspace, feature: Feature, account_ids: list[int], now: datetime
) -> dict[int, Effective]:
    """effective_entitlement for many accounts of the workspace at once (two queries: grants, and levels of a
    custom feature). Every requested account is in the answer (Effective(None) when nothing grants it)."""
    if feature.workspace_id != workspace.pk:
        raise NotFound(f"No feature '{feature.key}' in this workspace.", code="unknown_feature", field="feature_id")
    if feature.status == Lifecycle.DRAFT or not account_ids:
        return {account_id: Effective(None) for account_id in account_ids}
    grants = _grants(account_ids=account_ids, feature_id=feature.pk, now=now)
    positions = {level.value: level.position for level in feature.levels.all()} if feature.type == "custom" else None
    return {
        account_id: _resolve(feature=feature, grants=grants.get(account_id, []), positions=positions)
        for account_id in account_ids
    }


def effective_entitlement(*, account_id: int, feature: Feature, now: datetime) -> Effective:
    """The effective value of one feature for an account (None when nothing grants it or it is a draft)."""
    return effective_entitlements_for_accounts(
        workspace=Workspace(pk=feature.workspace_id), feature=feature, account_ids=[account_id], now=now
    )[account_id]


def effective_entitlements_by_account(
    *, workspace: Workspace, account_ids: list[int], now: datetime
) -> dict[int, list[tuple[Feature, Effective]]]:
    """effective_entitlements for many accounts at once (three queries: grants, features, levels). Every
    requested account is in the answer (an empty list when its subscriptions mention nothing)."""
    if not account_ids:
        return {}
    grants = _grants(account_ids=account_ids, feature_id=None, now=now)
    features = {
        feature.pk: feature
        for feature in Feature.objects.filter(
            workspace=workspace, pk__in={row[0] for rows in grants.values() for row in rows}
        )
        .exclude(status=Lifecycle.DRAFT)
        .prefetch_related("levels")
    }
    out: dict[int, list[tuple[Feature, Effective]]] = {}
    for account_id in account_ids:
        by_feature: dict[int, list[tuple]] = {}
        for row in grants.get(account_id, []):
            if row[0] in features:
                by_feature.setdefault(row[0], []).append(row)
        held = sorted((features[fid] for fid in by_feature), key=lambda f: f.key)
        out[account_id] = [(feature, _resolve(feature=feature, grants=by_feature[feature.pk])) for feature in held]
    return out


def effective_entitlements(*, account_id: int, workspace: Workspace, now: datetime) -> list[tuple[Feature, Effective]]:
    """Every feature the account's subscriptions mention (draft features left out), by feature key."""
    return effective_entitlements_by_account(workspace=workspace, account_ids=[account_id], now=now)[account_id]


def _period_bounds(period: Period) -> tuple[date, date, datetime, datetime, datetime, datetime]:
    """(first whole day, end day (exclusive), head ledger range, tail ledger range) of a period: whole UTC days
    come from the daily counters, the partial first and last days from the ledger."""
    if period.start is None:  # every daily counter, no ledger row
        return date.min, date.max, _EPOCH, _EPOCH, _EPOCH, _EPOCH
    start, end = period.start, period.end
    first_midnight = datetime.combine(start.date(), time(0), tzinfo=start.tzinfo)
    if first_midnight < start:
        first_midnight += timedelta(days=1)
    end_midnight = datetime.combine(end.date(), time(0), tzinfo=end.tzinfo)
    if end_midnight < first_midnight:  # a period inside one day: the ledger covers all of it
        first_midnight = end_midnight = end
    return first_midnight.date(), end_midnight.date(), start, first_midnight, end_midnight, end


def allowances_used(*, feature_id: int, periods: dict[int, Period]) -> dict[int, int]:
    """allowance_used for many accounts of one feature, each over its own period, in one query."""
    if not periods:
        return {}
    bounds = [_period_bounds(period) for period in periods.values()]
    params = {"feature": feature_id, "accounts": list(periods)}
    for i, name in enumerate(("first_day", "end_day", "head_start", "head_end", "tail_start", "tail_end")):
        params[name] = [b[i] for b in bounds]
    with _prepared_cursor() as cursor:
        cursor.execute(_USED_SQL, params)
        return {account_id: int(used) for account_id, used in cursor.fetchall()}


def allowance_used(*, account_id: int, feature_id: int, period: Period) -> int:
    """Net quantity of the account's events for the feature in [period.start, period.end)."""
    return allowances_used(feature_id=feature_id, periods={account_id: period})[account_id]


def allowance_period(*, feature: Feature, effective: Effective, at: datetime) -> Period:
    return period_containing(
        reset_period=feature.reset_period,
        reset_anchor=feature.reset_anchor,
        term_start=effective.term_start,
        at=at,
    )


def usage_refusal(*, feature: Feature, value: str | None, quantity: int, used: int | None = None) -> str | None:
    """Why an account holding `value` may not use `quantity` more of the feature, or None when it may: the one
    rule the check answers and the record enforces. Not granted (feature_use_granted) → "not_entitled"; a
    number feature's value is a limit → "limit_exceeded" when used + quantity > limit (metered, `used` in the
    period) or quantity > value (not metered); unlimited, switch and custom values set no limit."""
    if not feature_use_granted(feature=feature, value=value):
        return "not_entitled"
    if value == UNLIMITED or feature.type not in (Feature.Type.QUANTITY, Feature.Type.RANGE):
        return None
    asked = max(quantity, 0) + ((used or 0) if feature.metered else 0)
    return "limit_exceeded" if asked > int(value) else None


def entitlement_payload(
    *,
    feature: Feature,
    effective: Effective,
    account_id: int,
    now: datetime,
    quantity: int = 0,
    at: datetime | None = None,
    used: Callable[[Period], int] | None = None,
) -> dict:
    """The check answer for one feature: entitled, value, and for metered features the allowance.

    `quantity` asks "may the account use this much more" (usage_refusal decides). With quantity 0 (the
    default) `entitled` says whether the feature is granted and, if metered, not already over its limit. The
    allowance is that of the period containing `at` (default `now`; the record judges an event in the period of
    its timestamp). `used(period)` replaces the counters (the record path while the feature's counters are being
    rebuilt).
    """
    return entitlement_payloads(
        feature=feature,
        effectives={account_id: effective},
        now=now,
        quantity=quantity,
        at=at,
        used=None if used is None else lambda periods: {a: used(p) for a, p in periods.items()},
    )[account_id]


def entitlement_payloads(
    *,
    feature: Feature,
    effectives: dict[int, Effective],
    now: datetime,
    quantity: int = 0,
    at: datetime | None = None,
    used: Callable[[dict[int, Period]], dict[int, int]] | None = None,
) -> dict[int, dict]:
    """entitlement_payload for many accounts of one feature: the allowances of the metered ones are summed in
    one query (allowances_used). A metered allowance of 0 answers `limit: 0` and `entitled: false`
    (`not_entitled`): the limit says why."""
    payloads: dict[int, dict[str, Any]] = {}
    periods: dict[int, Period] = {}
    for account_id, effective in effectives.items():
        value = effective.value
        payloads[account_id] = {
            "feature_id": feature.key,
            "entitled": False,
            "type": feature.type,
            "value": value,
            "unlimited": value == UNLIMITED,
            "limit": None,
            "used": None,
            "remaining": None,
            "resets_at": None,
            "reason": None,
        }
        if feature.metered and (value == UNLIMITED or level_number(value or "") is not None):
            periods[account_id] = allowance_period(feature=feature, effective=effective, at=at or now)
    limited = {a: p for a, p in periods.items() if effectives[a].value != UNLIMITED}
    used_by_account = (used or (lambda p: allowances_used(feature_id=feature.pk, periods=p)))(limited)
    for account_id, payload in payloads.items():
        if account_id in periods:
            # An unlimited allowance has no limit, but its period still resets.
            payload["resets_at"] = _resets_at(periods[account_id])
        if account_id in limited:
            limit, spent = int(payload["value"]), used_by_account[account_id]
            payload.update(limit=limit, used=spent, remaining=max(limit - spent, 0))
        reason = usage_refusal(feature=feature, value=payload["value"], quantity=quantity, used=payload["used"])
        payload.update(entitled=reason is None, reason=reason)
    return payloads


def _resets_at(period: Period) -> str | None:
    return period.end.isoformat().replace("+00:00", "Z") if period.end else None


def refusal_payload(*, feature_key: str, reason: str, feature: Feature | None = None) -> dict:
    """The check answer when the account or feature is unknown."""
    return {
        "feature_id": feature_key,
        "entitled": False,
        "type": feature.type if feature else None,
        "value": None,
        "unlimited": False,
        "limit": None,
        "used": None,
        "remaining": None,
        "resets_at": None,
        "reason": reason,
    }


_CHECK_SQL = f"""
WITH f AS (
    SELECT id, type, status, metered, reset_period, reset_anchor FROM catalog_feature
    WHERE workspace_id = %(workspace)s AND key = %(feature_key)s
), a AS (
    SELECT id FROM accounts_account WHERE workspace_id = %(workspace)s AND external_id = %(account_key)s
)
SELECT f.id, f.type, f.status, f.metered, f.reset_period, f.reset_anchor, a.id,
  CASE WHEN f.type = 'custom' THEN
    (SELECT array_agg(l.value ORDER BY l.position) FROM catalog_featurelevel l WHERE l.feature_id = f.id)
  END,
  (SELECT array_agg(ARRAY[s.id::text, COALESCE(s.current_term_start::text, ''), ie.value, 'i'])
     FROM entitlements_subscription s
     JOIN entitlements_subscription_items si ON si.subscription_id = s.id
     {GRANTING_ITEMS_JOIN_SQL}
     JOIN entitlements_itementitlement ie ON ie.item_id = si.item_id AND ie.feature_id = f.id
    WHERE s.account_id = a.id AND s.status IN {GRANTING_SQL}),
  (SELECT array_agg(ARRAY[s.id::text, COALESCE(s.current_term_start::text, ''), se.value, 'o'])
     FROM entitlements_subscription s
     JOIN entitlements_subscriptionentitlement se ON se.subscription_id = s.id AND se.feature_id = f.id
    WHERE s.account_id = a.id AND s.status IN {GRANTING_SQL}
      AND (se.expires_at IS NULL OR se.expires_at > %(now)s))
FROM f LEFT JOIN a ON true
"""


def entitlement_check(
    *, workspace: Workspace, account_key: str, feature_key: str, now: datetime, quantity: int = 0
) -> dict:
    """`GET /api/v1/entitlements/check`: unknown accounts and features answer entitled false with a reason.

    One query reads the feature, the account and every grant (a second sums `used` for metered features):
    the check is the hot path of the API."""
    with _prepared_cursor() as cursor:
        cursor.execute(
            _CHECK_SQL,
            {"workspace": workspace.pk, "feature_key": feature_key, "account_key": account_key, "now": now},
        )
        row = cursor.fetchone()
    if row is None:
        return refusal_payload(feature_key=feature_key, reason="unknown_feature")
    feature_id, ftype, fstatus, metered, reset_period, reset_anchor, account_id, levels, items, overrides = row
    feature = Feature(
        pk=feature_id,
        workspace_id=workspace.pk,
        key=feature_key,
        type=ftype,
        status=fstatus,
        metered=metered,
        reset_period=reset_period,
        reset_anchor=reset_anchor,
    )
    if account_id is None:
        return refusal_payload(feature_key=feature_key, reason="unknown_account", feature=feature)
    if fstatus == Lifecycle.DRAFT:
        effective = Effective(None)
    else:
        grants = [
            (feature_id, int(sub), datetime.fromisoformat(start) if start else None, value, kind == "o")
            for sub, start, value, kind in (items or []) + (overrides or [])
        ]
        positions = {value: position for position, value in enumerate(levels or [])}
        effective = _resolve(feature=feature, grants=grants, positions=positions)
    return entitlement_payload(feature=feature, effective=effective, account_id=account_id, now=now, quantity=quantity)


def account_entitlements(*, workspace: Workspace, account_key: str, now: datetime) -> list[dict]:
    """`GET /api/v1/accounts/{account_id}/entitlements`: one check answer per feature the account holds."""
    account_id = account_pk_get(workspace=workspace, account_key=account_key)
    return [
        entitlement_payload(feature=feature, effective=effective, account_id=account_id, now=now)
        for feature, effective in effective_entitlements(account_id=account_id, workspace=workspace, now=now)
    ]


def account_pk_get(*, workspace: Workspace, account_key: str) -> int:
    account_id = (
        Account.objects.filter(workspace=workspace, external_id=account_key).values_list("pk", flat=True).first()
    )
    if account_id is None:
        raise NotFound(f"No account '{account_key}'.", code="unknown_account", field="account_id")
    return account_id


# ---------------------------------------------------------------------------
# Lists and lookups for the REST API and the admin
# ---------------------------------------------------------------------------


def item_entitlement_list(*, item: Item) -> QuerySet[ItemEntitlement]:
    return ItemEntitlement.objects.filter(item=item).select_related("item", "feature").order_by("feature__key")


def item_entitlement_get(*, item: Item, feature: Feature) -> ItemEntitlement:
    entitlement = ItemEntitlement.objects.filter(item=item, feature=feature).select_related("item", "feature").first()
    if entitlement is None:
        raise NotFound(f"Item '{item.key}' has no entitlement for feature '{feature.key}'.", code="not_found")
    return entitlement


def subscription_list(*, workspace: Workspace) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(workspace=workspace)
        .select_related("account")
        .prefetch_related("items")
        .order_by("external_id")
    )


def subscription_get(*, workspace: Workspace, external_id: str) -> Subscription:
    subscription = subscription_list(workspace=workspace).filter(external_id=external_id).first()
    if subscription is None:
        raise NotFound(f"No subscription '{external_id}'.", code="unknown_subscription")
    return subscription


def subscription_entitlement_list(*, subscription: Subscription) -> QuerySet[SubscriptionEntitlement]:
    return (
        SubscriptionEntitlement.objects.filter(subscription=subscription)
        .select_related("subscription", "feature")
        .order_by("feature__key")
    )


def subscription_entitlement_get(*, subscription: Subscription, feature: Feature) -> SubscriptionEntitlement:
    entitlement = subscription_entitlement_list(subscription=subscription).filter(feature=feature).first()
    if entitlement is None:
        raise NotFound(
            f"Subscription '{subscription.external_id}' has no entitlement for feature '{feature.key}'.",
            code="not_found",
        )
    return entitlement
