"""Writes for entitlements: item and subscription entitlements, subscriptions, allowance usage counters."""

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction

from accounts.models import Account, Workspace
from catalog.models import Feature, FeatureLevel, Item, Lifecycle
from catalog.services import validate_key
from core.errors import Conflict, DomainError, NotFound
from core.unset import UNSET

from .models import ItemEntitlement, Subscription, SubscriptionEntitlement
from .values import value_normalise


@dataclass(frozen=True)
class UsageRow:
    """One stored usage event, as the allowance counters need it."""

    account_id: int
    feature_id: int
    occurred_at: datetime
    quantity: int


_DAILY_UPSERT = """
INSERT INTO entitlements_allowanceusagedaily (workspace_id, account_id, feature_id, day, quantity)
SELECT %s, t.a, t.f, t.d, t.q
FROM unnest(%s::bigint[], %s::bigint[], %s::date[], %s::bigint[]) AS t(a, f, d, q)
ON CONFLICT (account_id, feature_id, day)
DO UPDATE SET quantity = entitlements_allowanceusagedaily.quantity + EXCLUDED.quantity
"""

_ENTRY_INSERT = """
INSERT INTO entitlements_allowanceusageentry (workspace_id, account_id, feature_id, occurred_at, quantity)
SELECT %s, t.a, t.f, t.o, t.q
FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::bigint[]) AS t(a, f, o, q)
"""


# The counting lock of a feature's allowance counters: every transaction that stores events holds it shared for
# each feature of its batch, from before it reads whether the feature is metered until COMMIT (the lookup in
# usage.services takes it); a rebuild of the feature's counters holds it exclusive (allowance_counting_lock).
# So a batch that decided not to count (the feature was not metered yet) has committed before a rebuild reads
# the events, and a batch that counts either committed before the rebuild read (its increments are replaced)
# or writes after the rebuild committed (its increments add to the recount). Only features that can become
# metered take it (draft, quantity, range: an active switch or custom feature never can). Features share
# ALLOWANCE_COUNTING_LOCK_SLOTS locks (key: hashtextextended(prefix || id mod slots)), so a batch holds at most
# that many whatever its number of features; a rebuild also waits for the batches of its slot's other features.
ALLOWANCE_COUNTING_LOCK_PREFIX = "uptake:allowance-counting:"
ALLOWANCE_COUNTING_LOCK_SLOTS = 64


