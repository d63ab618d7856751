"""Analytics benchmark: load N raw events (default 10M) for 2,000 accounts × 200 features × 90 days into a
dedicated database, then time a full rollup rebuild, an incremental rollup of 100k new events, and the
feature-usage endpoint (p50/p95).

    make bench-analytics BENCH_ARGS="--events 1000000"
    .venv/bin/python bench/analytics/run.py --events 10000000

The database is uptake_bench_analytics on the server of DATABASE_URL (or the embedded one); it is dropped
and recreated unless --reuse is given (then loading is skipped when it already holds the events).
Events are generated inside PostgreSQL (INSERT … SELECT generate_series, in time order as an append-only log
would hold them; foreign-key triggers off while loading) by bench/support.py analytics_dataset_build: a skewed
account mix (a few heavy accounts), each account with its own Zipf-like feature preferences, 80 % of events with
an end user, 0.5 % negative corrections.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.support import (  # noqa: E402
    analytics_dataset_arguments,
    analytics_dataset_build,
    database_prepare,
    database_urls,
    django_setup,
    log,
    percentile,
)

DB_NAME = "uptake_bench_analytics"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    analytics_dataset_arguments(parser)
    parser.add_argument("--incremental", type=int, default=100_000, help="new events for the incremental run")
    parser.add_argument("--requests", type=int, default=60, help="endpoint requests for p50/p95")
    parser.add_argument("--reuse", action="store_true", help="keep an existing benchmark database")
    parser.add_argument(
        "--reset-incremental", action="store_true", help="first remove earlier runs' incremental events"
    )
    parser.add_argument("--profile", action="store_true", help="print the incremental rollup's slowest SQL")
    parser.add_argument("--skip-rebuild", action="store_true", help="with --reuse: time only incremental + endpoint")
    args = parser.parse_args()

    url, admin_url = database_urls(DB_NAME)
    database_prepare(admin_url, DB_NAME, fresh=not args.reuse)
    django_setup(url)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts.models import Workspace
    from accounts.services import api_key_create
    from analytics.services import rollup_pending, rollups_rebuild
    from usage.services import usage_days_mark_appended

    now = datetime.now(UTC).replace(microsecond=0)
    start = datetime.combine((now - timedelta(days=args.days - 1)).date(), datetime.min.time(), tzinfo=UTC)
    results: dict[str, str] = {}
    call_command("migrate", verbosity=0)  # a reused database gets the newer migrations too
    workspace = Workspace.objects.filter(slug="bench").first()
    if workspace is None:
        workspace, _ = analytics_dataset_build(
            accounts=args.accounts, features=args.features, events=args.events, days=args.days, start=start
        )
    n_events = _count(connection, "usage_usageevent")
    log(f"{n_events:,} raw events in the benchmark database")

    # Full rebuild ----
    if not args.skip_rebuild:
        t0 = time.perf_counter()
        rollups_rebuild(workspace_id=workspace.pk)
        rebuild = time.perf_counter() - t0
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE analytics_featureaccountday")
            cursor.execute("VACUUM ANALYZE analytics_featurequarterhour")
            cursor.execute("VACUUM ANALYZE analytics_featureuserday")
        rows = {
            t: _count(connection, f"analytics_{t}")
            for t in ("featureaccountday", "featurequarterhour", "featureuserday", "accountfeaturelastseen")
        }
        log(f"full rebuild: {rebuild:.1f} s; rollup rows {rows}")
        results["full rebuild"] = f"{rebuild:.1f} s ({n_events:,} events → {rows})"

    # Incremental: 100k new events, 80 % today and 20 % late (yesterday) --------------------------------
    today = now.date()
    if args.reset_incremental:
        # Earlier incremental runs' events (each run's batch shares one received_at) made today and yesterday
        # several times bigger than a generated day; take them out and roll those days up (not timed).
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                DELETE FROM usage_usageevent WHERE workspace_id = %(ws)s AND occurred_at >= %(since)s
                  AND received_at IN (
                    SELECT received_at FROM usage_usageevent WHERE workspace_id = %(ws)s AND occurred_at >= %(since)s
                    GROUP BY received_at HAVING count(*) >= 1000)
                """,
                {"ws": workspace.pk, "since": datetime.combine(today - timedelta(days=3), datetime.min.time(), UTC)},
            )
            removed = cursor.rowcount
        rollups_rebuild(workspace_id=workspace.pk, since=today - timedelta(days=3), until=today)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE usage_usageevent")
            for table in ("featureaccountday", "featureuserday", "featurequarterhour", "accountfeaturelastseen"):
                cursor.execute(f"VACUUM ANALYZE analytics_{table}")
        log(f"reset: {removed:,} events of earlier incremental runs removed in {time.perf_counter() - t0:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM accounts_account WHERE workspace_id = %s", [workspace.pk])
        acc_min, _ = cursor.fetchone()
        cursor.execute("SELECT min(id) FROM catalog_feature WHERE workspace_id = %s", [workspace.pk])
        feat_min = cursor.fetchone()[0]
        t0 = time.perf_counter()
        day_start = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
        cursor.execute(
            """
            INSERT INTO usage_usageevent (workspace_id, account_id, end_user_id, feature_id, occurred_at,
                                          received_at, quantity, source)
            SELECT %(ws)s, %(acc)s + a, NULL, %(feat)s + ((a * 7 + floor(%(nf)s * power(random(), 3))::int) %% %(nf)s),
                   CASE WHEN g %% 5 = 0 THEN %(day)s - interval '1 day' ELSE %(day)s END
                     + random() * LEAST(interval '1 day', %(now)s - %(day)s), %(now)s, 1, 'events'
            FROM generate_series(1, %(n)s) g, LATERAL (SELECT floor(%(na)s * power(random(), 1.6))::int + g * 0 AS a) x
            """,
            {
                "ws": workspace.pk,
                "acc": acc_min,
                "feat": feat_min,
                "nf": args.features,
                "na": args.accounts,
                "day": day_start,
                "now": now,
                "n": args.incremental,
            },
        )
        usage_days_mark_appended(workspace_id=workspace.pk, days=[today, today - timedelta(days=1)], now=now)
        insert = time.perf_counter() - t0
    timings: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((time.perf_counter() - start, " ".join(sql.split())[:150]))

    t0 = time.perf_counter()
    with connection.execute_wrapper(timed):
        report = rollup_pending(now=now)
    incremental = time.perf_counter() - t0
    if args.profile:
        for elapsed, sql in sorted(timings, reverse=True)[:15]:
            log(f"  {elapsed * 1000:7.1f} ms  {sql}")
    log(
        f"incremental: {args.incremental:,} new events (inserted in {insert:.1f} s), "
        f"rollup of {report.days_rolled_up} dirty days in {incremental:.2f} s"
    )
    results["incremental rollup"] = (
        f"{incremental:.2f} s ({args.incremental:,} new events over {report.days_rolled_up} dirty days; days with "
        "a watermark get only their new events added)"
    )

    # Endpoint -------------------------------------------------------------------------------------------
    _, raw_key = api_key_create(workspace=workspace, scopes=["read"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}", HTTP_HOST="localhost")
    url_base = "/api/v1/products/default/analytics/feature-usage"
    variants = [
        {},
        {"event": "feature-01"},
        {"account_id": "acct-00003"},
        {"from": (today - timedelta(days=59)).isoformat(), "to": (today - timedelta(days=30)).isoformat()},
    ]
    for params in variants:  # warm-up
        assert client.get(url_base, params).status_code == 200
    from django.core.cache import cache

    # cold: the cache is emptied before every request (the first request after a rollup);
    # warm: repeated requests between two rollups (the response cache keyed by rollup generation).
    for mode in ("cold", "warm"):
        timings: dict[str, list[float]] = {}
        for i in range(args.requests):
            params = variants[i % len(variants)]
            if mode == "cold":
                cache.clear()
            t0 = time.perf_counter()
            response = client.get(url_base, params)
            timings.setdefault(str(params or "default 30 days"), []).append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.content
        every = sorted(t for ts in timings.values() for t in ts)
        p50, p95 = statistics.median(every), percentile(every, 0.95)
        log(f"endpoint ({mode}) over {len(every)} requests: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        for name, ts in timings.items():
            log(f"  {name}: median {statistics.median(ts):.0f} ms, max {max(ts):.0f} ms")
        results[f"endpoint {mode}"] = f"p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(every)} requests"
    print()
    for key, value in results.items():
        print(f"{key}: {value}")


def _count(connection, table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


if __name__ == "__main__":
    main()
