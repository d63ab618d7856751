"""Pieces shared by the incremental rollup and the rebuilds: advisory lock keys, generation bump, dirty marks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

# Advisory lock keys: a fixed namespace in the high bits so they cannot meet other apps' locks.
_LOCK_NAMESPACE = 0x414E << 48


def workspace_lock_key(workspace_id: int) -> int:
    return _LOCK_NAMESPACE | (1 << 47) | (workspace_id & 0xFFFFFFFF)


def day_lock_key(workspace_id: int, day: date) -> int:
    return _LOCK_NAMESPACE | ((workspace_id & 0xFFFFFF) << 24) | (day.toordinal() & 0xFFFFFF)


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