def allowance_counting_lock(*, feature_id: int) -> None:
    """Hold a feature's counting lock exclusively until the end of the caller's transaction: wait for every
    transaction that stores events of the feature, and hold new ones at their lookup meanwhile."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s || mod(%s::bigint, %s), 0))",
            [ALLOWANCE_COUNTING_LOCK_PREFIX, feature_id, ALLOWANCE_COUNTING_LOCK_SLOTS],
        )


def allowance_usage_apply(
    *, workspace_id: int, rows: Iterable[UsageRow], metered_feature_ids: Collection[int] | None = None
) -> None:
    """Add stored events to the allowance counters, in the caller's transaction (the one that stored them).

    Called by every path that stores usage events (usage.services), so `used` stays exact and transactional
    with event storage. Only events of metered features are counted: `metered_feature_ids` when the caller
    read them under the counting lock, else read here. A daily counter per (account, feature, UTC day),
    upserted with one statement (keys sorted, so concurrent batches lock rows in the same order and cannot
    deadlock), and a ledger entry per event for periods that start inside a day.
    """
    rows = [row for row in rows if row.quantity]
    if not rows:
        return
    feature_ids = {row.feature_id for row in rows}
    if metered_feature_ids is None:
        metered_feature_ids = Feature.objects.filter(
            workspace_id=workspace_id, pk__in=feature_ids, metered=True
        ).values_list("pk", flat=True)
    metered = feature_ids & set(metered_feature_ids)
    if not metered:
        return
    daily: dict[tuple[int, int, object], int] = defaultdict(int)
    entries: list[UsageRow] = []
    for row in rows:
        if row.feature_id not in metered:
            continue
        day = row.occurred_at.astimezone(UTC).date()
        daily[(row.account_id, row.feature_id, day)] += row.quantity
        entries.append(row)
    keys = sorted(key for key, quantity in daily.items() if quantity)
    with connection.cursor() as cursor:
        if keys:
            cursor.execute(
                _DAILY_UPSERT,
                [
                    workspace_id,
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                    [daily[k] for k in keys],
                ],
            )
        cursor.execute(
            _ENTRY_INSERT,
            [
                workspace_id,
                [r.account_id for r in entries],
                [r.feature_id for r in entries],
                [r.occurred_at for r in entries],
                [r.quantity for r in entries],
            ],
        )


# ---------------------------------------------------------------------------
# Item entitlements
# ---------------------------------------------------------------------------


_ITEM_ENTITLEMENT_UNIQUE = "entitlements_itementitlement_unique_feature"


def _feature_for_grant(*, feature: Feature, workspace_id: int, exists: bool) -> list[FeatureLevel]:
    """Lock the feature (its status and levels hold still) and refuse new grants of archived ones."""
    locked = Feature.objects.select_for_update().get(pk=feature.pk)
    if locked.workspace_id != workspace_id:
        raise NotFound(f"No feature '{feature.key}'.", code="unknown_feature", field="feature_id")
    if locked.status == Lifecycle.ARCHIVED and not exists:
        raise Conflict(
            f"Feature '{locked.key}' is archived: it keeps existing entitlements but accepts no new ones.",
            code="feature_archived",
            field="feature_id",
        )
    feature.status = locked.status
    return list(locked.levels.all())


@transaction.atomic
def item_entitlement_set(*, item: Item, feature: Feature, value: Any) -> ItemEntitlement:
    """Create or change what an item grants for a feature; the value is validated against the feature."""
    existing = ItemEntitlement.objects.select_for_update().filter(item=item, feature=feature).first()
    levels = _feature_for_grant(feature=feature, workspace_id=item.workspace_id, exists=existing is not None)
    normalised = value_normalise(feature=feature, levels=levels, raw=value)
    if existing is None:
        existing = ItemEntitlement(workspace_id=item.workspace_id, item=item, feature=feature, value=normalised)
        try:
            with transaction.atomic():
                existing.save()
        except IntegrityError as exc:
            # Only a concurrent grant of the same feature is ours to absorb; any other rule is a refusal.
            if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) != _ITEM_ENTITLEMENT_UNIQUE:
                raise
            existing = ItemEntitlement.objects.select_for_update().get(item=item, feature=feature)
    existing.value = normalised
    existing.save(update_fields=["value", "updated_at"])
    return existing


@transaction.atomic
def item_entitlement_delete(*, item: Item, feature: Feature) -> None:
    """Remove what an item grants for a feature."""
    deleted, _ = ItemEntitlement.objects.filter(item=item, feature=feature).delete()
    if not deleted:
        raise NotFound(f"Item '{item.key}' has no entitlement for feature '{feature.key}'.", code="not_found")


# ---------------------------------------------------------------------------
# Subscriptions and their overrides
# ---------------------------------------------------------------------------


def _check_status(status: Any) -> str:
    if status not in Subscription.Status.values:
        raise DomainError(
            f"Unknown subscription status '{status}': use active, in_trial or cancelled.",
            code="invalid_value",
            field="status",
        )
    return status


def _check_items(*, workspace_id: int, items: Sequence[Item], kept: Collection[int] = ()) -> None:
    """Refuse another workspace's items, and items newly put on the subscription (not in `kept`) that are not
    active: a draft item grants nothing yet, an archived one stays where it is but joins no other subscription.
    The new items' rows stay locked until COMMIT, so an item cannot be archived between this check and the link."""
    foreign = [item.key for item in items if item.workspace_id != workspace_id]
    if foreign:
        raise NotFound(f"No item(s) {', '.join(sorted(foreign))}.", code="unknown_item", field="items")
    new_ids = {item.pk for item in items} - set(kept)
    if not new_ids:
        return
    locked = Item.objects.select_for_update(no_key=True).filter(pk__in=new_ids).order_by("pk")
    refused = sorted((item.key, item.status) for item in locked if item.status != Lifecycle.ACTIVE)
    if refused:
        raise DomainError(
            " ".join(f"Item '{key}' is {status}: {_NOT_ATTACHABLE[status]}" for key, status in refused),
            code="item_not_active",
            field="items",
        )


