"""Python client benchmark: events per second from one process (track → committed), the cost of one track()
in the caller's thread, and of a cached check().

    .venv/bin/python bench/sdk.py [--events 200000] [--checks 100000] [--senders 4] [--port 8766]
    make bench-sdk

Creates (drops and recreates) the database `uptake_bench_sdk` on the PostgreSQL of DATABASE_URL (default
127.0.0.1:5432), migrates it, creates a workspace and a key, starts gunicorn as README's production line
says (workers = cores, gthread × 16, rate limiting off), registers the accounts, users and features with one
warm-up pass, then:

- tracks `--events` events from one thread as fast as it can call track() (the queue is large enough that
  none is dropped), times each call, flushes, and counts the rows committed in PostgreSQL: events/s is
  events ÷ (first track → flush returned, every event committed);
- times `--checks` check() calls answered from the cache.

Prints the figures with the load average before and after (the machine may be shared), and the CPU time
per event spent by this process, the gunicorn workers and the PostgreSQL backends. gunicorn is stopped at
the end.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path

import psycopg
from uptake_client import Uptake

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.support import (  # noqa: E402  (bench/ is run as scripts)
    LOCAL_SERVER,
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

BENCH_DB = "uptake_bench_sdk"
ACCOUNTS = 1000
FEATURES = 50


def start_gunicorn(env: dict, port: int) -> subprocess.Popen:
    workers = os.cpu_count() or 2
    server = gunicorn_start(port=port, workers=workers, env=env, threads=16)
    if wait_until_serving(port, method="POST", path="/api/v1/events", tries=150) is None:
        server.terminate()
        raise SystemExit("gunicorn did not start")
    print(f"gunicorn: {workers} workers, gthread x 16 threads")
    return server


def committed(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM usage_usageevent").fetchone()[0]


def run_track(uptake: Uptake, *, events: int, db_url: str, already: int) -> dict:
    durations = array("q", bytes(8 * events))
    clock = time.perf_counter_ns
    track = uptake.track
    started = time.perf_counter()
    for n in range(events):
        k = (n * 7919) & 0x7FFFFFFF
        account = k % ACCOUNTS
        before = clock()
        track(
            f"acct-{account}",
            f"feature.{k % FEATURES}",
            user_id=f"user-{account}-{k % 5}",
            quantity=1 + k % 3,
            properties={"plan": "pro", "n": n},
        )
        durations[n] = clock() - before
    tracked = time.perf_counter()
    delivered = uptake.flush(timeout=600)
    elapsed = time.perf_counter() - started
    stored = committed(db_url) - already
    stats = uptake.stats()
    ordered = sorted(durations)
    return {
        "events": events,
        "committed": stored,
        "flush_ok": delivered,
        "seconds": round(elapsed, 2),
        "events_per_s": round(stored / elapsed),
        "track_phase_s": round(tracked - started, 2),
        "track_us_p50": round(percentile(ordered, 0.50) / 1000, 2),
        "track_us_p99": round(percentile(ordered, 0.99) / 1000, 2),
        "track_us_p999": round(percentile(ordered, 0.999) / 1000, 1),
        "track_us_mean": round(statistics.fmean(ordered) / 1000, 2),
        "batches": stats.batches,
        "retries": stats.retries,
        "dropped": stats.dropped,
        "rejected": stats.rejected,
    }


def run_checks(uptake: Uptake, *, checks: int) -> dict:
    check = uptake.check
    first = check("acct-1", "feature.1")
    durations = array("q", bytes(8 * checks))
    clock = time.perf_counter_ns
    for n in range(checks):
        before = clock()
        check("acct-1", "feature.1")
        durations[n] = clock() - before
    ordered = sorted(durations)
    return {
        "checks": checks,
        "source_first": first.source,
        "check_us_p50": round(percentile(ordered, 0.50) / 1000, 3),
        "check_us_p99": round(percentile(ordered, 0.99) / 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=4, help="the client's sender threads (its default)")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()

    db_url, admin = database_urls(BENCH_DB, default_server=LOCAL_SERVER)
    database_prepare(admin, BENCH_DB, fresh=True)
    env = server_env(db_url)
    _, key = api_key_prepare(env, scopes="ingest,read")
    server = start_gunicorn(env, args.port)
    try:
        uptake = Uptake(
            api_key=key,
            host=f"http://127.0.0.1:{args.port}",
            max_queue_size=args.events + 1,
            senders=args.senders,
            timeout=60,
        )
        # Warm-up: register every account, user and feature once, then planner statistics (as autovacuum
        # would gather them), so the timed run measures the steady state.
        for account in range(ACCOUNTS):
            for user in range(5):
                uptake.track(f"acct-{account}", f"feature.{account % FEATURES}", user_id=f"user-{account}-{user}")
        assert uptake.flush(timeout=300), "warm-up not delivered"
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        already = committed(db_url)

        load_before = os.getloadavg()
        cpu_before = os.times()
        server_pids = [server.pid, *children(server.pid)]
        backends = backend_pids(db_url)
        server_cpu_before, backends_cpu_before = cpu_seconds(server_pids), cpu_seconds(backends)
        track = run_track(uptake, events=args.events, db_url=db_url, already=already)
        cpu_after = os.times()
        # CPU per event on each side: steadier than events/s on a machine others share.
        events = track["committed"] or 1
        track["gunicorn_cpu_us_per_event"] = round((cpu_seconds(server_pids) - server_cpu_before) / events * 1e6, 1)
        track["postgres_cpu_us_per_event"] = round((cpu_seconds(backends) - backends_cpu_before) / events * 1e6, 1)
        checks = run_checks(uptake, checks=args.checks)
        load_after = os.getloadavg()
        uptake.shutdown()
        client_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        track["client_cpu_us_per_event"] = round(client_cpu / events * 1e6, 1)
        print(f"senders: {args.senders}")
        print("track  ", json.dumps(track))
        print("check  ", json.dumps(checks))
        print(f"load average before {load_before}, after {load_after}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
