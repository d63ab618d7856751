"""Full rebuild of one workspace's rollups into staging tables, built by several connections at once and swapped
in whole (when the rollup tables hold this workspace only; otherwise rollups_rebuild recomputes in place). The
steps, their locks and what readers and crashes see: docs/internals.md ("Rebuild")."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from django.db import OperationalError, connection, transaction

from .common import (
    QUARTER_HOUR_SQL,
    event_horizon,
    generation_bump,
    holds_only_workspace,
    marks_consume,
    start_of,
    watermarks_set,
    workspace_lock_key,
)

SUFFIX = "__rebuild"
# Event id bound when no horizon could be had: every visible event counts.
_NO_HORIZON = 2**63 - 1

# Live tables in the order every rollup writes them (incremental and in-place rebuilds alike), so that the
# coordinator's SHARE locks queue behind a running rollup instead of forming a lock cycle with it.
TABLES = [
    "analytics_featureuserday",
    "analytics_featureaccountday",
    "analytics_featurequarterhour",
    "analytics_featureday",
    "analytics_accountproductday",
    "analytics_productquarterhour",
    "analytics_accountfeaturelastseen",
]
# Index builds, biggest tables first (step 4).
_BIG_TABLES = {"analytics_featureaccountday", "analytics_featureuserday", "analytics_featurequarterhour"}
_INDEX_ORDER = [
    "analytics_featureaccountday",
    "analytics_featureuserday",
    "analytics_accountfeaturelastseen",
    "analytics_featurequarterhour",
    "analytics_accountproductday",
    "analytics_featureday",
    "analytics_productquarterhour",
]

# Per connection: aggregate a day in memory, sort an index in one pass; no JIT (~100 ms to compile a statement
# that runs for a few hundred). Parallel index builds only when one connection does everything.
_SETTINGS = {"work_mem": "256MB", "maintenance_work_mem": "512MB", "jit": "off"}
_PARALLEL_SETTINGS = {"max_parallel_maintenance_workers": "0", "synchronous_commit": "off"}


def _settings(cursor, *, parallel: bool) -> dict[str, str]:
    """Session settings of the connections that build. Index builds write every page to the WAL whole:
    compressed (lz4) where the role may set wal_compression and the server has lz4 (WAL 3.6 → 2.4 GB for a
    10M-event rebuild). A worker's commit may be asynchronous: a crash that loses it loses the coordinator's
    later commit too."""
    cursor.execute(
        "SELECT has_parameter_privilege('wal_compression', 'SET') AND 'lz4' = ANY(enumvals) FROM pg_settings "
        "WHERE name = 'wal_compression'"
    )
    compress = {"wal_compression": "lz4"} if cursor.fetchone()[0] else {}
    return {**_SETTINGS, **compress, **(_PARALLEL_SETTINGS if parallel else {})}


def _apply(cursor, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


# Swap locks: how long one attempt waits for readers to leave a table, and for how long attempts go on.
_LOCK_TIMEOUT = "500ms"
_LOCK_PATIENCE_SECONDS = 120.0

# One UTC day of raw events into every day-keyed table. sum(quantity::integer): quantities are bounded to ±1e9
# (usage_usageevent_quantity_bounds) and an int4 sum accumulates in an int8, not a numeric. The feature × account
# groups count distinct end users as their (feature, account, end user) groups.
_DAY_SQL = f"""
WITH g AS MATERIALIZED (
    SELECT feature_id, account_id, end_user_id, sum(quantity::integer) AS uses, count(*) AS events,
           max(occurred_at) FILTER (WHERE quantity > 0) AS last_at
    FROM usage_usageevent
    WHERE workspace_id = %(ws)s AND occurred_at >= %(start)s AND occurred_at < %(end)s AND id <= %(through)s
    GROUP BY feature_id, account_id, end_user_id
), fad AS MATERIALIZED (
    SELECT feature_id, account_id, sum(uses)::bigint AS uses, sum(events)::bigint AS events,
           count(end_user_id)::integer AS users, max(last_at) AS last_at
    FROM g GROUP BY feature_id, account_id
), q AS MATERIALIZED (
    SELECT {QUARTER_HOUR_SQL} AS bucket, feature_id,
           sum(quantity::integer) AS uses, count(*) AS events
    FROM usage_usageevent
    WHERE workspace_id = %(ws)s AND occurred_at >= %(start)s AND occurred_at < %(end)s AND id <= %(through)s
    GROUP BY 1, 2
), fud_rows AS (
    INSERT INTO analytics_featureuserday{SUFFIX}
        (workspace_id, day, feature_id, end_user_id, account_id, uses, events)
    SELECT %(ws)s, %(day)s, feature_id, end_user_id, min(account_id), sum(uses), sum(events)
    FROM g WHERE end_user_id IS NOT NULL GROUP BY feature_id, end_user_id ORDER BY feature_id, end_user_id
), fd_rows AS (
    INSERT INTO analytics_featureday{SUFFIX} (workspace_id, feature_id, day, uses, events)
    SELECT %(ws)s, feature_id, %(day)s, sum(uses), sum(events) FROM fad GROUP BY feature_id ORDER BY feature_id
), apd_rows AS (
    INSERT INTO analytics_accountproductday{SUFFIX}
        (workspace_id, product_id, day, account_id, uses, events, last_at)
    SELECT %(ws)s, f.product_id, %(day)s, r.account_id, sum(r.uses), sum(r.events), max(r.last_at)
    FROM fad r JOIN catalog_feature f ON f.id = r.feature_id
    GROUP BY f.product_id, r.account_id
), fqh_rows AS (
    INSERT INTO analytics_featurequarterhour{SUFFIX} (workspace_id, bucket, feature_id, uses, events)
    SELECT %(ws)s, bucket, feature_id, uses, events FROM q ORDER BY bucket, feature_id
), pqh_rows AS (
    INSERT INTO analytics_productquarterhour{SUFFIX} (workspace_id, product_id, bucket, uses, events)
    SELECT %(ws)s, f.product_id, q.bucket, sum(q.uses), sum(q.events)
    FROM q JOIN catalog_feature f ON f.id = q.feature_id
    GROUP BY f.product_id, q.bucket ORDER BY f.product_id, q.bucket
)
INSERT INTO analytics_featureaccountday{SUFFIX}
    (workspace_id, day, feature_id, account_id, uses, events, users, last_at)
