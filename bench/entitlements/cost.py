"""In-process cost of one entitlement check: `config.wsgi.application` called directly with the environ gunicorn
builds for the benchmark's request (no HTTP, no other threads), so the figures hardly move with the machine's load.

    .venv/bin/python bench/entitlements/cost.py                 # CPU µs per check (process time)
    .venv/bin/python bench/entitlements/cost.py --cprofile 30   # + the 30 costliest functions (cumulative)
    .venv/bin/python bench/entitlements/cost.py --callgrind     # instructions per check (valgrind)
    .venv/bin/python bench/entitlements/cost.py --path /api/v1/events --body '{"account_id": ...}'

Seeds the benchmark's workspace (bench/entitlements/run.py) in DATABASE_URL, or with --reuse takes the newest
one and a new key for it. `--callgrind` runs this script twice under `valgrind --tool=callgrind` (with few and
with many checks after the same warm-up) and divides the difference in instructions by the difference in checks:
the Python and C work of the web process per check, PostgreSQL's excluded. Rate limiting is off as in the
benchmark; `--rate-limit` turns it on (with REDIS_URL: one Redis call per lease of tokens).
"""

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
# The benchmark's server settings (bench/entitlements/run.py sets the database, DEBUG and rate limiting).
os.environ.setdefault("CONN_MAX_AGE", "600")
# valgrind runs ~50× slower: keep the key cached through the run, as it is between two requests of a busy client.
os.environ.setdefault("UPTAKE_API_KEY_CACHE_SECONDS", "3600")


def _workspace(reuse: bool) -> tuple[str, list[str]]:
    """A key with the read and ingest scopes for the newest benchmark workspace (seeded first unless --reuse finds
    one), and the workspace's feature keys."""
    from bench.entitlements.run import ensure_database, seed

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import Workspace
    from accounts.services import api_key_create
    from catalog.models import Feature

    workspace = Workspace.objects.filter(slug__startswith="bench-entl-").order_by("-pk").first()
    if workspace is None or not reuse:
        seed()
        workspace = Workspace.objects.filter(slug__startswith="bench-entl-").order_by("-pk").first()
    _, key = api_key_create(workspace=workspace, scopes=["read", "ingest"])
    return key, sorted(Feature.objects.filter(workspace=workspace).values_list("key", flat=True))


def _environ(*, path: str, query: str, key: str, body: bytes | None) -> dict:
    """What gunicorn's gthread worker passes for the benchmark's http.client request."""
    environ = {
        "REQUEST_METHOD": "POST" if body is not None else "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "RAW_URI": f"{path}?{query}" if query else path,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8765",
        "SERVER_SOFTWARE": "gunicorn/23.0.0",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:8765",
        "HTTP_ACCEPT_ENCODING": "identity",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    if body is not None:
        environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
    return environ


def run(args) -> None:
    if args.key:
        import django

        django.setup()
        key, feature_keys = args.key, [f"f{i:02d}" for i in range(40)]
    else:
        key, feature_keys = _workspace(args.reuse)
    from config.wsgi import application

    body = args.body.encode() if args.body is not None else None
    environs = [
        _environ(path=args.path, query=f"account_id=big-co&feature_id={feature}", key=key, body=body)
        if args.path == "/api/v1/entitlements/check"
        else _environ(path=args.path, query="", key=key, body=body)
        for feature in feature_keys
    ]
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def checks(count: int) -> None:
        for i in range(count):
            environ = dict(environs[i % len(environs)])
            environ["wsgi.input"] = io.BytesIO(body or b"")
            result = application(environ, start_response)
            b"".join(result)
            result.close()

    checks(args.warmup)
    if not all(status.startswith("200") for status in statuses):
        sys.exit(f"not every warm-up request answered 200: {sorted(set(statuses))}")
    profiler = cProfile.Profile(time.process_time) if args.cprofile else None
    if profiler:
        profiler.enable()
    # Rounds: the machine's other work inflates some of them; the least costly round is the steadiest figure.
    per_round = max(1, args.checks // args.rounds)
    cpu_costs, wall_costs = [], []
    for _ in range(args.rounds):
        started, cpu = time.perf_counter(), time.process_time()
        checks(per_round)
        cpu_costs.append((time.process_time() - cpu) / per_round * 1e6)
        wall_costs.append((time.perf_counter() - started) / per_round * 1e6)
    if profiler:
        profiler.disable()
    print(
        f"{per_round * args.rounds} requests of {args.path} in {args.rounds} rounds: CPU µs each "
        f"min {min(cpu_costs):.0f}, median {statistics.median(cpu_costs):.0f}; "
        f"wall µs min {min(wall_costs):.0f}; load average {os.getloadavg()[0]:.2f}"
    )
    if profiler:
        stats = pstats.Stats(profiler).sort_stats(args.sort)
        stats.print_stats(args.cprofile)
        if args.callers:
            stats.print_callers(args.callers)


def callgrind(args) -> None:
    """Instructions per request: two runs under callgrind, few and many requests after the same warm-up."""
    base = [a for a in sys.argv[1:] if a not in ("--callgrind", "--reuse")]
    key, _ = _workspace(args.reuse)
    low, high = 50, 50 + args.checks
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (low, high):
            out = Path(tmp) / f"callgrind.{count}"
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
            subprocess.run(
                [*command, *base, "--checks", str(count), "--rounds", "1", "--key", key],
                check=True,
                capture_output=True,
            )
            totals.append(int(re.search(r"^summary: (\d+)", out.read_text(), re.M)[1]))
    per = (totals[1] - totals[0]) / (high - low)
    print(f"{args.path}: {per / 1e6:.3f} M instructions per request ({high - low} requests, callgrind)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="the newest benchmark workspace, if any, not a new one")
    parser.add_argument("--key", help=argparse.SUPPRESS)  # callgrind's runs: the key made for them
    parser.add_argument("--cprofile", type=int, metavar="N", default=0, help="print the N costliest functions")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sort", default="cumulative", help="cProfile order: cumulative, tottime, ...")
    parser.add_argument("--callers", metavar="REGEX", help="with --cprofile: who calls the functions matching REGEX")
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind")
    parser.add_argument("--rate-limit", action="store_true", help="leave rate limiting on")
    parser.add_argument("--path", default="/api/v1/entitlements/check")
    parser.add_argument("--body", default=None, help="POST this JSON body instead of the GET check")
    args = parser.parse_args()
    os.environ.setdefault("UPTAKE_RATE_LIMIT_ENABLED", "true" if args.rate_limit else "false")
    import bench.entitlements.run  # noqa: F401  (its environment defaults, after the rate limit's)

    if args.callgrind:
        callgrind(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
