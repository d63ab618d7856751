"""Benchmark: `GET /api/v1/entitlements/check` through HTTP against gunicorn (2 workers), for an account with
~20 subscriptions' worth of items and overrides. Reports checks/s and latency percentiles.

    make bench-entitlements            # or: .venv/bin/python bench/entitlements/run.py [--seconds 20]

Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/uptake_bench_entl; the database is created if
missing and migrated). Targets: p95 ≤ 10 ms and ≥ 1,500 checks/s on 2 cores.
"""

import argparse
import http.client
import os
import random
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/uptake_bench_entl")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("UPTAKE_RATE_LIMIT_ENABLED", "false")
os.environ.setdefault("DEBUG", "false")

from bench.support import (  # noqa: E402  (bench/ is run as scripts)
    backend_pids,
    children,
    cpu_seconds,
    database_prepare,
    gunicorn_start,
    wait_until_serving,
)


def ensure_database() -> None:
    url = urlsplit(os.environ["DATABASE_URL"])
    database_prepare(urlunsplit(url._replace(path="/postgres")), url.path.lstrip("/"), fresh=False)


def seed() -> tuple[str, list[str]]:
    """A workspace with 40 features, 24 items and one account with 20 subscriptions and overrides."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from accounts.models import Account
    from accounts.services import api_key_create, workspace_create
    from catalog.services import (
        feature_activate,
        feature_create,
        item_activate,
        item_create,
        product_create,
    )
    from entitlements.services import (
        UsageRow,
        allowance_usage_apply,
        item_entitlement_set,
        subscription_create,
        subscription_entitlement_set,
    )

    # A fresh workspace per run (catalog rows are protected from cascading deletes).
    ws = workspace_create(slug=f"bench-entl-{int(time.time())}", name="Bench entitlements")
    product = product_create(workspace=ws, key="app", name="App")
    rng = random.Random(7)
    features = []
    for i in range(40):
        kind = ["switch", "quantity", "custom", "range"][i % 4]
        levels = {
            "switch": [],
            "quantity": [{"value": str(v), "name": str(v)} for v in (10, 100, 1000)]
            + [{"value": "unlimited", "name": "Unlimited", "is_unlimited": True}],
            "custom": [{"value": v, "name": v} for v in ("basic", "pro", "max")],
            "range": [{"value": "1", "name": "min"}, {"value": "500", "name": "max"}],
        }[kind]
        metered = kind in ("quantity", "range") and i % 8 in (1, 3)
        feature = feature_create(
            workspace=ws,
            key=f"f{i:02d}",
            name=f"Feature {i}",
            product=product,
            type=kind,
            levels=levels,
            metered=metered,
            reset_period="month" if metered else "none",
            reset_anchor="term" if i % 16 in (1, 3) else "calendar",
        )
        features.append(feature_activate(feature=feature))
    values = {
        "switch": ["true", "false"],
        "quantity": ["10", "100", "1000", "unlimited"],
        "custom": ["basic", "pro", "max"],
        "range": ["5", "50", "250"],
    }
    items = []
    for i in range(24):
        item = item_activate(
            item=item_create(workspace=ws, key=f"item{i:02d}", name=f"Item {i}", type="plan" if i < 4 else "addon")
        )
        for feature in rng.sample(features, 15):
            item_entitlement_set(item=item, feature=feature, value=rng.choice(values[feature.type]))
        items.append(item)
    account = Account.objects.create(workspace=ws, external_id="big-co", name="Big Co")
    now = timezone.now()
    for s in range(20):
        sub = subscription_create(
            workspace=ws,
            external_id=f"sub{s:02d}",
            account=account,
            status="in_trial" if s % 5 == 0 else "active",
            items=rng.sample(items, 3),
            current_term_start=now - timezone.timedelta(days=rng.randint(1, 300), minutes=rng.randint(0, 1440)),
        )
        for feature in rng.sample(features, 2):
            subscription_entitlement_set(subscription=sub, feature=feature, value=rng.choice(values[feature.type]))
    rows = [
        UsageRow(account.pk, f.pk, now - timezone.timedelta(hours=h), 1)
        for f in features
        if f.metered
        for h in range(0, 24 * 40, 3)
    ]
    allowance_usage_apply(workspace_id=ws.pk, rows=rows)
    _, raw = api_key_create(workspace=ws, scopes=["read"])
    # Planner statistics for the rows just created, as autovacuum would gather shortly.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return raw, [f.key for f in features]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (2 workers)")
    args = parser.parse_args()
    ensure_database()
    key, feature_keys = seed()
    server = gunicorn_start(port=args.port, workers=2, env={**os.environ, "CONN_MAX_AGE": "600"}, threads=args.threads)
    try:
        answered = wait_until_serving(
            args.port,
            path="/api/v1/entitlements/check?account_id=big-co&feature_id=f00",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answered == 200, answered
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        stop_at = [0.0]

        def client(seed_: int) -> None:
            rng = random.Random(seed_)
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)
            mine: list[float] = []
            while time.perf_counter() < stop_at[0]:
                path = f"/api/v1/entitlements/check?account_id=big-co&feature_id={rng.choice(feature_keys)}"
                started = time.perf_counter()
                try:
                    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (http.client.HTTPException, OSError):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)
                mine.append(time.perf_counter() - started)
                if not ok:
                    errors[0] += 1
            with lock:
                latencies.extend(mine)

        # warm-up, then the measured run
        for _phase, seconds in (("warmup", 2.0), ("run", args.seconds)):
            latencies.clear()
            errors[0] = 0
            stop_at[0] = time.perf_counter() + seconds
            workers, postgres = children(server.pid), backend_pids(os.environ["DATABASE_URL"])
            cpu = (time.process_time(), cpu_seconds(workers), cpu_seconds(postgres))
            load = os.getloadavg()[0]
            started = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            cpu = (
                (time.process_time() - cpu[0]) / elapsed,
                (cpu_seconds(workers) - cpu[1]) / elapsed,
                (cpu_seconds(postgres) - cpu[2]) / elapsed,
            )
        latencies.sort()
        q = statistics.quantiles(latencies, n=100)
        print(f"checks: {len(latencies)} in {elapsed:.1f}s, errors: {errors[0]}, clients: {args.clients}")
        print(f"throughput: {len(latencies) / elapsed:.0f} checks/s")
        print(
            f"latency ms: p50 {q[49] * 1000:.2f}  p95 {q[94] * 1000:.2f}  p99 {q[98] * 1000:.2f}  "
            f"max {latencies[-1] * 1000:.2f}"
        )
        print(
            f"CPU (cores busy): client {cpu[0]:.2f}, gunicorn {cpu[1]:.2f}, postgres {cpu[2]:.2f}; "
            f"load average at start {load:.2f}; gunicorn 2 workers x {args.threads} threads"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
