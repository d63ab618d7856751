"""Rollup writes: recompute whole UTC days of the count tables from raw usage events.

Every recompute rewrites whole day buckets from raw events inside one transaction (a range rebuild: DELETE +
INSERT … SELECT; an incremental rollup: only the rows that differ), so reruns and retries are harmless.
Concurrency: a rollup holds a transaction-scoped advisory lock on each (workspace, day) it recomputes (and a
shared lock on the workspace); a rebuild holds the workspace lock exclusively. A day's dirty mark is one row per
shard (see usage.models.UsageDayDirty); each row read before recomputing is deleted only if its `version` is
still the one read, so a day that received events during the rollup stays dirty and is rolled up again; a crash
rolls the transaction back and leaves the marks. A full rebuild of a workspace that has the rollup tables to
itself builds fresh tables with several connections and swaps them in (rebuild.py: readers see the old rollups
until the swap commits, a crash leaves them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Min

from usage.models import UsageDayDirty
from usage.services import usage_days_mark_dirty

from .common import day_lock_key, generation_bump, marks_consume, start_of, workspace_lock_key
from .rebuild import rebuild_staged


@dataclass
class RollupReport:
    days_rolled_up: int = 0
    days_skipped_locked: int = 0
    days_still_dirty: int = 0
    rolled_up: list[tuple[int, date]] = field(default_factory=list)


def _replace(
    cursor,
    *,
    table: str,
    keys: list[str],
    values: list[str],
    select_sql: str,
    select_params: list,
    where_sql: str,
    where_params: list,
) -> None:
    """Make the rows of `table` matching `where_sql` exactly the rows of `select_sql`: delete them all and insert
    the fresh ones (range and in-place rebuilds; incremental rollups write only differences, see _apply_diff)."""
    columns = ", ".join(keys + values)
    cursor.execute(f"DELETE FROM {table} WHERE {where_sql}", where_params)
    cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM ({select_sql}) fresh", select_params)


def _recompute(cursor, *, workspace_id: int, since: date | None, until: date | None) -> None:
    """Recompute every rollup table of one workspace for the UTC days since..until (inclusive, open if None)."""
    day_where = ["workspace_id = %s"]
    day_params: list = [workspace_id]
    ts_where = ["workspace_id = %s"]
    ts_params: list = [workspace_id]
    bucket_where = ["workspace_id = %s"]
    bucket_params: list = [workspace_id]
    if since is not None:
        day_where.append("day >= %s")
        day_params.append(since)
        ts_where.append("occurred_at >= %s")
        ts_params.append(start_of(since))
        bucket_where.append("bucket >= %s")
        bucket_params.append(start_of(since))
    if until is not None:
        day_where.append("day <= %s")
        day_params.append(until)
        ts_where.append("occurred_at < %s")
        ts_params.append(start_of(until + timedelta(days=1)))
        bucket_where.append("bucket < %s")
        bucket_params.append(start_of(until + timedelta(days=1)))
    day_sql = " AND ".join(day_where)
    ts_sql = " AND ".join(ts_where)
    bucket_sql = " AND ".join(bucket_where)

    # One scan of the raw events for both day tables: groups per (day, feature, account, end user) in a
    # temporary table (no WAL). sum(quantity::integer): quantities are bounded to ±1e9
    # (usage_usageevent_quantity_bounds), and an int4 sum accumulates in an int8 instead of a numeric.
    cursor.execute("DROP TABLE IF EXISTS analytics_day_groups")
    cursor.execute(
        f"""
        CREATE TEMP TABLE analytics_day_groups ON COMMIT DROP AS
        SELECT workspace_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, feature_id, account_id,
               end_user_id,
               sum(quantity::integer) AS uses, count(*) AS events,
               max(occurred_at) FILTER (WHERE quantity > 0) AS last_at
        FROM usage_usageevent WHERE {ts_sql}
        GROUP BY 1, 2, 3, 4, 5
        """,
        ts_params,
    )
    cursor.execute("ANALYZE analytics_day_groups")
    _replace(
        cursor,
        table="analytics_featureuserday",
        keys=["workspace_id", "day", "feature_id", "end_user_id"],
        values=["account_id", "uses", "events"],
        select_sql="""
            SELECT workspace_id, day, feature_id, end_user_id, min(account_id) AS account_id,
                   sum(uses) AS uses, sum(events) AS events
            FROM analytics_day_groups WHERE end_user_id IS NOT NULL
            GROUP BY 1, 2, 3, 4
        """,
        select_params=[],
        where_sql=day_sql,
        where_params=day_params,
    )
    # users: distinct end users of the (day, feature, account): one group row each.
    _replace(
        cursor,
        table="analytics_featureaccountday",
        keys=["workspace_id", "day", "feature_id", "account_id"],
        values=["uses", "events", "users", "last_at"],
        select_sql="""
            SELECT workspace_id, day, feature_id, account_id, sum(uses) AS uses, sum(events) AS events,
                   count(end_user_id)::integer AS users, max(last_at) AS last_at
            FROM analytics_day_groups
            GROUP BY 1, 2, 3, 4
        """,
        select_params=[],
        where_sql=day_sql,
        where_params=day_params,
    )
    cursor.execute("DROP TABLE analytics_day_groups")
    _replace(
        cursor,
        table="analytics_featurequarterhour",
        keys=["workspace_id", "bucket", "feature_id"],
        values=["uses", "events"],
        select_sql=f"""
            SELECT workspace_id,
                   date_bin('15 minutes', occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                   feature_id, sum(quantity::integer) AS uses, count(*) AS events
            FROM usage_usageevent WHERE {ts_sql}
            GROUP BY 1, 2, 3
        """,
        select_params=ts_params,
        where_sql=bucket_sql,
        where_params=bucket_params,
    )
    # Coarser levels, recomputed from the fine rows of the same whole days / buckets just written.
    _replace(
        cursor,
        table="analytics_featureday",
        keys=["workspace_id", "feature_id", "day"],
        values=["uses", "events"],
        select_sql=f"""
            SELECT workspace_id, feature_id, day, sum(uses) AS uses, sum(events) AS events
            FROM analytics_featureaccountday WHERE {day_sql}
            GROUP BY 1, 2, 3
        """,
        select_params=day_params,
        where_sql=day_sql,
        where_params=day_params,
    )
    _replace(
        cursor,
        table="analytics_accountproductday",
        keys=["workspace_id", "product_id", "day", "account_id"],
        values=["uses", "events", "last_at"],
        select_sql=f"""
            SELECT r.workspace_id, f.product_id, r.day, r.account_id, sum(r.uses) AS uses,
                   sum(r.events) AS events, max(r.last_at) AS last_at
            FROM analytics_featureaccountday r JOIN catalog_feature f ON f.id = r.feature_id
            WHERE {" AND ".join("r." + c for c in day_where)}
            GROUP BY 1, 2, 3, 4
        """,
        select_params=day_params,
        where_sql=day_sql,
        where_params=day_params,
    )
    _replace(
        cursor,
        table="analytics_productquarterhour",
        keys=["workspace_id", "product_id", "bucket"],
        values=["uses", "events"],
        select_sql=f"""
            SELECT r.workspace_id, f.product_id, r.bucket, sum(r.uses) AS uses, sum(r.events) AS events
            FROM analytics_featurequarterhour r JOIN catalog_feature f ON f.id = r.feature_id
            WHERE {" AND ".join("r." + c for c in bucket_where)}
            GROUP BY 1, 2, 3
        """,
        select_params=bucket_params,
        where_sql=bucket_sql,
        where_params=bucket_params,
    )
    # Events are append-only, so a recomputed day can only move "last seen" forward.
    cursor.execute(
        f"""
        INSERT INTO analytics_accountfeaturelastseen (workspace_id, account_id, feature_id, last_seen_at)
        SELECT x.workspace_id, x.account_id, x.feature_id, x.seen FROM (
            SELECT workspace_id, account_id, feature_id, max(last_at) AS seen
            FROM analytics_featureaccountday WHERE {day_sql} AND last_at IS NOT NULL
            GROUP BY 1, 2, 3
        ) x LEFT JOIN analytics_accountfeaturelastseen l
          ON l.workspace_id = x.workspace_id AND l.account_id = x.account_id AND l.feature_id = x.feature_id
        WHERE l.last_seen_at IS NULL OR l.last_seen_at < x.seen
        ON CONFLICT (workspace_id, account_id, feature_id)
        DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
        WHERE analytics_accountfeaturelastseen.last_seen_at < EXCLUDED.last_seen_at
        """,
        day_params,
    )


def _ranges_sql(column: str, runs: list[tuple[date, date]], *, timestamps: bool) -> tuple[str, list]:
    """`column` within any of the inclusive UTC day runs: (column >= a AND column < b) OR …"""
    parts, params = [], []
    for first, last in runs:
        if timestamps:
            parts.append(f"({column} >= %s AND {column} < %s)")
            params += [start_of(first), start_of(last + timedelta(days=1))]
        else:
            parts.append(f"({column} >= %s AND {column} <= %s)")
            params += [first, last]
    return "(" + " OR ".join(parts) + ")", params


def _day_runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _apply_diff(
    cursor,
    *,
    table: str,
    keys: list[str],
    values: list[str],
    fresh_sql: str,
    fresh_params: list,
    where_sql: str,
    where_params: list,
    diff_table: str,
) -> None:
    """Make the rows of `table` matching `where_sql` (unqualified columns) exactly the rows of `fresh_sql`,
    writing only what differs: one hash FULL JOIN of fresh and stored rows finds new, changed and gone keys
    into `diff_table` (kept until COMMIT: `new` rows carry the fresh values), then one DELETE of the stored
    rows of changed or gone keys and one INSERT of the new and changed ones. Unchanged rows are not touched
    (index upkeep and WAL are the cost of a write)."""
    same_key = " AND ".join(f"f.{k} = t.{k}" for k in keys)
    differs = " OR ".join(f"f.{v} IS DISTINCT FROM t.{v}" for v in values)
    key_cols = ", ".join(f"coalesce(f.{k}, t.{k}) AS {k}" for k in keys)
    value_cols = ", ".join(f"f.{v}" for v in values)
    columns = ", ".join(keys + values)
    cursor.execute(f"DROP TABLE IF EXISTS {diff_table}")
    cursor.execute(
        f"""
        CREATE TEMP TABLE {diff_table} ON COMMIT DROP AS
        SELECT {key_cols}, {value_cols}, t.{keys[0]} IS NOT NULL AS old, f.{keys[0]} IS NOT NULL AS new
        FROM ({fresh_sql}) f
        FULL JOIN (SELECT {columns} FROM {table} WHERE {where_sql}) t ON {same_key}
        WHERE f.{keys[0]} IS NULL OR t.{keys[0]} IS NULL OR {differs}
        """,
        fresh_params + where_params,
    )
    cursor.execute(f"ANALYZE {diff_table}")
    cursor.execute(
        f"DELETE FROM {table} t USING {diff_table} f WHERE f.old AND " + " AND ".join(f"t.{k} = f.{k}" for k in keys)
    )
    # In key order: the unique index (and indexes led by a key prefix) take the new entries page by page.
    cursor.execute(
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {diff_table} WHERE new ORDER BY {', '.join(keys)}"
    )


def _recompute_days(cursor, *, workspace_id: int, days: list[date]) -> None:
    """Recompute every rollup table of one workspace for a set of UTC days, each table in one set-based
    statement over all the days, writing only changed rows.

    One scan of the days' raw events groups them both per (day, feature, account, end user) and per
    (15-minute bucket, feature) (GROUPING SETS) into a temporary table; the fresh feature×account×day and
    feature×15-minute rows are kept in temporary tables too, and the coarse tables (feature×day,
    account×product×day, product×15 min) are derived from those instead of re-reading what was just written.
    Last-seen moves only from the feature×account×day rows that changed (events are append-only: a row that
    did not change carries no newer time than when it was written, and last-seen was moved then)."""
    runs = _day_runs(days)
    ts_sql, ts_params = _ranges_sql("occurred_at", runs, timestamps=True)
    day_sql, day_params = _ranges_sql("day", runs, timestamps=False)
    bucket_sql, bucket_params = _ranges_sql("bucket", runs, timestamps=True)
    ws = [workspace_id]
    cursor.execute("DROP TABLE IF EXISTS analytics_groups")
    cursor.execute(
        f"""
        CREATE TEMP TABLE analytics_groups ON COMMIT DROP AS
        SELECT GROUPING(bucket) = 1 AS is_day, day, bucket, feature_id, account_id, end_user_id,
               sum(quantity::integer) AS uses, count(*) AS events,
               max(occurred_at) FILTER (WHERE quantity > 0) AS last_at
        FROM (
            SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day,
                   date_bin('15 minutes', occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                   feature_id, account_id, end_user_id, quantity, occurred_at
            FROM usage_usageevent WHERE workspace_id = %s AND {ts_sql}
        ) e
        GROUP BY GROUPING SETS ((day, feature_id, account_id, end_user_id), (bucket, feature_id))
        """,
        ws + ts_params,
    )
    # No ANALYZE of these temporary tables (~60 ms each): their size is all the aggregations and hash joins
    # below need, and the planner reads it from the file size.
    cursor.execute("DROP TABLE IF EXISTS analytics_fad")
    cursor.execute(
        """
        CREATE TEMP TABLE analytics_fad ON COMMIT DROP AS
        SELECT day, feature_id, account_id, sum(uses)::bigint AS uses, sum(events)::bigint AS events,
               count(end_user_id)::integer AS users, max(last_at) AS last_at
        FROM analytics_groups WHERE is_day GROUP BY 1, 2, 3
        """
    )
    cursor.execute("DROP TABLE IF EXISTS analytics_fqh")
    cursor.execute(
        """
        CREATE TEMP TABLE analytics_fqh ON COMMIT DROP AS
        SELECT bucket, feature_id, uses, events FROM analytics_groups WHERE NOT is_day
        """
    )
    scope = "workspace_id = %s AND "
    _apply_diff(
        cursor,
        table="analytics_featureuserday",
        keys=["workspace_id", "day", "feature_id", "end_user_id"],
        values=["account_id", "uses", "events"],
        fresh_sql="""
            SELECT %s::integer AS workspace_id, day, feature_id, end_user_id, min(account_id) AS account_id,
                   sum(uses)::bigint AS uses, sum(events)::bigint AS events
            FROM analytics_groups WHERE is_day AND end_user_id IS NOT NULL GROUP BY 2, 3, 4
        """,
        fresh_params=ws,
        where_sql=scope + day_sql,
        where_params=ws + day_params,
        diff_table="analytics_diff_fud",
    )
    cursor.execute("DROP TABLE analytics_groups")
    _apply_diff(
        cursor,
        table="analytics_featureaccountday",
        keys=["workspace_id", "day", "feature_id", "account_id"],
        values=["uses", "events", "users", "last_at"],
        fresh_sql="SELECT %s::integer AS workspace_id, * FROM analytics_fad",
        fresh_params=ws,
        where_sql=scope + day_sql,
        where_params=ws + day_params,
        diff_table="analytics_diff_fad",
    )
    _apply_diff(
        cursor,
        table="analytics_featurequarterhour",
        keys=["workspace_id", "bucket", "feature_id"],
        values=["uses", "events"],
        fresh_sql="SELECT %s::integer AS workspace_id, * FROM analytics_fqh",
        fresh_params=ws,
        where_sql=scope + bucket_sql,
        where_params=ws + bucket_params,
        diff_table="analytics_diff_fqh",
    )
    _apply_diff(
        cursor,
        table="analytics_featureday",
        keys=["workspace_id", "feature_id", "day"],
        values=["uses", "events"],
        fresh_sql="""
            SELECT %s::integer AS workspace_id, feature_id, day, sum(uses)::bigint AS uses,
                   sum(events)::bigint AS events
            FROM analytics_fad GROUP BY 2, 3
        """,
        fresh_params=ws,
        where_sql=scope + day_sql,
        where_params=ws + day_params,
        diff_table="analytics_diff_fd",
    )
    _apply_diff(
        cursor,
        table="analytics_accountproductday",
        keys=["workspace_id", "product_id", "day", "account_id"],
        values=["uses", "events", "last_at"],
        fresh_sql="""
            SELECT %s::integer AS workspace_id, f.product_id, r.day, r.account_id, sum(r.uses)::bigint AS uses,
                   sum(r.events)::bigint AS events, max(r.last_at) AS last_at
            FROM analytics_fad r JOIN catalog_feature f ON f.id = r.feature_id
            GROUP BY 2, 3, 4
        """,
        fresh_params=ws,
        where_sql=scope + day_sql,
        where_params=ws + day_params,
        diff_table="analytics_diff_apd",
    )
    _apply_diff(
        cursor,
        table="analytics_productquarterhour",
        keys=["workspace_id", "product_id", "bucket"],
        values=["uses", "events"],
        fresh_sql="""
            SELECT %s::integer AS workspace_id, f.product_id, r.bucket, sum(r.uses)::bigint AS uses,
                   sum(r.events)::bigint AS events
            FROM analytics_fqh r JOIN catalog_feature f ON f.id = r.feature_id
            GROUP BY 2, 3
        """,
        fresh_params=ws,
        where_sql=scope + bucket_sql,
        where_params=ws + bucket_params,
        diff_table="analytics_diff_pqh",
    )
    cursor.execute(
        """
        INSERT INTO analytics_accountfeaturelastseen (workspace_id, account_id, feature_id, last_seen_at)
        SELECT workspace_id, account_id, feature_id, max(last_at) FROM analytics_diff_fad
        WHERE new AND last_at IS NOT NULL
        GROUP BY 1, 2, 3
        ON CONFLICT (workspace_id, account_id, feature_id)
        DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
        WHERE analytics_accountfeaturelastseen.last_seen_at < EXCLUDED.last_seen_at
        """
    )
    for name in ("fad", "fqh", "diff_fud", "diff_fad", "diff_fqh", "diff_fd", "diff_apd", "diff_pqh"):
        cursor.execute(f"DROP TABLE analytics_{name}")


# Dirty days of one workspace recomputed together in one transaction (bounded, so a long backlog is worked
# off in transactions of bounded size and locks).
MAX_DAYS_PER_ROLLUP = 31


def rollup_days(*, workspace_id: int, days: list[date], wait: bool = False) -> list[date]:
    """Recompute dirty UTC days of one workspace in one transaction, every rollup table in one statement over
    all of them. Days held by another run are skipped (waited for with wait=True), days no longer dirty are
    left alone. Returns the days rolled up."""
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
        # A crash that loses this COMMIT loses the mark deletions with it: the days are simply rolled up again.
        cursor.execute("SET LOCAL synchronous_commit = off")
        _recompute_days(cursor, workspace_id=workspace_id, days=dirty)
        generation_bump(cursor, workspace_id=workspace_id)
        marks_consume(cursor, workspace_id=workspace_id, marks=marks)
        return dirty


def rollup_day(*, workspace_id: int, day: date, wait: bool = False) -> bool:
    """Recompute one dirty (workspace, UTC day); False if another run holds it (or it is no longer dirty)."""
    return bool(rollup_days(workspace_id=workspace_id, days=[day], wait=wait))


def rollup_pending(
    *, now: datetime, limit: int | None = None, progress: Callable[[int, int, int, date], None] | None = None
) -> RollupReport:
    """Bring rollups up to date: recompute each dirty (workspace, UTC day), oldest mark first, the dirty days
    of a workspace together (up to MAX_DAYS_PER_ROLLUP per transaction). `limit` caps the days."""
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
        if since is None and until is None:
            cursor.execute("DELETE FROM analytics_accountfeaturelastseen WHERE workspace_id = %s", [workspace_id])
        _recompute(cursor, workspace_id=workspace_id, since=since, until=until)
        generation_bump(cursor, workspace_id=workspace_id)
        marks_consume(cursor, workspace_id=workspace_id, marks=marks)


def usage_day_mark_dirty(*, workspace_id: int, days: set[date] | list[date], now: datetime) -> None:
    """Mark (workspace, day) pairs for rollup, as ingestion does (used by rebuild tooling and tests)."""
    usage_days_mark_dirty(workspace_id=workspace_id, days=days, now=now)
