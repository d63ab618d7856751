"""Profile the whole-day recompute of the incremental rollup on the analytics bench database
(uptake_bench_analytics, see run.py): mark the last N UTC days of the bench workspace for a whole recompute
(analytics.services.usage_days_mark_restated drops their watermarks), run rollup_pending and print the time of every
SQL statement (slowest first). The delta path, which days with a watermark take, is profiled by run.py
--profile. --explain runs each write statement as EXPLAIN (ANALYZE, BUFFERS) instead (same effect) and prints
the plans. Everything happens in one transaction that is rolled back unless --commit.

    .venv/bin/python bench/analytics/profile_rollup.py --days 2 [--explain]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import DB_NAME  # noqa: E402

from bench.support import database_urls, django_setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=2, help="latest UTC days to mark dirty")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of writes")
    parser.add_argument("--commit", action="store_true", help="keep the result (default: roll back)")
    args = parser.parse_args()
    url, _ = database_urls(DB_NAME)
    django_setup(url)
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.models import Workspace
    from analytics.services import rollup_pending, usage_days_mark_restated

    call_command("migrate", verbosity=0)
    workspace = Workspace.objects.get(slug="bench")
    timings: list[tuple[float, str]] = []

    def wrapper(execute, sql, params, many, context):
        head = sql.lstrip().split(None, 3)
        explain = args.explain and head and head[0].upper() in {"INSERT", "DELETE", "UPDATE", "CREATE"}
        t0 = time.perf_counter()
        if explain:
            result = execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params, many, context)
            plan = "\n".join(row[0] for row in context["cursor"].fetchall())
        else:
            result = execute(sql, params, many, context)
        elapsed = time.perf_counter() - t0
        timings.append((elapsed, " ".join(sql.split())[:160]))
        if explain:
            print(f"--- {elapsed * 1000:.0f} ms: {' '.join(sql.split())[:200]}\n{plan}\n")
        return result

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(day) FROM analytics_featureaccountday WHERE workspace_id = %s", [workspace.pk])
        last = cursor.fetchone()[0]
    days = [last - timedelta(days=i) for i in range(args.days)]
    try:
        with transaction.atomic():
            usage_days_mark_restated(workspace_id=workspace.pk, days=days, now=datetime.now(UTC))
            t0 = time.perf_counter()
            with connection.execute_wrapper(wrapper):
                report = rollup_pending(now=datetime.now(UTC) + timedelta(seconds=1))
            total = time.perf_counter() - t0
            if not args.commit:
                raise _Rollback
    except _Rollback:
        pass
    print(f"rollup_pending: {report.days_rolled_up} day(s) ({', '.join(map(str, sorted(days)))}) in {total:.2f} s")
    for elapsed, sql in sorted(timings, reverse=True)[:25]:
        print(f"{elapsed * 1000:8.1f} ms  {sql}")


class _Rollback(Exception):
    pass


if __name__ == "__main__":
    main()
