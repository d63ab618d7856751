"""What the benchmarks share: their own database on the server of DATABASE_URL, Django or manage.py set up
against it, the analytics dataset (bench/analytics and bench/dashboard measure the same one), a gunicorn to
measure, CPU time of the processes involved, and percentiles.

Benchmarks run as scripts (`.venv/bin/python bench/ingest.py`); each puts the repository root on sys.path and
imports this module as `bench.support`.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# The server a benchmark uses without DATABASE_URL: the embedded one of `make db-start` (scripts/uptake_dev.py),
# or PostgreSQL's default port for the benchmarks documented that way.
EMBEDDED_SERVER = f"postgres://postgres@127.0.0.1:{os.environ.get('UPTAKE_PG_PORT', 54329)}/uptake"
LOCAL_SERVER = "postgres://postgres@127.0.0.1:5432/uptake"


def database_urls(name: str, *, default_server: str = EMBEDDED_SERVER) -> tuple[str, str]:
    """(URL of the database `name`, URL of the server's `postgres` database) on the server of DATABASE_URL."""
    parts = urlsplit(os.environ.get("DATABASE_URL") or default_server)
    return urlunsplit(parts._replace(path=f"/{name}")), urlunsplit(parts._replace(path="/postgres"))


def database_prepare(admin_url: str, name: str, *, fresh: bool) -> bool:
    """Create the database `name` when it is missing, or drop and recreate it when `fresh`. True when it was
    created (empty)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not fresh:
            return False
        if exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def django_setup(database_url: str) -> None:
    """Point Django at the benchmark's database and start it in this process."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def server_env(database_url: str) -> dict[str, str]:
    """The environment of a server under load: no rate limiting, no debug, quiet logs, kept connections, and no
    Redis (it is never on the write path; a benchmark that wants it sets REDIS_URL again)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "UPTAKE_RATE_LIMIT_ENABLED": "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
    }
    env.pop("REDIS_URL", None)
    return env


def api_key_prepare(env: dict[str, str], *, scopes: str) -> tuple[list[str], str]:
    """Migrate, create the workspace `bench` and a key with `scopes` through manage.py; (the manage.py
    command line, the key)."""
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], env=env, check=True, cwd=ROOT)
    subprocess.run(
        [*manage, "create_workspace", "bench", "--name", "Bench"],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    out = subprocess.run(
        [*manage, "create_api_key", "bench", "--scopes", scopes],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    return manage, out.strip().splitlines()[-1]


def log(message: str, *, bench: str = "bench-analytics") -> None:
    print(f"[{bench}] {message}", flush=True)


def analytics_dataset_arguments(parser) -> None:
    """The command-line options that size the analytics dataset."""
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--days", type=int, default=90)


def analytics_dataset_build(
    *, accounts: int, features: int, events: int, days: int, start: datetime, account_fields: Callable | None = None
):
    """The analytics dataset (Django set up): workspace `bench` with product `default`, `features` active
    features, `accounts` accounts (first seen at `start`; `account_fields(i)` adds fields to account i) with
    5 end users each, and `events` raw events over `days` days from `start`: a skewed account mix (a few
    heavy accounts), each account with its own Zipf-like feature preferences, 80 % of events with an end user,
    0.5 % negative corrections. Returns the workspace and its accounts."""
    from django.db import connection

    from accounts.models import Account, EndUser
    from accounts.services import workspace_create
    from catalog.models import Feature
    from catalog.services import product_create

    t0 = time.perf_counter()
    workspace = workspace_create(slug="bench", name="Bench")
    workspace.max_features = max(400, features + 1)
    workspace.save(update_fields=["max_features"])
    product = product_create(workspace=workspace, key="default", name="Default")
    Feature.objects.bulk_create(
        Feature(workspace=workspace, product=product, key=f"feature-{i:03d}", name=f"Feature {i:03d}", status="active")
        for i in range(features)
    )
    Account.objects.bulk_create(
        Account(
            workspace=workspace,
            external_id=f"acct-{i:05d}",
            name=f"Account {i}",
            domain=f"domain{i % (accounts * 9 // 10)}.example",
            first_seen_at=start,
            **(account_fields(i) if account_fields else {}),
        )
        for i in range(accounts)
    )
    rows = list(Account.objects.filter(workspace=workspace).order_by("id"))
    EndUser.objects.bulk_create(
        EndUser(workspace=workspace, account=a, external_id=f"user-{k}") for a in rows for k in range(5)
    )
    log(f"catalog and {accounts} accounts in {time.perf_counter() - t0:.1f} s")
    _events_load(connection, workspace_id=workspace.pk, n=events, start=start, days=days)
    return workspace, rows


def _events_load(connection, *, workspace_id: int, n: int, start: datetime, days: int) -> None:
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
            log(f"loaded {hi:,}/{n:,} events ({time.perf_counter() - t0:.0f} s)")
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("VACUUM ANALYZE usage_usageevent")
    log(f"load: {n:,} events in {time.perf_counter() - t0:.1f} s")


def gunicorn_start(
    *, port: int, workers: int, env: dict[str, str], worker_class: str = "gthread", threads: int | None = None
) -> subprocess.Popen:
    """gunicorn serving the project on 127.0.0.1:`port`, in a session of its own (the caller stops it)."""
    command = [
        str(Path(PY).parent / "gunicorn"),
        "config.wsgi:application",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    if threads is not None:
        command += ["--threads", str(threads)]
    return subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)


def wait_until_serving(
    port: int, *, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None, tries: int = 100
) -> int | None:
    """Wait (0.2 s between tries) until something on 127.0.0.1:`port` answers HTTP: the status of the first
    answer to `method path`, None when nothing answered."""
    for _ in range(tries):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            response.read()
            connection.close()
            return response.status
        except OSError:
            time.sleep(0.2)
    return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (Linux /proc), 0 for those that are gone."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s children (gunicorn's workers)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving the benchmark database (gunicorn keeps its connections)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value at `fraction` (0.95 for p95) of values sorted in ascending order, by nearest lower rank."""
    return sorted_values[int(fraction * (len(sorted_values) - 1))]