SELECT %(ws)s, %(day)s, feature_id, account_id, uses, events, users, last_at FROM fad ORDER BY feature_id, account_id
"""

# Last seen of every (account, feature): over all days, so after the feature × account × day rows are in.
_LAST_SEEN_SQL = f"""
INSERT INTO analytics_accountfeaturelastseen{SUFFIX} (workspace_id, account_id, feature_id, last_seen_at)
SELECT workspace_id, account_id, feature_id, max(last_at) FROM analytics_featureaccountday{SUFFIX}
WHERE last_at IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def rebuild_staged(*, workspace_id: int, workers: int = 2) -> bool:
    """Rebuild every rollup table of a workspace into staging tables and swap them in (see the module
    docstring), `workers` connections at once unless a transaction of the caller's is open. False (nothing done)
    if a rollup table holds another workspace's rows."""
    parallel = workers > 1 and not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [workspace_lock_key(workspace_id)])
        _lock_tables(cursor, TABLES, mode="SHARE")
        if not all(holds_only_workspace(cursor, table=t, workspace_id=workspace_id) for t in TABLES):
            return False
        cursor.execute("SELECT day, shard, version FROM usage_usagedaydirty WHERE workspace_id = %s", [workspace_id])
        marks = cursor.fetchall()
        # Count the events up to the horizon only (every one if it cannot be had), so that each day's watermark
        # can say which events its rollups count; the snapshot below is taken after it.
        horizon = event_horizon(cursor)
        cursor.execute(
            "SELECT min(occurred_at), max(occurred_at) FROM usage_usageevent WHERE workspace_id = %s", [workspace_id]
        )
        first, last = cursor.fetchone()
        days = _days_between(first, last)
        through = _NO_HORIZON if horizon is None else horizon
        day_tasks = [_day_task(workspace_id=workspace_id, day=day, through=through) for day in days]
        index_tasks = _index_tasks(cursor)
        settings = _settings(cursor, parallel=parallel)
        if parallel:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            try:
                _in_workers([_create_staging], workers=1, settings=settings)
                _in_workers(day_tasks, workers=workers, settings=settings, snapshot=snapshot)
                _in_workers(index_tasks, workers=workers, settings=settings)
            except BaseException:
                _in_workers([_drop_staging], workers=1, settings=settings)
                raise
        else:
            _apply(cursor, settings)
            for task in [_create_staging, *day_tasks, *index_tasks]:
                task(cursor)
            for name in settings:  # the rest of the caller's transaction runs with its own settings
                cursor.execute(f"SET LOCAL {name} TO DEFAULT")
        _swap(cursor)
        cursor.execute("DELETE FROM analytics_rollupwatermark WHERE workspace_id = %s", [workspace_id])
        if horizon is not None:
            cursor.execute("SELECT DISTINCT day FROM analytics_featureday WHERE workspace_id = %s", [workspace_id])
            rolled_up = [row[0] for row in cursor.fetchall()]
            watermarks_set(cursor, workspace_id=workspace_id, days=rolled_up, event_id=horizon)
        generation_bump(cursor, workspace_id=workspace_id)
        marks_consume(cursor, workspace_id=workspace_id, marks=marks)
    return True


def _days_between(first: datetime | None, last: datetime | None) -> list[date]:
    """The UTC days from the one of `first` to the one of `last` (none without events)."""
    if first is None or last is None:
        return []
    start, end = first.astimezone(UTC).date(), last.astimezone(UTC).date()
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


Task = Callable[..., None]


def _day_task(*, workspace_id: int, day: date, through: int) -> Task:
    def run(cursor) -> None:
        params = {"ws": workspace_id, "day": day, "through": through}
        cursor.execute(_DAY_SQL, {**params, "start": start_of(day), "end": start_of(day + timedelta(days=1))})

    return run


