"""Whole-day recomputes: rollup rows of whole UTC days made equal to raw-event aggregates (range and in-place
rebuilds replace the days' rows; incremental rollups of days without a watermark write only what differs).

`through`: count only events with id ≤ through (the rollup's event horizon, see common.event_horizon), so that
the days' watermark can say exactly which events their rollups count; None counts every visible event."""

from __future__ import annotations

from datetime import date, timedelta

from .common import QUARTER_HOUR_SQL, events_group, start_of


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


def recompute(cursor, *, workspace_id: int, since: date | None, until: date | None, through: int | None = None) -> None:
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
    if through is not None:
        ts_where.append("id <= %s")
        ts_params.append(through)
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
            SELECT workspace_id, {QUARTER_HOUR_SQL} AS bucket, feature_id,
                   sum(quantity::integer) AS uses, count(*) AS events
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


def ranges_sql(column: str, runs: list[tuple[date, date]], *, timestamps: bool) -> tuple[str, list]:
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


def day_runs(days: list[date]) -> list[tuple[date, date]]:
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


def recompute_days(cursor, *, workspace_id: int, days: list[date], through: int | None = None) -> None:
    """Recompute every rollup table of one workspace for a set of UTC days, each table in one set-based
    statement over all the days, writing only changed rows.

    One scan of the days' raw events groups them both per (day, feature, account, end user) and per
    (15-minute bucket, feature) (GROUPING SETS) into a temporary table; the fresh feature×account×day and
    feature×15-minute rows are kept in temporary tables too, and the coarse tables (feature×day,
    account×product×day, product×15 min) are derived from those instead of re-reading what was just written.
    Last-seen moves only from the feature×account×day rows that changed (events are append-only: a row that
    did not change carries no newer time than when it was written, and last-seen was moved then)."""
    runs = day_runs(days)
    ts_sql, ts_params = ranges_sql("occurred_at", runs, timestamps=True)
    if through is not None:
        ts_sql += " AND id <= %s"
        ts_params.append(through)
    day_sql, day_params = ranges_sql("day", runs, timestamps=False)
    bucket_sql, bucket_params = ranges_sql("bucket", runs, timestamps=True)
    ws = [workspace_id]
    events_group(cursor, table="analytics_groups", where_sql=f"workspace_id = %s AND {ts_sql}", params=ws + ts_params)
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
