"""Rollup writes: recompute whole UTC days of the count tables from raw usage events.

Every recompute is DELETE + INSERT ... SELECT over whole day buckets inside one transaction, so reruns and
retries are harmless. Concurrency: a rollup of (workspace, day) holds a transaction-scoped advisory lock on that
pair (and a shared lock on the workspace); a rebuild holds the workspace lock exclusively. A dirty mark is
deleted only if its `version` is still the one read before recomputing, so a day that received events during
the rollup stays dirty and is rolled up again; a crash rolls the transaction back and leaves the mark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction

from usage.models import UsageDayDirty

# Advisory lock keys: a fixed namespace in the high bits so they cannot meet other apps' locks.
_LOCK_NAMESPACE = 0x414E << 48


def _workspace_lock_key(workspace_id: int) -> int:
    return _LOCK_NAMESPACE | (1 << 47) | (workspace_id & 0xFFFFFFFF)


def _day_lock_key(workspace_id: int, day: date) -> int:
    return _LOCK_NAMESPACE | ((workspace_id & 0xFFFFFF) << 24) | (day.toordinal() & 0xFFFFFF)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


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
    diff: bool,
    bulk: bool = False,
) -> None:
    """Make the rows of `table` matching `where_sql` exactly the rows of `select_sql`.

    Bulk mode (a full rebuild, `where_sql` = the workspace): if the table holds no other workspace's rows it
    is truncated and loaded with its secondary indexes dropped, then re-indexed once (sorting 7M keys once is
    far cheaper than 7M index insertions); otherwise plain mode.

    Plain mode deletes them all and inserts the fresh ones (fastest for whole ranges). Diff mode computes the
    fresh rows into a temporary table and writes only what changed: a restated day usually changes a small
    part of its buckets, and writes (index upkeep, WAL) dominate the cost of a recompute."""
    columns = ", ".join(keys + values)
    if not diff:
        if bulk and _holds_only_workspace(cursor, table=table, workspace_id=where_params[0]):
            _bulk_load(
                cursor,
                table=table,
                columns=columns,
                order=", ".join(keys),
                select_sql=select_sql,
                select_params=select_params,
            )
            return
        cursor.execute(f"DELETE FROM {table} WHERE {where_sql}", where_params)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM ({select_sql}) fresh", select_params
        )
        return
    same_key = " AND ".join(f"f.{k} = t.{k}" for k in keys)
    same_values = " AND ".join(f"f.{v} IS NOT DISTINCT FROM t.{v}" for v in values)
    cursor.execute("DROP TABLE IF EXISTS analytics_fresh")
    cursor.execute(
        f"CREATE TEMP TABLE analytics_fresh ON COMMIT DROP AS SELECT {columns} FROM ({select_sql}) fresh",
        select_params,
    )
    # Statistics, so that the anti-joins below are planned as hash joins and not loops over a guess.
    cursor.execute("ANALYZE analytics_fresh")
    # Unqualified columns of the outer WHERE belong to `t`, the only table in its scope.
    cursor.execute(
        f"DELETE FROM {table} t WHERE {where_sql} "
        f"AND NOT EXISTS (SELECT 1 FROM analytics_fresh f WHERE {same_key} AND {same_values})",
        where_params,
    )
    cursor.execute(
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM analytics_fresh f "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key})"
    )
    cursor.execute("DROP TABLE analytics_fresh")


def _holds_only_workspace(cursor, *, table: str, workspace_id: int) -> bool:
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE workspace_id <> %s)", [workspace_id])
    return not cursor.fetchone()[0]


def _bulk_load(cursor, *, table: str, columns: str, order: str, select_sql: str, select_params: list) -> None:
    """TRUNCATE, drop the primary key, unique constraints and secondary indexes, INSERT … SELECT in key order,
    re-create them (same names and definitions, read from the catalog) and ANALYZE, all inside the caller's
    transaction. Key order stores each day's rows together, so a day's recompute later reads a few pages."""
    cursor.execute(
        """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY contype
        """,
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
        WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(f"TRUNCATE {table}")
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    cursor.execute(
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM ({select_sql}) fresh ORDER BY {order}",
        select_params,
    )
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        cursor.execute(definition)
    cursor.execute(f"ANALYZE {table}")


def _recompute(
    cursor, *, workspace_id: int, since: date | None, until: date | None, diff: bool = False
) -> None:
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
        ts_params.append(_start_of(since))
        bucket_where.append("bucket >= %s")
        bucket_params.append(_start_of(since))
    if until is not None:
        day_where.append("day <= %s")
        day_params.append(until)
        ts_where.append("occurred_at < %s")
        ts_params.append(_start_of(until + timedelta(days=1)))
        bucket_where.append("bucket < %s")
        bucket_params.append(_start_of(until + timedelta(days=1)))
    bulk = since is None and until is None and not diff
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
        diff=diff,
        bulk=bulk,
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
        diff=diff,
        bulk=bulk,
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
        diff=diff,
        bulk=bulk,
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
        diff=diff,
        bulk=bulk,
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
        diff=diff,
        bulk=bulk,
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
        diff=diff,
        bulk=bulk,
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


def _generation_bump(cursor, *, workspace_id: int) -> None:
    cursor.execute(
        """
        INSERT INTO analytics_rollupgeneration (workspace_id, token, generation, rolled_up_at)
        VALUES (%s, gen_random_uuid(), 1, now())
        ON CONFLICT (workspace_id) DO UPDATE
        SET generation = analytics_rollupgeneration.generation + 1, rolled_up_at = now()
        """,
        [workspace_id],
    )


def rollup_day(*, workspace_id: int, day: date, wait: bool = False) -> bool:
    """Recompute one dirty (workspace, UTC day); False if another run holds it (or it is no longer dirty)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [_workspace_lock_key(workspace_id)])
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_day_lock_key(workspace_id, day)])
        else:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock_shared(%s) AND pg_try_advisory_xact_lock(%s)",
                [_workspace_lock_key(workspace_id), _day_lock_key(workspace_id, day)],
            )
            if not cursor.fetchone()[0]:
                return False
        # Read the mark's version BEFORE reading events: anything committed later bumps it past this value.
        cursor.execute(
            "SELECT version FROM usage_usagedaydirty WHERE workspace_id = %s AND day = %s",
            [workspace_id, day],
        )
        row = cursor.fetchone()
        if row is None:
            return False
        _recompute(cursor, workspace_id=workspace_id, since=day, until=day, diff=True)
        _generation_bump(cursor, workspace_id=workspace_id)
        cursor.execute(
            "DELETE FROM usage_usagedaydirty WHERE workspace_id = %s AND day = %s AND version = %s",
            [workspace_id, day, row[0]],
        )
        return True


