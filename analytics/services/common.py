"""Pieces shared by the incremental rollup and the rebuilds: advisory lock keys, generation bump, dirty marks,
the quarter-hour bucket and the grouped scan of raw events."""

from __future__ import annotations

import time as time_module
from datetime import UTC, date, datetime, time

# Advisory lock keys: a fixed namespace in the high bits so they cannot meet other apps' locks.
_LOCK_NAMESPACE = 0x414E << 48


def workspace_lock_key(workspace_id: int) -> int:
    return _LOCK_NAMESPACE | (1 << 47) | (workspace_id & 0xFFFFFFFF)


def day_lock_key(workspace_id: int, day: date) -> int:
    return _LOCK_NAMESPACE | ((workspace_id & 0xFFFFFF) << 24) | (day.toordinal() & 0xFFFFFF)


# The 15-minute bucket of an event (UTC-aligned; the heatmap shifts whole buckets into the workspace's zone).
QUARTER_HOUR_SQL = "date_bin('15 minutes', occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')"


def events_group(cursor, *, table: str, where_sql: str, params: list) -> None:
    """The one scan of raw events a rollup write starts from: a temporary table `table` (dropped at commit) of
    the events matching `where_sql`, grouped per (day, feature, account, end user) (`is_day`) and per
    (15 minutes, feature), with uses, events and the last positive use."""
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(
        f"""
        CREATE TEMP TABLE {table} ON COMMIT DROP AS
        SELECT GROUPING(bucket) = 1 AS is_day, day, bucket, feature_id, account_id, end_user_id,
               sum(quantity::integer) AS uses, count(*) AS events,
               max(occurred_at) FILTER (WHERE quantity > 0) AS last_at
        FROM (
            SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, {QUARTER_HOUR_SQL} AS bucket,
                   feature_id, account_id, end_user_id, quantity, occurred_at
            FROM usage_usageevent WHERE {where_sql}
        ) e
        GROUP BY GROUPING SETS ((day, feature_id, account_id, end_user_id), (bucket, feature_id))
        """,
        params,
    )


def start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def generation_bump(cursor, *, workspace_id: int) -> None:
    cursor.execute(
        """
        INSERT INTO analytics_rollupgeneration (workspace_id, token, generation, rolled_up_at)
        VALUES (%s, gen_random_uuid(), 1, now())
        ON CONFLICT (workspace_id) DO UPDATE
        SET generation = analytics_rollupgeneration.generation + 1, rolled_up_at = now()
        """,
        [workspace_id],
    )


def marks_consume(cursor, *, workspace_id: int, marks: list[tuple[date, int, int]]) -> None:
    """Delete each (day, shard, version) mark row read before recomputing, only if its version is unchanged."""
    if not marks:
        return
    cursor.execute(
        """
        DELETE FROM usage_usagedaydirty d
        USING unnest(%s::date[], %s::smallint[], %s::bigint[]) AS r(day, shard, version)
        WHERE d.workspace_id = %s AND d.day = r.day AND d.shard = r.shard AND d.version = r.version
        """,
        [[m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks], workspace_id],
    )


def holds_only_workspace(cursor, *, table: str, workspace_id: int) -> bool:
    """Whether `table` holds no other workspace's rows (every rollup key starts with workspace_id: two index
    probes, not a scan)."""
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {table} WHERE workspace_id < %s)"
        f" OR EXISTS (SELECT 1 FROM {table} WHERE workspace_id > %s)",
        [workspace_id, workspace_id],
    )
    return not cursor.fetchone()[0]


# How long a rollup waits for transactions that may still add events with ids below its horizon (ingestion's are
# a few ms) before it gives up on watermarks for this run and recomputes its days whole.
HORIZON_WAIT_SECONDS = 0.25


def event_horizon(cursor, *, wait: float = HORIZON_WAIT_SECONDS) -> int | None:
    """The highest usage event id H such that no event with id ≤ H can still appear: every statement run after
    this returns sees all of them. None if that cannot be established within `wait` seconds.

    Event ids come from the identity sequence of usage_usageevent, one at a time (cache 1: no session holds a
    block of ids it hands out later), inside statements that write the table and hold its ROW EXCLUSIVE lock
    from before their first id until their transaction ends. So H = the sequence's last value read now is
    final once every transaction holding that lock right after the read has ended: waited for here (polling
    their virtual transaction ids; our own transaction excluded, it adds no events)."""
    cursor.execute(
        "SELECT s.seqcache, pg_sequence_last_value(s.seqrelid) FROM pg_sequence s "
        "WHERE s.seqrelid = pg_get_serial_sequence('usage_usageevent', 'id')::regclass"
    )
    cache, last = cursor.fetchone()
    if cache != 1:
        return None
    cursor.execute(
        """
        SELECT array_agg(virtualtransaction), coalesce(bool_or(pid IS NULL), false) FROM pg_locks
        WHERE locktype = 'relation' AND relation = 'usage_usageevent'::regclass AND mode = 'RowExclusiveLock'
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND pid IS DISTINCT FROM pg_backend_pid()
        """
    )
    holders, prepared = cursor.fetchone()
    if prepared:  # a prepared (two-phase) transaction has no virtual transaction to wait for
        return None
    deadline = time_module.monotonic() + wait
    while holders:
        if time_module.monotonic() > deadline:
            return None
        time_module.sleep(0.005)
        cursor.execute(
            "SELECT array_agg(DISTINCT virtualxid) FROM pg_locks WHERE locktype = 'virtualxid' "
            "AND virtualxid = ANY(%s)",
            [holders],
        )
        holders = cursor.fetchone()[0]
    return last or 0


def watermarks_read(cursor, *, workspace_id: int, days: list[date]) -> dict[date, int]:
    cursor.execute(
        "SELECT day, event_id FROM analytics_rollupwatermark WHERE workspace_id = %s AND day = ANY(%s)",
        [workspace_id, days],
    )
    return dict(cursor.fetchall())


def watermarks_set(cursor, *, workspace_id: int, days: list[date], event_id: int | None) -> None:
    """The days' rollups now count exactly their events with id ≤ event_id (None: unknown, rows dropped)."""
    if event_id is None:
        cursor.execute(
            "DELETE FROM analytics_rollupwatermark WHERE workspace_id = %s AND day = ANY(%s)", [workspace_id, days]
        )
        return
    cursor.execute(
        """
        INSERT INTO analytics_rollupwatermark (workspace_id, day, event_id)
        SELECT %s, d, %s FROM unnest(%s::date[]) AS d ORDER BY d
        ON CONFLICT (workspace_id, day) DO UPDATE SET event_id = EXCLUDED.event_id
        """,
        [workspace_id, event_id, days],
    )