def _create_staging(cursor) -> None:
    """Empty staging tables: the live tables' columns, defaults, checks and storage parameters (fillfactor)."""
    _drop_staging(cursor)
    for table in TABLES:
        cursor.execute("SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = %s::regclass", [table])
        options = cursor.fetchone()[0]
        storage = f" WITH ({options})" if options else ""
        cursor.execute(f"CREATE TABLE {table}{SUFFIX} (LIKE {table} INCLUDING ALL EXCLUDING INDEXES){storage}")


def _drop_staging(cursor) -> None:
    for table in TABLES:
        cursor.execute(f"DROP TABLE IF EXISTS {table}{SUFFIX}")


def _index_tasks(cursor) -> list[Task]:
    """Step 4 as tasks, biggest first: every index of every staging table (CREATE INDEX runs alongside another on
    the same table), last-seen with its primary key, then ANALYZE of every table."""
    builds, small = [], []
    for table in _INDEX_ORDER:
        statements = []
        for name, definition in _indexes(cursor, table):
            match = _INDEX_DEF.match(definition)
            assert match, definition
            statements.append(f'CREATE {match[1] or ""}INDEX "{name}{SUFFIX}" ON {table}{SUFFIX} {match[4]}')
        if table == "analytics_accountfeaturelastseen":  # filled here, from the complete day rows
            builds.append(_statements_task(_LAST_SEEN_SQL, *statements))
        else:
            (builds if table in _BIG_TABLES else small).extend(_statements_task(st) for st in statements)
    analyze = [_statements_task(f"ANALYZE {table}{SUFFIX}") for table in _INDEX_ORDER]
    return builds + small + analyze


def _statements_task(*statements: str) -> Task:
    def run(cursor) -> None:
        for statement in statements:
            cursor.execute(statement)

    return run


_INDEX_DEF = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (\S+) (USING .*)$")


def _indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, definition) of every index of a live table, the primary key's first."""
    cursor.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass ORDER BY i.indisprimary DESC, c.relname
        """,
        [table],
    )
    return cursor.fetchall()


def _swap(cursor) -> None:
    """Replace each live table by its staging table, keeping every name (table, primary key, indexes)."""
    plan = []
    for table in TABLES:
        cursor.execute(
            """
            SELECT c.relname, k.contype FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
            WHERE i.indrelid = %s::regclass
            """,
            [table],
        )
        plan.append((table, cursor.fetchall()))
    _lock_tables(cursor, TABLES, mode="ACCESS EXCLUSIVE")
    for table, indexes in plan:
        cursor.execute(f"DROP TABLE {table}")
        cursor.execute(f"ALTER TABLE {table}{SUFFIX} RENAME TO {table}")
        for name, contype in indexes:
            if contype in ("p", "u"):
                kind = "PRIMARY KEY" if contype == "p" else "UNIQUE"
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {kind} USING INDEX "{name}{SUFFIX}"')
            else:
                cursor.execute(f'ALTER INDEX "{name}{SUFFIX}" RENAME TO "{name}"')


def _in_workers(tasks: list[Task], *, workers: int, settings: dict[str, str], snapshot: str | None = None) -> None:
    """Run tasks in `workers` threads, each with its own connection, taking the next task when done with one.
    With a snapshot, each thread runs all its tasks in one REPEATABLE READ transaction on that snapshot;
    without, each task in its own transaction. Re-raises the first error once every thread has stopped."""
    queue = list(tasks)
    guard = threading.Lock()
    errors: list[BaseException] = []

    def next_task() -> Task | None:
        with guard:
            return queue.pop(0) if queue and not errors else None

    def work() -> None:
        try:
            if snapshot is not None:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
                    _apply(cursor, settings)
                    while (task := next_task()) is not None:
                        task(cursor)
            else:
                while (task := next_task()) is not None:
                    with transaction.atomic(), connection.cursor() as cursor:
                        _apply(cursor, settings)
                        task(cursor)
        except BaseException as exc:  # re-raised in the coordinator
            with guard:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, name=f"rollup-rebuild-{i}") for i in range(min(workers, len(tasks)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _lock_tables(cursor, tables: list[str], *, mode: str) -> None:
    """LOCK TABLE … IN `mode`, each attempt bounded by a short lock_timeout inside a savepoint and retried, so
    that queries queued behind the pending lock wait at most that long and a deadlock with a reader aborts the
    attempt, not the transaction."""
    deadline = time.monotonic() + _LOCK_PATIENCE_SECONDS
    delay = 0.05
    while True:
        try:
            with transaction.atomic():
                cursor.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
                cursor.execute(f"LOCK TABLE {', '.join(tables)} IN {mode} MODE")
                cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
            return
        except OperationalError as exc:
            sqlstate = getattr(exc.__cause__, "sqlstate", None)
            if sqlstate not in ("55P03", "40P01") or time.monotonic() > deadline:  # lock_not_available, deadlock
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
