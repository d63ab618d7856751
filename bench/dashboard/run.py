"""Dashboard benchmark: p50/p95 of each page with 10 concurrent users against gunicorn (2 workers) on the
bench/analytics dataset, plus a screenshot of the overview (bench/dashboard-overview.png).

    make bench-dashboard BENCH_ARGS="--events 1000000"
    .venv/bin/python bench/dashboard/run.py --events 10000000 --reuse

Builds its own database (uptake_bench_dashboard) with bench/analytics's dataset (bench/support.py; same shape:
2,000 accounts × 200 features × 90 days, skewed accounts, Zipf-like features), adds plan labels and owners on the
accounts and team subscriptions with a metered allowance (so the lists have rows), rebuilds the rollups, then
serves it with gunicorn and measures each page from 10 client threads sharing one logged-in session.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import urllib.request
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
    gunicorn_start,
    log,
    percentile,
    wait_until_serving,
)
from tests.browser_support import ARGS as CHROMIUM_ARGS  # noqa: E402
from tests.browser_support import CHROMIUM  # noqa: E402

DB_NAME = "uptake_bench_dashboard"
PORT = 8799


def _log(message: str) -> None:
    log(message, bench="bench-dashboard")


def _build(args, now: datetime):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import membership_set
    from analytics.services import rollups_rebuild
    from catalog.models import Feature
    from catalog.services import item_activate, item_create
    from entitlements.services import item_entitlement_set, subscription_create

    call_command("migrate", verbosity=0)
    start = datetime.combine((now - timedelta(days=args.days - 1)).date(), datetime.min.time(), tzinfo=UTC)
    User = get_user_model()
    owners = [User.objects.create_user(username=f"csm{i}", is_staff=True) for i in range(5)]
    plans = ["free", "team", "business", "enterprise"]
    workspace, accounts = analytics_dataset_build(
        accounts=args.accounts,
        features=args.features,
        events=args.events,
        days=args.days,
        start=start,
        account_fields=lambda i: {"plan": plans[i % 4], "owner": owners[i % 5]},
    )
    # Team plans grant the ten most used features and a metered allowance on feature-000 (the busiest).
    metered = Feature.objects.get(workspace=workspace, key="feature-000")
    metered.type, metered.metered, metered.reset_period = "quantity", True, "month"
    metered.save(update_fields=["type", "metered", "reset_period"])
    from catalog.models import FeatureLevel

    FeatureLevel.objects.create(workspace=workspace, feature=metered, position=0, value="500", name="Team")
    team = item_activate(item=item_create(workspace=workspace, key="team", name="Team"))
    for feature in Feature.objects.filter(workspace=workspace, key__lte="feature-009").exclude(pk=metered.pk):
        item_entitlement_set(item=team, feature=feature, value="true")
    item_entitlement_set(item=team, feature=metered, value="500")
    for account in accounts[1::4][:200]:
        subscription_create(
            workspace=workspace,
            external_id=f"sub-{account.external_id}",
            account=account,
            items=[team],
            current_term_start=start,
        )
    # Allowance counters for the metered feature, as ingestion would keep them.
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO entitlements_allowanceusagedaily (workspace_id, account_id, feature_id, day, quantity)
               SELECT workspace_id, account_id, feature_id, (occurred_at AT TIME ZONE 'UTC')::date, sum(quantity)
               FROM usage_usageevent WHERE workspace_id = %s AND feature_id = %s GROUP BY 1, 2, 3, 4""",
            [workspace.pk, metered.pk],
        )
    t0 = time.perf_counter()
    rollups_rebuild(workspace_id=workspace.pk)
    _log(f"rollup rebuild {time.perf_counter() - t0:.1f} s")
    with connection.cursor() as cursor:
        for table in ("featureaccountday", "featurequarterhour", "featureuserday", "accountfeaturelastseen"):
            cursor.execute(f"VACUUM ANALYZE analytics_{table}")
    user = User.objects.create_user(username="bench", password="bench-password", is_staff=True)
    membership_set(workspace=workspace, user=user, role="manager")
    return workspace


def _session_cookie() -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    return client.cookies["sessionid"].value


def _get(url: str, cookie: str) -> tuple[int, float]:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        status = response.status
    return status, (time.perf_counter() - t0) * 1000