_NOT_ATTACHABLE = {
    Lifecycle.DRAFT: "activate it before putting it on a subscription.",
    Lifecycle.ARCHIVED: "it stays on the subscriptions that have it but joins no other; reactivate it first.",
}


def _check_term(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise DomainError(
            "'current_term_end' must be after 'current_term_start'.",
            code="invalid_value",
            field="current_term_end",
        )


@transaction.atomic
def subscription_create(
    *,
    workspace: Workspace,
    external_id: str,
    account: Account,
    status: str = Subscription.Status.ACTIVE,
    items: Sequence[Item] = (),
    current_term_start: datetime | None = None,
    current_term_end: datetime | None = None,
) -> Subscription:
    """Create an account's subscription to items."""
    external_id = validate_key(external_id, field="id")
    if account.workspace_id != workspace.pk:
        raise NotFound(f"No account '{account.external_id}'.", code="unknown_account", field="account_id")
    _check_status(status)
    _check_term(current_term_start, current_term_end)
    _check_items(workspace_id=workspace.pk, items=items)
    if Subscription.objects.filter(workspace=workspace, external_id=external_id).exists():
        raise Conflict(
            f"A subscription with id '{external_id}' already exists.", code="subscription_exists", field="id"
        )
    subscription = Subscription(
        workspace=workspace,
        external_id=external_id,
        account=account,
        status=status,
        current_term_start=current_term_start,
        current_term_end=current_term_end,
    )
    try:
        with transaction.atomic():
            subscription.save()
    except IntegrityError as exc:
        raise Conflict(
            f"A subscription with id '{external_id}' already exists.", code="subscription_exists", field="id"
        ) from exc
    subscription.items.set(items)
    return subscription


@transaction.atomic
def subscription_update(
    *,
    subscription: Subscription,
    status: str = UNSET,
    items: Sequence[Item] = UNSET,
    current_term_start: datetime | None = UNSET,
    current_term_end: datetime | None = UNSET,
) -> Subscription:
    """Change a subscription's status, items or current term; its id and account never change."""
    subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
    if status is not UNSET:
        subscription.status = _check_status(status)
    if current_term_start is not UNSET:
        subscription.current_term_start = current_term_start
    if current_term_end is not UNSET:
        subscription.current_term_end = current_term_end
    _check_term(subscription.current_term_start, subscription.current_term_end)
    subscription.save(update_fields=["status", "current_term_start", "current_term_end", "updated_at"])
    if items is not UNSET:
        kept = subscription.items.values_list("pk", flat=True)
        _check_items(workspace_id=subscription.workspace_id, items=items, kept=set(kept))
        subscription.items.set(items)
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: Subscription) -> None:
    """Delete a subscription with its overrides (cancel it instead to keep its history)."""
    Subscription.objects.filter(pk=subscription.pk).delete()


@transaction.atomic
def subscription_entitlement_set(
    *, subscription: Subscription, feature: Feature, value: Any, expires_at: datetime | None = None
) -> SubscriptionEntitlement:
    """Override (or add) one feature's value for one subscription, optionally until `expires_at`."""
    existing = (
        SubscriptionEntitlement.objects.select_for_update().filter(subscription=subscription, feature=feature).first()
    )
    levels = _feature_for_grant(feature=feature, workspace_id=subscription.workspace_id, exists=existing is not None)
    normalised = value_normalise(feature=feature, levels=levels, raw=value)
    if existing is None:
        existing = SubscriptionEntitlement(
            workspace_id=subscription.workspace_id,
            subscription=subscription,
            feature=feature,
            value=normalised,
        )
    existing.value = normalised
    existing.expires_at = expires_at
    existing.save()
    return existing


@transaction.atomic
def subscription_entitlement_delete(*, subscription: Subscription, feature: Feature) -> None:
    """Remove a subscription's override of a feature: its items' values count again."""
    deleted, _ = SubscriptionEntitlement.objects.filter(subscription=subscription, feature=feature).delete()
    if not deleted:
        raise NotFound(
            f"Subscription '{subscription.external_id}' has no entitlement for feature '{feature.key}'.",
            code="not_found",
        )
