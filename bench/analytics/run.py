"""Analytics benchmark: load N raw events (default 10M) for 2,000 accounts × 200 features × 90 days into a
dedicated database, then time a full rollup rebuild, an incremental rollup of 100k new events, and the
feature-usage endpoint (p50/p95).

    make bench-analytics BENCH_ARGS="--events 1000000"
    .venv/bin/python bench/analytics/run.py --events 10000000

The database is uptake_bench_analytics on the server of DATABASE_URL (or the embedded one); it is dropped
and recreated unless --reuse is given (then loading is skipped when it already holds the events).
Events are generated inside PostgreSQL (INSERT … SELECT generate_series, in time order as an append-only log
would hold them; foreign-key triggers off while loading): a skewed account mix (a few heavy accounts), each
account with its own Zipf-like feature preferences, 80 % of events with an end user, 0.5 % negative corrections.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DB_NAME = "uptake_bench_analytics"


def _bench_url() -> tuple[str, str]:
    base = (
        os.environ.get("DATABASE_URL")
        or f"postgres://postgres@127.0.0.1:{os.environ.get('UPTAKE_PG_PORT', 54329)}/uptake"
    )
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{DB_NAME}")), urlunsplit(parts._replace(path="/postgres"))


def _prepare_database(admin_url: str, *, fresh: bool) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and fresh:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
            exists = None
        if not exists:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    return not exists


def _log(message: str) -> None:
    print(f"[bench-analytics] {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--incremental", type=int, default=100_000, help="new events for the incremental run")
    parser.add_argument("--requests", type=int, default=60, help="endpoint requests for p50/p95")
    parser.add_argument("--reuse", action="store_true", help="keep an existing benchmark database")
    parser.add_argument(
        "--reset-incremental", action="store_true", help="first remove earlier runs' incremental events"
    )
    parser.add_argument("--profile", action="store_true", help="print the incremental rollup's slowest SQL")
    parser.add_argument("--skip-rebuild", action="store_true", help="with --reuse: time only incremental + endpoint")
    args = parser.parse_args()

    url, admin_url = _bench_url()
    _prepare_database(admin_url, fresh=not args.reuse)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts.models import Account, EndUser, Workspace
    from accounts.services import api_key_create, workspace_create
    from analytics.services import rollup_pending, rollups_rebuild
    from catalog.models import Feature
    from catalog.services import product_create
    from usage.services import usage_days_mark_appended

    now = datetime.now(UTC).replace(microsecond=0)
    start = datetime.combine((now - timedelta(days=args.days - 1)).date(), datetime.min.time(), tzinfo=UTC)
    results: dict[str, str] = {}
    call_command("migrate", verbosity=0)  # a reused database gets the newer migrations too
    workspace = Workspace.objects.filter(slug="bench").first()
    if workspace is None:
        t0 = time.perf_counter()
        workspace = workspace_create(slug="bench", name="Bench")
        workspace.max_features = max(400, args.features)
        workspace.save(update_fields=["max_features"])
        product = product_create(workspace=workspace, key="default", name="Default")
        Feature.objects.bulk_create(
            Feature(
                workspace=workspace,
                product=product,
                key=f"feature-{i:03d}",
                name=f"Feature {i:03d}",
                status="active",
            )
            for i in range(args.features)
        )
        Account.objects.bulk_create(
            Account(
                workspace=workspace,
                external_id=f"acct-{i:05d}",
                name=f"Account {i}",
                domain=f"domain{i % (args.accounts * 9 // 10)}.example",
                first_seen_at=start,
            )
            for i in range(args.accounts)
        )
        accounts = list(Account.objects.filter(workspace=workspace).order_by("id"))
        EndUser.objects.bulk_create(
            EndUser(workspace=workspace, account=a, external_id=f"user-{k}") for a in accounts for k in range(5)
        )
        _log(f"catalog and {args.accounts} accounts in {time.perf_counter() - t0:.1f} s")
        _load_events(connection, workspace_id=workspace.pk, n=args.events, start=start, days=args.days, args=args)
    n_events = _count(connection, "usage_usageevent")
    _log(f"{n_events:,} raw events in the benchmark database")

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
        _log(f"full rebuild: {rebuild:.1f} s; rollup rows {rows}")
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
        _log(f"reset: {removed:,} events of earlier incremental runs removed in {time.perf_counter() - t0:.1f} s")
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
            _log(f"  {elapsed * 1000:7.1f} ms  {sql}")
    _log(
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
        p50, p95 = statistics.median(every), every[int(0.95 * (len(every) - 1))]
        _log(f"endpoint ({mode}) over {len(every)} requests: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        for name, ts in timings.items():
            _log(f"  {name}: median {statistics.median(ts):.0f} ms, max {max(ts):.0f} ms")
        results[f"endpoint {mode}"] = f"p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(every)} requests"
    print()
    for key, value in results.items():
        print(f"{key}: {value}")


def _count(connection, table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def _load_events(connection, *, workspace_id: int, n: int, start: datetime, days: int, args) -> None:
    """Generate events in time order inside PostgreSQL, in chunks, with FK triggers off for the load."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id), max(id), count(*) FROM accounts_account WHERE workspace_id = %s", [workspace_id]
        )
        acc_min, acc_max, acc_n = cursor.fetchone()
        cursor.execute("SELECT min(id), max(id), count(*) FROM catalog_feature WHERE workspace_id = %s", [workspace_id])
        feat_min, feat_max, feat_n = cursor.fetchone()
        cursor.execute(
            "SELECT min(id), max(id), count(*) FROM accounts_enduser WHERE workspace_id = %s", [workspace_id]
        )
        user_min, user_max, user_n = cursor.fetchone()
        assert (
            acc_max - acc_min + 1 == acc_n and feat_max - feat_min + 1 == feat_n and user_max - user_min + 1 == user_n
        )
        cursor.execute("SET session_replication_role = replica")
        chunk = 1_000_000
        t0 = time.perf_counter()
        span = days * 86400.0
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            cursor.execute(
                """
                INSERT INTO usage_usageevent (workspace_id, account_id, end_user_id, feature_id, occurred_at,
                                              received_at, quantity, source)
                SELECT %(ws)s, %(acc)s + a,
                       CASE WHEN random() < 0.8 THEN %(usr)s + a * 5 + floor(random() * 5)::int END,
                       %(feat)s + ((a * 7 + floor(%(nf)s * power(random(), 3))::int) %% %(nf)s),
                       ts, ts,
                       CASE WHEN random() < 0.005 THEN -1 WHEN random() < 0.1 THEN 1 + floor(random() * 9)::int
                            ELSE 1 END,
                       'events'
                FROM generate_series(%(lo)s, %(hi)s - 1) g,
                     LATERAL (SELECT floor(%(na)s * power(random(), 1.6))::int + g * 0 AS a,
                                     %(start)s + make_interval(secs => g * %(step)s + random()) AS ts) x
                """,
                {
                    "ws": workspace_id,
                    "acc": acc_min,
                    "usr": user_min,
                    "feat": feat_min,
                    "nf": feat_n,
                    "na": acc_n,
                    "lo": lo,
                    "hi": hi,
                    "start": start,
                    "step": span / n,
                },
            )
            _log(f"loaded {hi:,}/{n:,} events ({time.perf_counter() - t0:.0f} s)")
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("VACUUM ANALYZE usage_usageevent")
    _log(f"load: {n:,} events in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
