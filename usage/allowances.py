"""Allowance counters follow the catalog: rebuilt from the raw events when a feature's metering changes, and
verified against them.

The counters (entitlements' AllowanceUsageDaily per account and UTC day, AllowanceUsageEntry per event) depend
only on the events and on whether the feature is metered: periods, anchors, terms and plan values are applied
when they are read. So only a change of `metered` needs a rebuild (`Feature.metering_version` counts them);
a new period, anchor, term or value reads the same counters differently.

A rebuild holds the feature's counting lock exclusively (entitlements.services.allowance_counting_lock) once
to wait out every batch that read the feature's metering before the change, then rebuilds one UTC day per
transaction (newest first) under the same lock, so ingestion of the feature waits for one day's recount at a
time. Where its state lives: AllowanceCounterState records the version a feature's counters were rebuilt for;
a rebuild that finds a newer version stops (the newer one's task does the work), and the periodic sweep
(`allowance_counters_sync`) rebuilds any feature whose task was lost.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import Feature
from entitlements.models import AllowanceCounterState
from entitlements.periods import Period
from entitlements.services import allowance_counting_lock

from .models import UsageEvent

logger = logging.getLogger(__name__)

# The days that hold a feature's events or counters (a rebuild replaces each of them).
_DAYS_SQL = """
SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM usage_usageevent
 WHERE workspace_id = %(ws)s AND feature_id = %(feature)s
UNION SELECT day FROM entitlements_allowanceusagedaily WHERE feature_id = %(feature)s
UNION SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM entitlements_allowanceusageentry
 WHERE feature_id = %(feature)s
ORDER BY 1 DESC
"""

_DAY_CLEAR_SQL = [
    "DELETE FROM entitlements_allowanceusagedaily WHERE feature_id = %(feature)s AND day = %(day)s",
    "DELETE FROM entitlements_allowanceusageentry WHERE feature_id = %(feature)s "
    "AND occurred_at >= %(start)s AND occurred_at < %(end)s",
]
# The same counters allowance_usage_apply keeps: the net quantity per account and UTC day (zero sums left out),
# and one ledger entry per event.
_DAY_RECOUNT_SQL = [
    "INSERT INTO entitlements_allowanceusagedaily (workspace_id, account_id, feature_id, day, quantity) "
    "SELECT %(ws)s, account_id, %(feature)s, %(day)s, SUM(quantity) FROM usage_usageevent "
    "WHERE workspace_id = %(ws)s AND feature_id = %(feature)s AND occurred_at >= %(start)s "
    "AND occurred_at < %(end)s GROUP BY account_id HAVING SUM(quantity) <> 0 ORDER BY account_id",
    "INSERT INTO entitlements_allowanceusageentry (workspace_id, account_id, feature_id, occurred_at, quantity) "
    "SELECT %(ws)s, account_id, %(feature)s, occurred_at, quantity FROM usage_usageevent "
    "WHERE workspace_id = %(ws)s AND feature_id = %(feature)s AND occurred_at >= %(start)s "
    "AND occurred_at < %(end)s",
]


@dataclass(frozen=True)
class Rebuild:
    """What one rebuild did: the days it replaced, and whether a newer metering change superseded it."""

    feature_id: int
    metering_version: int
    days: int
    superseded: bool = False


def _feature_state(feature_id: int) -> tuple[int, bool, int] | None:
    return Feature.objects.filter(pk=feature_id).values_list("workspace_id", "metered", "metering_version").first()


def _day_replace(*, workspace_id: int, feature_id: int, day: date, metered: bool) -> None:
    """Replace one UTC day of a feature's counters by a recount of its events (none when not metered), in the
    caller's transaction, which holds the feature's counting lock."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    params = {"ws": workspace_id, "feature": feature_id, "day": day, "start": start, "end": start + timedelta(1)}
    with connection.cursor() as cursor:
        for sql in _DAY_CLEAR_SQL + (_DAY_RECOUNT_SQL if metered else []):
            cursor.execute(sql, params)


