"""Writes for entitlements: item and subscription entitlements, subscriptions, allowance usage counters."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection

from catalog.models import Feature


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


def allowance_usage_apply(*, workspace_id: int, rows: Iterable[UsageRow]) -> None:
    """Add stored events to the allowance counters, in the caller's transaction (the one that stored them).

    Called by every path that stores usage events (usage.services), so `used` stays exact and transactional
    with event storage. Only events of metered features are counted: a daily counter per (account, feature,
    UTC day), upserted with one statement (keys sorted, so concurrent batches lock rows in the same order and
    cannot deadlock), and a ledger entry per event for periods that start inside a day.
    """
    rows = [row for row in rows if row.quantity]
    if not rows:
        return
    feature_ids = {row.feature_id for row in rows}
    metered = set(
        Feature.objects.filter(workspace_id=workspace_id, pk__in=feature_ids, metered=True).values_list(
            "pk", flat=True
        )
    )
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
