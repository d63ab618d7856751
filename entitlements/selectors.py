"""Reads for entitlements: effective entitlement resolution, allowance usage, and the check payload.

Resolution (DESIGN.md "Entitlement semantics"): over the account's active and in-trial subscriptions, each
subscription gives a feature either its override (if one exists and has not expired) or the highest value any
of its items grants; the account gets the highest value over its subscriptions. Draft features grant nothing.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import psycopg
from django.db import connection
from django.db.models import QuerySet

from accounts.errors import NotFound
from accounts.models import Account, Workspace
from catalog.models import Feature, Item, Lifecycle

from .models import ItemEntitlement, Subscription, SubscriptionEntitlement
from .periods import Period, period_containing
from .values import UNLIMITED, value_grants, value_rank

_GRANTS_SQL = """
SELECT ie.feature_id, s.id, s.current_term_start, ie.value, false
FROM entitlements_subscription s
JOIN entitlements_subscription_items si ON si.subscription_id = s.id
JOIN entitlements_itementitlement ie ON ie.item_id = si.item_id
WHERE s.account_id = %(account)s AND s.status IN ('active', 'in_trial') {item_feature}
UNION ALL
SELECT se.feature_id, s.id, s.current_term_start, se.value, true
FROM entitlements_subscription s
JOIN entitlements_subscriptionentitlement se ON se.subscription_id = s.id
WHERE s.account_id = %(account)s AND s.status IN ('active', 'in_trial')
  AND (se.expires_at IS NULL OR se.expires_at > %(now)s) {override_feature}
"""

_USED_ALL_SQL = """
SELECT COALESCE(SUM(quantity), 0) FROM entitlements_allowanceusagedaily
WHERE account_id = %s AND feature_id = %s
"""

_USED_SQL = """
SELECT
  COALESCE((SELECT SUM(quantity) FROM entitlements_allowanceusagedaily
            WHERE account_id = %(account)s AND feature_id = %(feature)s
              AND day >= %(first_day)s AND day < %(end_day)s), 0)
+ COALESCE((SELECT SUM(quantity) FROM entitlements_allowanceusageentry
            WHERE account_id = %(account)s AND feature_id = %(feature)s
              AND ((occurred_at >= %(start)s AND occurred_at < %(head_end)s)
                OR (occurred_at >= %(tail_start)s AND occurred_at < %(end)s))), 0)
"""


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


def _grants(*, account_id: int, feature_id: int | None, now: datetime) -> list[tuple]:
    params: dict[str, Any] = {"account": account_id, "now": now}
    item_feature = override_feature = ""
    if feature_id is not None:
        params["feature"] = feature_id
        item_feature = "AND ie.feature_id = %(feature)s"
        override_feature = "AND se.feature_id = %(feature)s"
    with connection.cursor() as cursor:
        cursor.execute(
            _GRANTS_SQL.format(item_feature=item_feature, override_feature=override_feature), params
        )
        return cursor.fetchall()


def _resolve(*, feature: Feature, grants: list[tuple], positions: dict[str, int] | None = None) -> Effective:
    """Highest value across subscriptions, where a subscription's override replaces what its items give."""
    if positions is None and feature.type == "custom":
        positions = {level.value: level.position for level in feature.levels.all()}
    per_subscription: dict[int, tuple[float, str, datetime | None, bool]] = {}
    for _feature_id, subscription_id, term_start, value, is_override in grants:
        rank = value_rank(feature_type=feature.type, value=value, level_positions=positions)
        current = per_subscription.get(subscription_id)
        if (
            current is None
            or (is_override and not current[3])
            or (is_override == current[3] and rank > current[0])
        ):
            per_subscription[subscription_id] = (rank, value, term_start, is_override)
    best: Effective = Effective(None)
    best_rank = float("-inf")
    for subscription_id in sorted(per_subscription):
        rank, value, term_start, _ = per_subscription[subscription_id]
        if rank > best_rank:
            best, best_rank = Effective(value, subscription_id, term_start), rank
    return best


def effective_entitlement(*, account_id: int, feature: Feature, now: datetime) -> Effective:
    """The effective value of one feature for an account (None when nothing grants it or it is a draft)."""
    if feature.status == Lifecycle.DRAFT:
        return Effective(None)
    return _resolve(feature=feature, grants=_grants(account_id=account_id, feature_id=feature.pk, now=now))


def effective_entitlements(
    *, account_id: int, workspace: Workspace, now: datetime
) -> list[tuple[Feature, Effective]]:
    """Every feature the account's subscriptions mention (draft features left out), by feature key."""
    grants = _grants(account_id=account_id, feature_id=None, now=now)
    by_feature: dict[int, list[tuple]] = {}
    for row in grants:
        by_feature.setdefault(row[0], []).append(row)
    features = (
        Feature.objects.filter(workspace=workspace, pk__in=by_feature)
        .exclude(status=Lifecycle.DRAFT)
        .prefetch_related("levels")
        .order_by("key")
    )
    return [(feature, _resolve(feature=feature, grants=by_feature[feature.pk])) for feature in features]