def _screenshot(base: str, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{base}/admin/login/?next=/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "bench-password")
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/")
        page.wait_for_selector("#top-chart .main-svg")
        page.wait_for_selector("#heatmap .main-svg")
        page.screenshot(path=str(path), full_page=True)
        browser.close()


def _query_counts(pages: dict[str, str]) -> None:
    """One request per page through Django's test client: status, SQL queries, time (N+1 hunting)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username="bench"))
    for name, path in pages.items():
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            status = client.get(path).status_code
            ms = (time.perf_counter() - t0) * 1000
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]), default={"time": "0", "sql": ""})
        _log(
            f"{name}: {status}, {len(queries)} queries, {ms:.0f} ms; "
            f"slowest {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:100]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    analytics_dataset_arguments(parser)
    parser.add_argument("--users", type=int, default=10, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=5, help="requests per client per page")
    parser.add_argument("--reuse", action="store_true", help="keep an existing benchmark database")
    parser.add_argument("--screenshot", default=str(ROOT / "bench" / "dashboard-overview.png"))
    parser.add_argument(
        "--queries",
        action="store_true",
        help="only: one in-process request per page, with its SQL query count and time",
    )
    args = parser.parse_args()

    url, admin_url = database_urls(DB_NAME)
    created = database_prepare(admin_url, DB_NAME, fresh=not args.reuse)
    django_setup(url)
    from accounts.models import Workspace

    now = datetime.now(UTC).replace(microsecond=0)
    if created or not Workspace.objects.filter(slug="bench").exists():
        _build(args, now)
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # a reused database gets the migrations added since it was built
    today = now.date()
    pages = {
        "overview (30 days)": "/",
        "overview (90 days)": f"/?from={(today - timedelta(days=89)).isoformat()}",
        "overview (plan filter)": "/?plan=team",
        "overview (all products)": "/?product=*",
        "overview (features 13-24)": "/?features_page=2",
        "feature": "/features/feature-003/",
        "account": "/accounts/acct-00001/",
        "search": "/search/?q=acct-0001",
        "list near-limit": "/lists/near-limit/",
        "list free-unentitled": "/lists/free-unentitled/",
        "list dormant": "/lists/dormant/",
        "list usage-drop": "/lists/usage-drop/",
        "csv usage-drop": "/lists/usage-drop/export.csv",
    }
    if args.queries:
        _query_counts(pages)
        return
    cookie = _session_cookie()

    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    server = gunicorn_start(port=PORT, workers=2, env=env, worker_class="sync")
    base = f"http://127.0.0.1:{PORT}"
    try:
        wait_until_serving(PORT, path="/admin/login/")
        results: dict[str, list[float]] = {}
        for name, path in pages.items():
            status, _ = _get(base + path, cookie)  # a check that the page answers
            assert status == 200, (name, status)
            # Warm-up: one untimed round from every client at once, so each gunicorn worker has computed the
            # page's per-rollup-generation cache (locmem is per process; with Redis it is shared): the timed
            # rounds measure the steady state, the cold first requests are in --queries and RESULTS.md.
            warm = [threading.Thread(target=_get, args=(base + path, cookie)) for _ in range(args.users)]
            for t in warm:
                t.start()
            for t in warm:
                t.join()
            timings: list[float] = []
            lock = threading.Lock()

            def client(path=path, timings=timings, lock=lock):
                for _ in range(args.rounds):
                    status, ms = _get(base + path, cookie)
                    assert status == 200
                    with lock:
                        timings.append(ms)

            threads = [threading.Thread(target=client) for _ in range(args.users)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            timings.sort()
            results[name] = timings
            _log(
                f"{name}: p50 {statistics.median(timings):.0f} ms, p95 {percentile(timings, 0.95):.0f} ms"
                f" over {len(timings)} requests"
            )
        _screenshot(base, Path(args.screenshot))
        _log(f"screenshot: {args.screenshot}")
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM usage_usageevent")
            n = cursor.fetchone()[0]
        print(f"\n{n:,} events, {args.users} concurrent users, gunicorn 2 workers")
        print("| page | p50 ms | p95 ms |\n|---|---|---|")
        for name, timings in results.items():
            print(f"| {name} | {statistics.median(timings):.0f} | {percentile(timings, 0.95):.0f} |")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