def allowance_counters_rebuild(
    *, feature_id: int, days: list[date] | None = None, progress: Callable[[int, int], None] | None = None
) -> Rebuild | None:
    """Rebuild a feature's allowance counters from its raw events (every day that holds events or counters, or
    only `days`), one UTC day per transaction, newest first; then record the metering version they follow.
    `progress(done, total)` is called after each day. None if the feature no longer exists."""
    with transaction.atomic():
        # Barrier: every batch that read the feature's metering before now has committed when this returns,
        # so the days read below include all of its events.
        allowance_counting_lock(feature_id=feature_id)
        state = _feature_state(feature_id)
    if state is None:
        return None
    workspace_id, _, version = state
    # Only a rebuild of every day records the version its counters now follow.
    partial = days is not None
    if days is None:
        with connection.cursor() as cursor:
            cursor.execute(_DAYS_SQL, {"ws": workspace_id, "feature": feature_id})
            days = [row[0] for row in cursor.fetchall()]
    for done, day in enumerate(sorted(days, reverse=True), start=1):
        with transaction.atomic():
            allowance_counting_lock(feature_id=feature_id)
            current = _feature_state(feature_id)
            if current is None or current[2] != version:
                return Rebuild(feature_id, version, done - 1, superseded=True)
            _day_replace(workspace_id=workspace_id, feature_id=feature_id, day=day, metered=current[1])
        if progress is not None:
            progress(done, len(days))
    if partial:
        return Rebuild(feature_id, version, len(days))
    with transaction.atomic():
        allowance_counting_lock(feature_id=feature_id)
        current = _feature_state(feature_id)
        if current is None or current[2] != version:
            return Rebuild(feature_id, version, len(days), superseded=True)
        AllowanceCounterState.objects.update_or_create(
            feature_id=feature_id, defaults={"metering_version": version, "rebuilt_at": timezone.now()}
        )
    return Rebuild(feature_id, version, len(days))


def allowance_counters_current(*, feature: Feature) -> bool:
    """Whether a feature's counters follow its current metering (no rebuild pending)."""
    if feature.metering_version == 0:
        return True
    return AllowanceCounterState.objects.filter(
        feature_id=feature.pk, metering_version=feature.metering_version
    ).exists()


def allowance_used_from_events(*, feature: Feature, account_id: int, period: Period) -> int:
    """`used` summed from the raw events (what the counters hold once rebuilt); for the record path while a
    rebuild is pending, so enforcement stays exact meanwhile."""
    events = UsageEvent.objects.filter(workspace_id=feature.workspace_id, account_id=account_id, feature=feature)
    if period.start is not None:
        events = events.filter(occurred_at__gte=period.start, occurred_at__lt=period.end)
    return events.aggregate(total=Coalesce(Sum("quantity"), 0))["total"]


_PENDING_SQL = """
SELECT f.id FROM catalog_feature f LEFT JOIN entitlements_allowancecounterstate s ON s.feature_id = f.id
WHERE f.metering_version <> COALESCE(s.metering_version, 0) ORDER BY f.id
"""


def allowance_counters_pending() -> list[int]:
    """Features whose counters have not been rebuilt for their current metering version."""
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_SQL)
        return [row[0] for row in cursor.fetchall()]


def allowance_counters_sync(*, progress: Callable[[int, int], None] | None = None) -> list[Rebuild]:
    """Rebuild every feature whose counters lag behind its metering (the sweep behind lost task messages)."""
    done = []
    for feature_id in allowance_counters_pending():
        rebuilt = allowance_counters_rebuild(feature_id=feature_id, progress=progress)
        if rebuilt is not None:
            done.append(rebuilt)
    return done


# ---------------------------------------------------------------------------
# Verification: every metered counter against a recount of the raw events
# ---------------------------------------------------------------------------

