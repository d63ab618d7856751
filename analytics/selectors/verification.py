"""Verification: every rollup table compared with aggregates of the raw events (`manage.py verify_rollups`)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection

_VERIFY_QUERIES = {
    "analytics_featureaccountday": (
        """SELECT (occurred_at AT TIME ZONE 'UTC')::date, feature_id, account_id, sum(quantity), count(*),
                  count(DISTINCT end_user_id), max(occurred_at) FILTER (WHERE quantity > 0)
           FROM usage_usageevent WHERE workspace_id = %(ws)s GROUP BY 1, 2, 3""",
        """SELECT day, feature_id, account_id, uses, events, users::bigint, last_at
           FROM analytics_featureaccountday WHERE workspace_id = %(ws)s""",
    ),
    "analytics_featurequarterhour": (
        """SELECT date_bin('15 minutes', occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), feature_id,
                  sum(quantity), count(*)
           FROM usage_usageevent WHERE workspace_id = %(ws)s GROUP BY 1, 2""",
        """SELECT bucket, feature_id, uses, events FROM analytics_featurequarterhour WHERE workspace_id = %(ws)s""",
    ),
    "analytics_featureuserday": (
        """SELECT (occurred_at AT TIME ZONE 'UTC')::date, feature_id, end_user_id, sum(quantity), count(*)
           FROM usage_usageevent WHERE workspace_id = %(ws)s AND end_user_id IS NOT NULL GROUP BY 1, 2, 3""",
        """SELECT day, feature_id, end_user_id, uses, events FROM analytics_featureuserday
           WHERE workspace_id = %(ws)s""",
    ),
    "analytics_featureday": (
        """SELECT (occurred_at AT TIME ZONE 'UTC')::date, feature_id, sum(quantity), count(*)
           FROM usage_usageevent WHERE workspace_id = %(ws)s GROUP BY 1, 2""",
        """SELECT day, feature_id, uses, events FROM analytics_featureday WHERE workspace_id = %(ws)s""",
    ),
    "analytics_accountproductday": (
        """SELECT (e.occurred_at AT TIME ZONE 'UTC')::date, f.product_id, e.account_id, sum(e.quantity), count(*),
                  max(e.occurred_at) FILTER (WHERE e.quantity > 0)
           FROM usage_usageevent e JOIN catalog_feature f ON f.id = e.feature_id
           WHERE e.workspace_id = %(ws)s GROUP BY 1, 2, 3""",
        """SELECT day, product_id, account_id, uses, events, last_at FROM analytics_accountproductday
           WHERE workspace_id = %(ws)s""",
    ),
    "analytics_productquarterhour": (
        """SELECT date_bin('15 minutes', e.occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), f.product_id,
                  sum(e.quantity), count(*)
           FROM usage_usageevent e JOIN catalog_feature f ON f.id = e.feature_id
           WHERE e.workspace_id = %(ws)s GROUP BY 1, 2""",
        """SELECT bucket, product_id, uses, events FROM analytics_productquarterhour WHERE workspace_id = %(ws)s""",
    ),
    "analytics_accountfeaturelastseen": (
        """SELECT account_id, feature_id, max(occurred_at) FROM usage_usageevent
           WHERE workspace_id = %(ws)s AND quantity > 0 GROUP BY 1, 2""",
        """SELECT account_id, feature_id, last_seen_at FROM analytics_accountfeaturelastseen
           WHERE workspace_id = %(ws)s""",
    ),
}


def rollup_differences(*, workspace_id: int, limit: int = 50) -> tuple[list[str], int]:
    """Rows where a rollup table disagrees with raw events, skipping days still marked dirty.

    Returns (differences, pending_days)."""
    differences: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT day FROM usage_usagedaydirty WHERE workspace_id = %s", [workspace_id])
        dirty = {row[0] for row in cursor.fetchall()}
        for table, (expected_sql, actual_sql) in _VERIFY_QUERIES.items():
            cursor.execute(
                f"""
                SELECT 'missing or different', * FROM (({expected_sql}) EXCEPT ({actual_sql})) a
                UNION ALL
                SELECT 'unexpected', * FROM (({actual_sql}) EXCEPT ({expected_sql})) b
                """,
                {"ws": workspace_id},
            )
            for kind, *values in cursor.fetchall():
                # The time that names the bucket: last seen is checked against the day of the last use.
                first = values[2] if table == "analytics_accountfeaturelastseen" else values[0]
                day = first.astimezone(UTC).date() if isinstance(first, datetime) else first
                if day in dirty:
                    continue
                differences.append(f"{table}: {kind}: {tuple(values)!r}")
                if len(differences) >= limit:
                    return differences, len(dirty)
    return differences, len(dirty)
