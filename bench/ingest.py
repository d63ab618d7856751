"""End-to-end ingestion benchmark: gunicorn (2 workers) + PostgreSQL, HTTP clients in a process pool.

    .venv/bin/python bench/ingest.py [--seconds 15] [--worker-class gthread|sync] [--threads 16]
                                     [--batch-clients 2 --batch-connections 3]
                                     [--single-clients 2 --single-connections 16] [--segment]
    make bench-ingest

`--segment` measures the Segment-compatible `/api/segment/v1/batch` (500 track messages per request, Basic auth)
right after `/api/v1/events` batches of the same 500 events, in the same server, and prints the ratio of the two
(target ≥ 0.8); the single-event mode and the COPY ceiling are skipped.

gunicorn runs as README's production line says: 2 workers, gthread × 16 (concurrent single events of a
workspace are group-committed, usage/coalesce.py, so a worker needs threads to group them). Batches come from
6 connections: the server is CPU-bound on 2 cores at ~46 batches/s, so latency is offered concurrency ÷
throughput; 6 keeps it saturated with p95 under 250 ms, 8 adds only queueing (bench/RESULTS.md).

Creates (drops and recreates) the database `uptake_bench_ingest` on the PostgreSQL of DATABASE_URL (default
127.0.0.1:5432), migrates it, creates a workspace and an ingest key, starts gunicorn with rate limiting off,
then for a fixed time per mode sends batches of 500 events and single events over keep-alive connections, and
prints events/s, requests/s and p50/p95 latency per mode. In the same run it COPYs the same number of rows as
the batch mode stored straight into usage_usageevent: the ceiling, and the ratio of HTTP ingestion to it.
Everything stops by itself; gunicorn is terminated at the end.
"""

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.support import (  # noqa: E402  (bench/ is run as scripts)
    LOCAL_SERVER,
    ROOT,
    api_key_prepare,
    backend_pids,
    children,
    cpu_seconds,
    database_prepare,
    database_urls,
    gunicorn_start,
    percentile,
    server_env,
    wait_until_serving,
)

BENCH_DB = os.environ.get("UPTAKE_BENCH_DB", "uptake_bench_ingest")  # dropped and recreated
ACCOUNTS = 1000
FEATURES = 50
USERS_PER_ACCOUNT = 5


def make_event(n: int, rng_seed: int) -> dict:
    k = (n * 7919 + rng_seed) & 0x7FFFFFFF
    account = k % ACCOUNTS
    return {
        "account_id": f"acct-{account}",
        "user_id": f"user-{account}-{k % USERS_PER_ACCOUNT}",
        "feature_id": f"feature.{k % FEATURES}",
        "quantity": 1 + k % 3,
        "event_id": f"@@-{n}",
        "properties": {"plan": "pro", "n": n},
    }


def segment_message(event: dict) -> dict:
    """The Segment track message that carries the same usage event (what segment-analytics-python sends)."""
    return {
        "type": "track",
        "messageId": event["event_id"],
        "userId": event["user_id"],
        "event": event["feature_id"],
        "context": {"groupId": event["account_id"], "library": {"name": "analytics-python", "version": "2.4.0"}},
        "properties": {"quantity": event["quantity"], **event["properties"]},
        "integrations": {},
    }


def body_template(*, batch_size: int, seed: int, segment: bool = False) -> str:
    """A request body whose event ids read `@@-<n>`: each request replaces `@@` with a token of its own, so
    the client spends one str.replace per request instead of building and encoding JSON (the load generator
    shares the server's cores)."""
    events = [make_event(n, seed) for n in range(batch_size)]
    if segment:
        return json.dumps({"batch": [segment_message(e) for e in events]}, separators=(",", ":"))
    return json.dumps(events[0] if batch_size == 1 else {"events": events}, separators=(",", ":"))