# One statement (one snapshot: the events and the counters that count them commit together), per feature: the
# daily counters per (account, UTC day) and the ledger per (account, timestamp), each against the events.
_DIFFERENCES_SQL = """
WITH ev AS (
  SELECT account_id, occurred_at, quantity FROM usage_usageevent
  WHERE workspace_id = %(ws)s AND feature_id = %(feature)s
), daily_expected AS (
  SELECT account_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, SUM(quantity) AS q FROM ev GROUP BY 1, 2
), daily_found AS (
  SELECT account_id, day, SUM(quantity) AS q FROM entitlements_allowanceusagedaily
  WHERE feature_id = %(feature)s GROUP BY 1, 2
), entry_expected AS (
  SELECT account_id, occurred_at, SUM(quantity) AS q FROM ev GROUP BY 1, 2
), entry_found AS (
  SELECT account_id, occurred_at, SUM(quantity) AS q FROM entitlements_allowanceusageentry
  WHERE feature_id = %(feature)s GROUP BY 1, 2
)
SELECT 'daily', account_id, day, COALESCE(e.q, 0), COALESCE(f.q, 0)
FROM daily_expected e FULL JOIN daily_found f USING (account_id, day)
WHERE COALESCE(e.q, 0) <> COALESCE(f.q, 0)
UNION ALL
SELECT 'ledger', account_id, (occurred_at AT TIME ZONE 'UTC')::date, SUM(COALESCE(e.q, 0)), SUM(COALESCE(f.q, 0))
FROM entry_expected e FULL JOIN entry_found f USING (account_id, occurred_at)
WHERE COALESCE(e.q, 0) <> COALESCE(f.q, 0)
GROUP BY 2, 3
ORDER BY 3, 2, 1
"""


@dataclass(frozen=True)
class AllowanceDifference:
    """A counter that differs from the recount of its events: `counter` is "daily" (the day's counter) or
    "ledger" (the day's per-event entries, summed where they differ)."""

    feature_key: str
    account_key: str
    day: date
    counter: str
    expected: int
    found: int

    def __str__(self) -> str:
        return (
            f"{self.feature_key} / {self.account_key} / {self.day}: {self.counter} counter {self.found}, "
            f"events {self.expected}"
        )


@dataclass
class AllowanceVerification:
    differences: list[AllowanceDifference]
    features: int  # metered features checked
    pending: list[str]  # keys of metered features whose rebuild is pending (skipped)
    repaired_days: int = 0


def allowance_differences(
    *, workspace_id: int, repair: bool = False, progress: Callable[[str], None] | None = None
) -> AllowanceVerification:
    """Recount every metered feature's counters of a workspace from its raw events; with `repair`, rebuild the
    days that differ (under the counting lock, as a rebuild does) and recheck them."""
    from accounts.models import Account

    pending = set(allowance_counters_pending())
    features = list(
        Feature.objects.filter(workspace_id=workspace_id, metered=True).order_by("key").values_list("pk", "key")
    )
    result = AllowanceVerification(differences=[], features=0, pending=[])
    for position, (feature_id, key) in enumerate(features, start=1):
        if feature_id in pending:
            result.pending.append(key)
            continue
        result.features += 1
        rows = _feature_differences(workspace_id=workspace_id, feature_id=feature_id)
        if rows and repair:
            days = sorted({row[2] for row in rows})
            allowance_counters_rebuild(feature_id=feature_id, days=days)
            result.repaired_days += len(days)
            rows = _feature_differences(workspace_id=workspace_id, feature_id=feature_id)
        if rows:
            names = dict(Account.objects.filter(pk__in={row[1] for row in rows}).values_list("pk", "external_id"))
            result.differences.extend(
                AllowanceDifference(key, names.get(account_id, str(account_id)), day, counter, expected, found)
                for counter, account_id, day, expected, found in rows
            )
        if progress is not None:
            progress(f"  [{position}/{len(features)}] {key}: {len(rows)} difference(s)")
    return result


def _feature_differences(*, workspace_id: int, feature_id: int) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_DIFFERENCES_SQL, {"ws": workspace_id, "feature": feature_id})
        return [(counter, account, day, int(expected), int(found)) for counter, account, day, expected, found in cursor]


def allowance_differences_log() -> int:
    """The periodic check: catch up pending rebuilds, then verify every workspace and log each difference
    (nothing is repaired: `manage.py verify_allowances --repair` does). Returns the number of differences."""
    from accounts.models import Workspace

    allowance_counters_sync()
    total = 0
    for workspace_id, slug in Workspace.objects.order_by("slug").values_list("pk", "slug"):
        checked = allowance_differences(workspace_id=workspace_id)
        for difference in checked.differences:
            logger.error("Allowance counter differs from its events in %s: %s", slug, difference)
        total += len(checked.differences)
    return total
