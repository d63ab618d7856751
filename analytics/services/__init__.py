"""Rollup writes: the count tables of analytics.models brought up to date from raw usage events.

rollup_pending / rollup_days apply a workspace's dirty days as deltas (delta.py) or whole recomputes
(recompute.py) and move their watermarks to the event horizon in the same transaction; full rebuilds are in
rebuild.py. Why reruns, crashes and concurrent runs stay correct: docs/internals.md ("Rollups")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection, transaction
from django.db.models import Min

from usage.models import UsageDayDirty
from usage.services import usage_days_mark_appended

from .common import (
    day_lock_key,
    event_horizon,
    generation_bump,
    marks_consume,
    watermarks_read,
    watermarks_set,
    workspace_lock_key,
)
from .delta import apply_delta
from .rebuild import rebuild_staged
from .recompute import recompute, recompute_days


@dataclass
class RollupReport:
    days_rolled_up: int = 0
    days_skipped_locked: int = 0
    days_still_dirty: int = 0
    rolled_up: list[tuple[int, date]] = field(default_factory=list)


# Dirty days of one workspace recomputed together in one transaction (bounded, so a long backlog is worked
# off in transactions of bounded size and locks).
MAX_DAYS_PER_ROLLUP = 31


def rollup_days(*, workspace_id: int, days: list[date], wait: bool = False) -> list[date]:
    """Roll up dirty UTC days of one workspace in one transaction (deltas for the days with a watermark, whole
    recomputes for the others), every rollup table in one statement over all of them. Days held by another run
    are skipped (waited for with wait=True), days no longer dirty are left alone. Returns the days rolled up."""
    days = sorted(set(days))
    with transaction.atomic(), connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [workspace_lock_key(workspace_id)])
            for day in days:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [day_lock_key(workspace_id, day)])
            held = days
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock_shared(%s)", [workspace_lock_key(workspace_id)])
            if not cursor.fetchone()[0]:
                return []
            held = []
            for day in days:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [day_lock_key(workspace_id, day)])
                if cursor.fetchone()[0]:
                    held.append(day)
        if not held:
            return []
        # Read every shard row's version BEFORE reading events: anything committed later bumps its shard's
        # row past the value read here (or adds a new shard row), which the DELETE below then leaves alone.
        cursor.execute(
            "SELECT day, shard, version FROM usage_usagedaydirty WHERE workspace_id = %s AND day = ANY(%s)",
            [workspace_id, held],
        )
        marks = cursor.fetchall()
        dirty = sorted({day for day, _, _ in marks})
        if not dirty:
            return []
        # Hash the days' groups in memory; JIT compilation costs ~10-15 ms per statement and saves nothing on
        # statements of a few hundred ms.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        # A crash that loses this COMMIT loses the mark deletions and watermark moves with it: the days are simply
        # rolled up again from where their watermarks were.
        cursor.execute("SET LOCAL synchronous_commit = off")
        # After the marks: an event with an id above the horizon was given its id after they were read, so its
        # mark bump is not among them and its day stays dirty.
        horizon = event_horizon(cursor)
        whole = dirty
        if horizon is not None:
            watermarks = watermarks_read(cursor, workspace_id=workspace_id, days=dirty)
            whole = [day for day in dirty if day not in watermarks]
            if watermarks and not apply_delta(
                cursor, workspace_id=workspace_id, watermarks=watermarks, horizon=horizon
            ):
                whole = dirty
        if whole:
            recompute_days(cursor, workspace_id=workspace_id, days=whole, through=horizon)
        watermarks_set(cursor, workspace_id=workspace_id, days=dirty, event_id=horizon)
        generation_bump(cursor, workspace_id=workspace_id)
        marks_consume(cursor, workspace_id=workspace_id, marks=marks)
        return dirty


def rollup_day(*, workspace_id: int, day: date, wait: bool = False) -> bool:
    """Roll up one dirty (workspace, UTC day); False if another run holds it (or it is no longer dirty)."""
    return bool(rollup_days(workspace_id=workspace_id, days=[day], wait=wait))


def rollup_pending(
    *, now: datetime, limit: int | None = None, progress: Callable[[int, int, int, date], None] | None = None
) -> RollupReport:
    """Bring rollups up to date: roll up each dirty (workspace, UTC day), oldest mark first, the dirty days of
    a workspace together (up to MAX_DAYS_PER_ROLLUP per transaction). `limit` caps the days."""
    pending = (
        UsageDayDirty.objects.filter(marked_at__lte=now)
        .values("workspace_id", "day")
        .annotate(first_marked=Min("marked_at"))
        .order_by("first_marked", "workspace_id", "day")
        .values_list("workspace_id", "day")
    )
    pairs = list(pending[:limit] if limit else pending)
    by_workspace: dict[int, list[date]] = {}
    for workspace_id, day in pairs:  # workspaces in the order of their oldest mark
        by_workspace.setdefault(workspace_id, []).append(day)
    report = RollupReport()
    index = 0
    for workspace_id, days in by_workspace.items():
        for chunk_start in range(0, len(days), MAX_DAYS_PER_ROLLUP):
            chunk = days[chunk_start : chunk_start + MAX_DAYS_PER_ROLLUP]
            done = set(rollup_days(workspace_id=workspace_id, days=chunk))
            for day in chunk:
                index += 1
                if day in done:
                    report.days_rolled_up += 1
                    report.rolled_up.append((workspace_id, day))
                else:
                    report.days_skipped_locked += 1
                if progress is not None:
                    progress(index, len(pairs), workspace_id, day)
    report.days_still_dirty = UsageDayDirty.objects.values("workspace_id", "day").distinct().count()
    return report


# Connections that build a full rebuild's tables at once (rebuild.rebuild_staged).
REBUILD_CONNECTIONS = 2


def rollups_rebuild(
    *, workspace_id: int, since: date | None = None, until: date | None = None, connections: int = REBUILD_CONNECTIONS
) -> None:
    """Recompute a workspace's rollups from raw events for since..until (every day when both are None).

    A full rebuild of a workspace that has the rollup tables to itself builds fresh tables with `connections`
    sessions and swaps them in (rebuild.py); anything else recomputes in place in one transaction."""
    if since is None and until is None and rebuild_staged(workspace_id=workspace_id, workers=connections):
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [workspace_lock_key(workspace_id)])
        # Whole-range aggregates of millions of groups: hash them in memory.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        where = ["workspace_id = %s"]
        params: list = [workspace_id]
        if since is not None:
            where.append("day >= %s")
            params.append(since)
        if until is not None:
            where.append("day <= %s")
            params.append(until)
        cursor.execute(f"SELECT day, shard, version FROM usage_usagedaydirty WHERE {' AND '.join(where)}", params)
        marks = cursor.fetchall()
        horizon = event_horizon(cursor)
        if since is None and until is None:
            cursor.execute("DELETE FROM analytics_accountfeaturelastseen WHERE workspace_id = %s", [workspace_id])
        recompute(cursor, workspace_id=workspace_id, since=since, until=until, through=horizon)
        # The range's days now count exactly their events up to the horizon (those without events need no row).
        cursor.execute(f"DELETE FROM analytics_rollupwatermark WHERE {' AND '.join(where)}", params)
        if horizon is not None:
            cursor.execute(f"SELECT DISTINCT day FROM analytics_featureday WHERE {' AND '.join(where)}", params)
            days = [row[0] for row in cursor.fetchall()]
            watermarks_set(cursor, workspace_id=workspace_id, days=days, event_id=horizon)
        generation_bump(cursor, workspace_id=workspace_id)
        marks_consume(cursor, workspace_id=workspace_id, marks=marks)


def usage_days_mark_restated(*, workspace_id: int, days: set[date] | list[date], now: datetime) -> None:
    """Mark (workspace, day) pairs for a rollup that recomputes them whole (their watermarks dropped): for
    changes that are not appended events, such as deleted or restated events (rebuild tooling and tests). Waits
    for a rollup holding one of the days, so that none can set a watermark again after this drops it."""
    days = sorted(set(days))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [workspace_lock_key(workspace_id)])
        for day in days:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [day_lock_key(workspace_id, day)])
        watermarks_set(cursor, workspace_id=workspace_id, days=days, event_id=None)
        usage_days_mark_appended(workspace_id=workspace_id, days=days, now=now)
