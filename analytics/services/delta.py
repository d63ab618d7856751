"""Delta rollups: add the aggregates of a day's new events (ids above its watermark, up to the horizon) to its
rollup rows instead of recomputing the whole day; when a batch cannot be applied as a delta, apply_delta writes
nothing and returns False. Why every column is additive: docs/internals.md ("Delta rollups")."""

from __future__ import annotations

from datetime import date, timedelta

from .common import events_group, start_of


def apply_delta(cursor, *, workspace_id: int, watermarks: dict[date, int], horizon: int) -> bool:
    """Add to the rollups of each day of `watermarks` its events with watermark < id ≤ horizon. False (nothing
    written) if the new events break the one-account-per-end-user rule (see the module docstring)."""
    days = sorted(watermarks)
    per_day = " OR ".join("(occurred_at >= %s AND occurred_at < %s AND id > %s)" for _ in days)
    day_params = [p for d in days for p in (start_of(d), start_of(d + timedelta(days=1)), watermarks[d])]
    ws = workspace_id
    # The new events, grouped per (day, feature, account, end user) and per (15 minutes, feature). The id range
    # lets the planner read them through the primary key when they are few and recent.
    events_group(
        cursor,
        table="analytics_delta_groups",
        where_sql=f"workspace_id = %s AND id > %s AND id <= %s AND ({per_day})",
        params=[ws, min(watermarks.values()), horizon, *day_params],
    )
    # Per (day, feature, end user): whether the stored row is missing (a user new to the day's feature) and
    # whether the one-account rule holds.
    cursor.execute("DROP TABLE IF EXISTS analytics_delta_fud")
    cursor.execute(
        """
        CREATE TEMP TABLE analytics_delta_fud ON COMMIT DROP AS
        SELECT d.day, d.feature_id, d.end_user_id, d.account_id, d.uses, d.events, t.end_user_id IS NULL AS new,
               d.account_id <> d.other_account OR coalesce(t.account_id <> d.account_id, false) AS mixed
        FROM (
            SELECT day, feature_id, end_user_id, min(account_id) AS account_id, max(account_id) AS other_account,
                   sum(uses)::bigint AS uses, sum(events)::bigint AS events
            FROM analytics_delta_groups WHERE is_day AND end_user_id IS NOT NULL GROUP BY 1, 2, 3
        ) d
        LEFT JOIN analytics_featureuserday t
          ON t.workspace_id = %s AND t.day = d.day AND t.feature_id = d.feature_id AND t.end_user_id = d.end_user_id
        """,
        [ws],
    )
    cursor.execute("SELECT EXISTS (SELECT 1 FROM analytics_delta_fud WHERE mixed)")
    if cursor.fetchone()[0]:
        return False
    cursor.execute(
        """
        INSERT INTO analytics_featureuserday AS t (workspace_id, day, feature_id, end_user_id, account_id, uses, events)
        SELECT %s, day, feature_id, end_user_id, account_id, uses, events FROM analytics_delta_fud ORDER BY 2, 3, 4
        ON CONFLICT (workspace_id, day, feature_id, end_user_id)
        DO UPDATE SET uses = t.uses + EXCLUDED.uses, events = t.events + EXCLUDED.events
        """,
        [ws],
    )
    # Per (day, feature, account): the new events' sums, the end users new to the (day, feature), the latest
    # positive event.
    cursor.execute("DROP TABLE IF EXISTS analytics_delta_fad")
    cursor.execute(
        """
        CREATE TEMP TABLE analytics_delta_fad ON COMMIT DROP AS
        SELECT g.day, g.feature_id, g.account_id, sum(g.uses)::bigint AS uses, sum(g.events)::bigint AS events,
               count(*) FILTER (WHERE u.new)::integer AS users, max(g.last_at) AS last_at
        FROM analytics_delta_groups g
        LEFT JOIN analytics_delta_fud u
          ON u.day = g.day AND u.feature_id = g.feature_id AND u.end_user_id = g.end_user_id
        WHERE g.is_day
        GROUP BY 1, 2, 3
        """
    )
    _add(
        cursor,
        table="analytics_featureaccountday",
        keys=["workspace_id", "day", "feature_id", "account_id"],
        sums=["uses", "events", "users"],
        greatest=["last_at"],
        select="SELECT %s, day, feature_id, account_id, uses, events, users, last_at FROM analytics_delta_fad",
        params=[ws],
    )
    _add(
        cursor,
        table="analytics_featurequarterhour",
        keys=["workspace_id", "bucket", "feature_id"],
        sums=["uses", "events"],
        select="""
            SELECT %s, bucket, feature_id, uses, events FROM analytics_delta_groups WHERE NOT is_day
        """,
        params=[ws],
    )
    _add(
        cursor,
        table="analytics_featureday",
        keys=["workspace_id", "feature_id", "day"],
        sums=["uses", "events"],
        select="""
            SELECT %s, feature_id, day, sum(uses)::bigint, sum(events)::bigint FROM analytics_delta_fad
            GROUP BY 2, 3
        """,
        params=[ws],
    )
    _add(
        cursor,
        table="analytics_accountproductday",
        keys=["workspace_id", "product_id", "day", "account_id"],
        sums=["uses", "events"],
        greatest=["last_at"],
        select="""
            SELECT %s, f.product_id, r.day, r.account_id, sum(r.uses)::bigint, sum(r.events)::bigint, max(r.last_at)
            FROM analytics_delta_fad r JOIN catalog_feature f ON f.id = r.feature_id
            GROUP BY 2, 3, 4
        """,
        params=[ws],
    )
    _add(
        cursor,
        table="analytics_productquarterhour",
        keys=["workspace_id", "product_id", "bucket"],
        sums=["uses", "events"],
        select="""
            SELECT %s, f.product_id, g.bucket, sum(g.uses)::bigint, sum(g.events)::bigint
            FROM analytics_delta_groups g JOIN catalog_feature f ON f.id = g.feature_id
            WHERE NOT g.is_day GROUP BY 2, 3
        """,
        params=[ws],
    )
    _add(
        cursor,
        table="analytics_accountfeaturelastseen",
        keys=["workspace_id", "account_id", "feature_id"],
        greatest=["last_seen_at"],
        select="""
            SELECT %s, account_id, feature_id, max(last_at) FROM analytics_delta_fad WHERE last_at IS NOT NULL
            GROUP BY 2, 3
        """,
        params=[ws],
    )
    for name in ("groups", "fud", "fad"):
        cursor.execute(f"DROP TABLE analytics_delta_{name}")
    return True


def _add(
    cursor,
    *,
    table: str,
    keys: list[str],
    select: str,
    params: list,
    sums: tuple[str, ...] | list[str] = (),
    greatest: tuple[str, ...] | list[str] = (),
) -> None:
    """Upsert the rows of `select` (columns: keys, sums, greatest) into `table`: a new key is inserted, an
    existing one gets the sums added and the greater of the times; in key order (the primary key and indexes led
    by a key prefix take the entries page by page)."""
    columns = [*keys, *sums, *greatest]
    updates = [f"{c} = t.{c} + EXCLUDED.{c}" for c in sums] + [f"{c} = greatest(t.{c}, EXCLUDED.{c})" for c in greatest]
    where = ""
    if not sums:  # last seen: only rows that move forward
        where = " WHERE " + " OR ".join(f"t.{c} < EXCLUDED.{c}" for c in greatest)
    cursor.execute(
        f"""
        INSERT INTO {table} AS t ({", ".join(columns)})
        SELECT * FROM ({select}) d ORDER BY {", ".join(str(i + 1) for i in range(len(keys)))}
        ON CONFLICT ({", ".join(keys)}) DO UPDATE SET {", ".join(updates)}{where}
        """,
        params,
    )
