"""Search benchmark: p50/p95 of GET /search/ (the full page and the header's htmx suggestions) over 100,000
accounts, through Django's whole stack (middleware, session, view, selectors, template) in one process.

    .venv/bin/python bench/search.py [--accounts 100000] [--queries 300] [--fresh]

Builds its own database (uptake_bench_search, kept between runs; --fresh rebuilds it): one workspace with
100,000 accounts whose names ("Nordwind Logistics 4711"), domains and external ids ("acc-004711") come from a
seeded generator, and 200 features. The query mix: exact ids, id prefixes, two-letter prefixes, name words,
name substrings, domains, misses. Target: p95 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.support import database_prepare, database_urls, django_setup  # noqa: E402

DB_NAME = "uptake_bench_search"
WORDS = (
    "Nordwind Alpen Blue Cedar Delta Echo Falcon Granite Harbor Iris Juniper Kestrel Lumen Meridian Nimbus Orbit "
    "Pioneer Quartz River Summit Tundra Umbra Vertex Willow Xenon Yarrow Zephyr Atlas Beacon Comet Drift Ember"
).split()
KINDS = "Logistics Software Analytics Health Foods Energy Studios Capital Labs Systems Media Partners".split()
TLDS = ("com", "de", "io", "net", "org")


def _log(message: str) -> None:
    print(f"[bench-search] {message}", flush=True)


def _account_rows(n: int, rng: random.Random):
    for i in range(n):
        first, second, kind = rng.choice(WORDS), rng.choice(WORDS), rng.choice(KINDS)
        name = f"{first} {kind} {i}" if rng.random() < 0.5 else f"{first}{second.lower()} {kind}"
        domain = f"{first.lower()}-{second.lower()}{i % 997}.{rng.choice(TLDS)}"
        yield f"acc-{i:06d}", name, domain


def _build(n_accounts: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import workspace_create
    from catalog.models import Feature
    from catalog.services import product_create

    call_command("migrate", verbosity=0)
    workspace = workspace_create(slug="bench", name="Bench")
    product = product_create(workspace=workspace, key="default", name="Default")
    Feature.objects.bulk_create(
        Feature(workspace=workspace, product=product, key=f"feature-{i:03d}", name=f"Feature {i:03d}", status="active")
        for i in range(200)
    )
    buffer = io.StringIO()
    for external_id, name, domain in _account_rows(n_accounts, random.Random(7)):
        buffer.write(f"{workspace.pk}\t{external_id}\t{name}\t{domain}\tteam\tactive\t{{}}\tnow\tnow\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY accounts_account (workspace_id, external_id, name, domain, plan, status, attributes, created_at, "
            "updated_at) FROM STDIN"
        ) as copy:
            copy.write(buffer.read())
        cursor.execute("ANALYZE accounts_account")
    get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password")


def _queries(count: int, rng: random.Random, n_accounts: int) -> list[tuple[str, str]]:
    kinds = [
        ("exact id", lambda: f"acc-{rng.randrange(n_accounts):06d}"),
        ("id prefix", lambda: f"acc-0{rng.randrange(10)}"),
        ("2-letter prefix", lambda: rng.choice(WORDS)[:2].lower()),
        ("name word", lambda: rng.choice(WORDS)),
        ("name substring", lambda: rng.choice(WORDS)[1:5].lower()),
        ("domain", lambda: f"{rng.choice(WORDS).lower()}-{rng.choice(WORDS).lower()}"),
        ("name + number", lambda: f"{rng.choice(KINDS)} {rng.randrange(n_accounts)}"),
        ("miss", lambda: f"zz{rng.randrange(10**6)}q"),
    ]
    return [(kind, make()) for kind, make in (kinds[i % len(kinds)] for i in range(count))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=320)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    db_url, admin_url = database_urls(DB_NAME)
    created = database_prepare(admin_url, DB_NAME, fresh=args.fresh)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    django_setup(db_url)
    from django.contrib.auth import get_user_model
    from django.test import Client

    if created:
        started = time.perf_counter()
        _build(args.accounts)
        _log(f"built {args.accounts:,} accounts in {time.perf_counter() - started:.1f} s")
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    queries = _queries(args.queries, random.Random(11), args.accounts)
    for _, q in queries[:16]:  # warm the connection, the session and the template cache
        client.get("/search/", {"q": q})
    results: dict[str, list[float]] = {"page": [], "suggestions": []}
    per_kind: dict[str, list[float]] = {}
    for kind, q in queries:
        for mode, params, headers in (
            ("page", {"q": q}, {}),
            ("suggestions", {"q": q, "suggest": "1"}, {"HTTP_HX_REQUEST": "true"}),
        ):
            started = time.perf_counter()
            response = client.get("/search/", params, **headers)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (q, response.status_code)
            results[mode].append(elapsed)
            if mode == "page":
                per_kind.setdefault(kind, []).append(elapsed)
    load = os.getloadavg()
    _log(f"{args.accounts:,} accounts, {len(queries)} queries per mode, load average {load[0]:.2f} {load[1]:.2f}")
    for mode, timings in results.items():
        q = statistics.quantiles(timings, n=100)
        _log(f"{mode:12s} p50 {statistics.median(timings):6.1f} ms  p95 {q[94]:6.1f} ms  max {max(timings):6.1f} ms")
    for kind, timings in per_kind.items():
        _log(f"  page, {kind:15s} p50 {statistics.median(timings):6.1f} ms  max {max(timings):6.1f} ms")


if __name__ == "__main__":
    main()