def client_worker(args: tuple) -> tuple[list[float], float]:
    """Send requests over `connections` keep-alive connections (one thread each) until the deadline; return
    the latency (s) of each request and the CPU seconds this client process used."""
    port, key, batch_size, deadline, seed, connections, segment = args
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode() if segment else f"Bearer {key}",
        "Content-Type": "application/json",
        "Connection": "keep-alive",
    }
    path = "/api/segment/v1/batch" if segment else "/api/v1/events"
    expected = b'{"success":true}' if segment else f'"accepted":{batch_size},'.encode()
    all_latencies: list[list[float]] = []
    errors: list[str] = []

    def loop(thread_seed: int) -> None:
        template = body_template(batch_size=batch_size, seed=thread_seed, segment=segment)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        latencies: list[float] = []
        all_latencies.append(latencies)
        n = 0
        while time.time() < deadline and not errors:
            body = template.replace("@@", f"{thread_seed}-{n}").encode()
            n += 1
            start = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - start
            if response.status != 200 or expected not in payload.replace(b" ", b""):
                errors.append(f"HTTP {response.status}: {payload[:300]!r}")
                break
            latencies.append(elapsed)
        conn.close()

    cpu_start = time.process_time()
    threads = [threading.Thread(target=loop, args=(seed * 100 + i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return [x for latencies in all_latencies for x in latencies], time.process_time() - cpu_start


def run_mode(
    *,
    port: int,
    key: str,
    batch_size: int,
    clients: int,
    connections: int,
    seconds: float,
    server_pid: int,
    db_url: str,
    segment: bool = False,
) -> dict:
    workers = children(server_pid)
    backends = {pid: cpu_seconds([pid]) for pid in backend_pids(db_url)}
    server_cpu = cpu_seconds(workers)
    deadline = time.time() + seconds
    started = time.perf_counter()
    with mp.Pool(clients) as pool:
        results = pool.map(
            client_worker,
            [
                (port, key, batch_size, deadline, 1000 * batch_size + c + (500 if segment else 0), connections, segment)
                for c in range(clients)
            ],
        )
    wall = time.perf_counter() - started
    server_cpu = cpu_seconds(workers) - server_cpu
    # Backends that connected during the run count whole; those that closed are missed (CONN_MAX_AGE keeps
    # gunicorn's connections open, so there are none).
    db_cpu = sum(cpu_seconds([pid]) - backends.get(pid, 0.0) for pid in backend_pids(db_url))
    latencies = sorted(x for r, _ in results for x in r)
    client_cpu = sum(cpu for _, cpu in results)
    requests = len(latencies)
    return {
        "endpoint": "/api/segment/v1/batch" if segment else "/api/v1/events",
        "batch_size": batch_size,
        "clients": f"{clients} processes x {connections} connections",
        "requests": requests,
        "events": requests * batch_size,
        "seconds": round(wall, 2),
        "requests_per_s": round(requests / wall, 1),
        "events_per_s": round(requests * batch_size / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        # CPU seconds per wall second (2.0 = both cores busy): the load generator, the gunicorn workers and
        # the PostgreSQL backends serving the benchmark database (not the WAL writer and other background
        # processes, nor other users' sessions on this shared server).
        "cpu_client": round(client_cpu / wall, 2),
        "cpu_gunicorn": round(server_cpu / wall, 2),
        "cpu_postgres": round(db_cpu / wall, 2),
        "load_average": os.getloadavg()[0],
    }


def copy_ceiling(*, db_url: str, rows: int) -> dict:
    """COPY `rows` events (resolved ids, unique event ids) straight into usage_usageevent in one "
    "transaction."""
    with psycopg.connect(db_url) as conn:
        (ws,) = conn.execute("SELECT id FROM accounts_workspace WHERE slug = 'bench'").fetchone()
        accounts = [r[0] for r in conn.execute("SELECT id FROM accounts_account WHERE workspace_id = %s", [ws])]
        features = [r[0] for r in conn.execute("SELECT id FROM catalog_feature WHERE workspace_id = %s", [ws])]
        now = datetime.now(UTC)
        start = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(
                "COPY usage_usageevent (workspace_id, account_id, feature_id, occurred_at, received_at, "
                "quantity, "
                "event_id, properties, source) FROM STDIN"
            ) as copy:
                for n in range(rows):
                    copy.write_row(
                        (
                            ws,
                            accounts[n % len(accounts)],
                            features[n % len(features)],
                            now,
                            now,
                            1 + n % 3,
                            f"copy-{n}",
                            '{"plan":"pro"}',
                            "events",
                        )
                    )
        conn.commit()
        elapsed = time.perf_counter() - start
    return {"rows": rows, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed, 1)}


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker (gthread)")
    parser.add_argument("--batch-clients", type=int, default=2, help="client processes, batch mode")
    parser.add_argument("--batch-connections", type=int, default=3, help="connections per process")
    parser.add_argument("--single-clients", type=int, default=2, help="client processes, single mode")
    parser.add_argument("--single-connections", type=int, default=16, help="connections per process")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--segment", action="store_true", help="compare /api/segment/v1/batch with /api/v1/events")
    parser.add_argument("--database", default=BENCH_DB, help="the database to drop and recreate")
    parser.add_argument(
        "--redis",
        default="none",
        choices=["none", "up", "down"],
        help="none: no REDIS_URL (default); up: REDIS_URL from the environment; down: a closed port on 127.0.0.1 "
        "(cache, limiter and broker unreachable: core/redis_breaker.py)",
    )
    parser.add_argument(
        "--pipeline", action="store_true", help="an enabled event pipeline: each request queues alert evaluation"
    )
    args = parser.parse_args()

    db_url, admin = database_urls(args.database, default_server=LOCAL_SERVER)
    database_prepare(admin, args.database, fresh=True)
    env = server_env(db_url)
    if args.redis == "up":
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    elif args.redis == "down":
        env["REDIS_URL"] = f"redis://127.0.0.1:{_closed_port()}/0"
    manage, key = api_key_prepare(env, scopes="ingest")
    if args.pipeline:
        # An e-mail destination: nothing to reach; with no worker running, queued evaluations just wait.
        create = (
            "from accounts.models import Workspace; from alerts.services import pipeline_create; "
            "pipeline_create(workspace=Workspace.objects.get(slug='bench'), name='Bench', "
            "trigger={'type': 'event'}, destinations=[{'type': 'email', 'to': 'cs@example.com'}])"
        )
        subprocess.run([*manage, "shell", "-c", create], env=env, check=True, cwd=ROOT)

    server = gunicorn_start(
        port=args.port,
        workers=2,
        env=env,
        worker_class=args.worker_class,
        threads=args.threads if args.worker_class == "gthread" else None,
    )
    try:
        wait_until_serving(args.port, method="POST", path="/api/v1/events")  # 401 once a worker answers
        # Warm-up: register every account, user and feature once, so the timed runs measure steady state.
        warm = [
            {"account_id": f"acct-{a}", "user_id": f"user-{a}-{u}", "feature_id": f"feature.{a % FEATURES}"}
            for a in range(ACCOUNTS)
            for u in range(USERS_PER_ACCOUNT)
        ]
        c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        for i in range(0, len(warm), 500):
            c.request(
                "POST",
                "/api/v1/events",
                body=json.dumps({"events": warm[i : i + 500]}),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            c.getresponse().read()
        c.close()
        # Planner statistics for the rows just registered, as autovacuum would gather within a minute or so;
        # without them the lookups scan every account of the workspace instead of using the unique index.
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ANALYZE")

        print(
            f"gunicorn: 2 workers, {args.worker_class}"
            + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
        )
        print(f"redis: {args.redis}, event pipeline: {'on' if args.pipeline else 'off'}")
        print(f"load average before: {os.getloadavg()}")
        measure = partial(run_mode, port=args.port, key=key, seconds=args.seconds, server_pid=server.pid, db_url=db_url)
        batches = partial(measure, batch_size=500, clients=args.batch_clients, connections=args.batch_connections)
        batch = batches()
        print("batch  ", json.dumps(batch))
        if args.segment:
            segment = batches(segment=True)
            print("segment", json.dumps(segment))
            ratio = segment["events_per_s"] / batch["events_per_s"]
            print(f"ratio  /api/segment/v1/batch / /api/v1/events = {ratio:.2f} (target ≥ 0.80: {ratio >= 0.8})")
            return
        single = measure(batch_size=1, clients=args.single_clients, connections=args.single_connections)
        print("single ", json.dumps(single))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
    ceiling = copy_ceiling(db_url=db_url, rows=batch["events"])
    print("copy   ", json.dumps(ceiling))
    print(f"ratio  HTTP batches / raw COPY = {batch['events_per_s'] / ceiling['rows_per_s']:.2f}")
    print(
        f"targets: batches ≥ 20000 ev/s: {batch['events_per_s'] >= 20000}; single ≥ 1000 req/s: "
        f"{single['requests_per_s'] >= 1000}; p95 ≤ 250 ms: batch {batch['p95_ms'] <= 250}, single "
        f"{single['p95_ms'] <= 250}"
    )


if __name__ == "__main__":
    main()