def allowance_used(*, account_id: int, feature_id: int, period: Period) -> int:
    """Net quantity of the account's events for the feature in [period.start, period.end)."""
    with _prepared_cursor() as cursor:
        if period.start is None:
            cursor.execute(_USED_ALL_SQL, [account_id, feature_id])
            return int(cursor.fetchone()[0])
        start, end = period.start, period.end
        first_midnight = datetime.combine(start.date(), time(0), tzinfo=start.tzinfo)
        if first_midnight < start:
            first_midnight += timedelta(days=1)
        end_midnight = datetime.combine(end.date(), time(0), tzinfo=end.tzinfo)
        if end_midnight < first_midnight:  # a period inside one day: the ledger covers all of it
            first_midnight = end_midnight = end
        cursor.execute(
            _USED_SQL,
            {
                "account": account_id,
                "feature": feature_id,
                "first_day": first_midnight.date(),
                "end_day": end_midnight.date(),
                "start": start,
                "head_end": first_midnight,
                "tail_start": end_midnight,
                "end": end,
            },
        )
        return int(cursor.fetchone()[0])


def allowance_period(*, feature: Feature, effective: Effective, at: datetime) -> Period:
    return period_containing(
        reset_period=feature.reset_period,
        reset_anchor=feature.reset_anchor,
        term_start=effective.term_start,
        at=at,
    )


def entitlement_payload(
    *, feature: Feature, effective: Effective, account_id: int, now: datetime, quantity: int = 0
) -> dict:
    """The check answer for one feature (DESIGN.md): entitled, value, and for metered features the allowance.

    `quantity` asks "may the account use this much more": a metered feature needs used + quantity ≤ limit, a
    non-metered quantity/range feature needs quantity ≤ value. With quantity 0 (the default) `entitled` says
    whether the feature is granted and, if metered, not already over its limit.
    """
    value = effective.value
    granted = value_grants(feature_type=feature.type, value=value)
    unlimited = value == UNLIMITED
    payload: dict[str, Any] = {
        "feature_id": feature.key,
        "entitled": granted,
        "type": feature.type,
        "value": value,
        "unlimited": unlimited,
        "limit": None,
        "used": None,
        "remaining": None,
        "resets_at": None,
        "reason": None if granted else "not_entitled",
    }
    if not granted or unlimited:
        return payload
    if feature.metered:
        limit = int(value)
        period = allowance_period(feature=feature, effective=effective, at=now)
        used = allowance_used(account_id=account_id, feature_id=feature.pk, period=period)
        payload.update(
            limit=limit,
            used=used,
            remaining=max(limit - used, 0),
            resets_at=period.end.isoformat().replace("+00:00", "Z") if period.end else None,
        )
        if used + max(quantity, 0) > limit:
            payload.update(entitled=False, reason="limit_exceeded")
    elif feature.type in (Feature.Type.QUANTITY, Feature.Type.RANGE) and quantity > int(value):
        payload.update(entitled=False, reason="limit_exceeded")
    return payload


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


_CHECK_SQL = """
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
     JOIN entitlements_itementitlement ie ON ie.item_id = si.item_id AND ie.feature_id = f.id
    WHERE s.account_id = a.id AND s.status IN ('active', 'in_trial')),
  (SELECT array_agg(ARRAY[s.id::text, COALESCE(s.current_term_start::text, ''), se.value, 'o'])
     FROM entitlements_subscription s
     JOIN entitlements_subscriptionentitlement se ON se.subscription_id = s.id AND se.feature_id = f.id
    WHERE s.account_id = a.id AND s.status IN ('active', 'in_trial')
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
    feature_id, ftype, fstatus, metered, reset_period, reset_anchor, account_id, levels, items, overrides = (
        row
    )
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
    return entitlement_payload(
        feature=feature, effective=effective, account_id=account_id, now=now, quantity=quantity
    )


def account_entitlements(*, workspace: Workspace, account_key: str, now: datetime) -> list[dict]:
    """`GET /api/v1/accounts/{account_id}/entitlements`: one check answer per feature the account holds."""
    account_id = account_pk_get(workspace=workspace, account_key=account_key)
    return [
        entitlement_payload(feature=feature, effective=effective, account_id=account_id, now=now)
        for feature, effective in effective_entitlements(account_id=account_id, workspace=workspace, now=now)
    ]


def account_pk_get(*, workspace: Workspace, account_key: str) -> int:
    account_id = (
        Account.objects.filter(workspace=workspace, external_id=account_key)
        .values_list("pk", flat=True)
        .first()
    )
    if account_id is None:
        raise NotFound(f"No account '{account_key}'.", code="unknown_account", field="account_id")
    return account_id


# ---------------------------------------------------------------------------
# Lists and lookups for the REST API and the admin
# ---------------------------------------------------------------------------


def item_entitlement_list(*, item: Item) -> QuerySet[ItemEntitlement]:
    return (
        ItemEntitlement.objects.filter(item=item).select_related("item", "feature").order_by("feature__key")
    )


def item_entitlement_get(*, item: Item, feature: Feature) -> ItemEntitlement:
    entitlement = (
        ItemEntitlement.objects.filter(item=item, feature=feature).select_related("item", "feature").first()
    )
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