def rollup_pending(
    *, now: datetime, limit: int | None = None, progress: Callable[[int, int, int, date], None] | None = None
) -> RollupReport:
    """Bring rollups up to date: recompute each dirty (workspace, UTC day), oldest mark first."""
    marks = UsageDayDirty.objects.filter(marked_at__lte=now).order_by("marked_at", "workspace_id", "day")
    pairs = list(
        marks.values_list("workspace_id", "day")[:limit]
        if limit
        else marks.values_list("workspace_id", "day")
    )
    report = RollupReport()
    for index, (workspace_id, day) in enumerate(pairs, start=1):
        if rollup_day(workspace_id=workspace_id, day=day):
            report.days_rolled_up += 1
            report.rolled_up.append((workspace_id, day))
        else:
            report.days_skipped_locked += 1
        if progress is not None:
            progress(index, len(pairs), workspace_id, day)
    report.days_still_dirty = UsageDayDirty.objects.count()
    return report


@transaction.atomic
def rollups_rebuild(*, workspace_id: int, since: date | None = None, until: date | None = None) -> None:
    """Recompute a workspace's rollups from raw events for since..until (every day when both are None)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_workspace_lock_key(workspace_id)])
        # Whole-range aggregates of millions of groups: hash them in memory, build indexes in one sort.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        where = ["workspace_id = %s"]
        params: list = [workspace_id]
        if since is not None:
            where.append("day >= %s")
            params.append(since)
        if until is not None:
            where.append("day <= %s")
            params.append(until)
        cursor.execute(f"SELECT day, version FROM usage_usagedaydirty WHERE {' AND '.join(where)}", params)
        marks = cursor.fetchall()
        if since is None and until is None:
            if _holds_only_workspace(
                cursor, table="analytics_accountfeaturelastseen", workspace_id=workspace_id
            ):
                cursor.execute("TRUNCATE analytics_accountfeaturelastseen")
            else:
                cursor.execute(
                    "DELETE FROM analytics_accountfeaturelastseen WHERE workspace_id = %s", [workspace_id]
                )
        _recompute(cursor, workspace_id=workspace_id, since=since, until=until)
        _generation_bump(cursor, workspace_id=workspace_id)
        for day, version in marks:
            cursor.execute(
                "DELETE FROM usage_usagedaydirty WHERE workspace_id = %s AND day = %s AND version = %s",
                [workspace_id, day, version],
            )


def usage_day_mark_dirty(*, workspace_id: int, days: set[date] | list[date], now: datetime) -> None:
    """Mark (workspace, day) pairs for rollup, as ingestion does (used by rebuild tooling and tests)."""
    with connection.cursor() as cursor:
        for day in sorted(set(days)):
            cursor.execute(
                """
                INSERT INTO usage_usagedaydirty (workspace_id, day, version, marked_at) VALUES (%s, %s, 1, %s)
                ON CONFLICT (workspace_id, day)
                DO UPDATE SET version = usage_usagedaydirty.version + 1, marked_at = EXCLUDED.marked_at
                """,
                [workspace_id, day, now],
            )
