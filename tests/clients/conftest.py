"""Fixtures for the Python client's tests: a real Uptake server (pytest-django's live_server in this process,
or gunicorn in its own), a key, and clients that are shut down after each test."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings
from uptake_client import Uptake

from usage.models import UsageEvent

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], object], *, timeout: float = 30.0, what: str = "the condition") -> object:
    """Poll `condition` until it is truthy (returned) or `timeout` passes (the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def drop_connections(uptake: Uptake) -> None:
    """Close the client's keep-alive connections: the live server's thread for each one ends and closes its
    database session, so that a database_unreachable() outage reaches the server on the next request."""
    client, uptake._http_client = uptake._http_client, None
    if client is not None:
        client.close()


def stored_ids() -> list[str]:
    return sorted(UsageEvent.objects.values_list("event_id", flat=True))


@pytest.fixture
def ingest_key(workspace, make_key) -> str:
    return make_key(workspace, "ingest,read")[1]


@pytest.fixture
def make_uptake(live_server, ingest_key) -> Iterator[Callable[..., Uptake]]:
    """Clients of the live server (fast intervals and backoff for tests); each is shut down afterwards."""
    made: list[Uptake] = []

    def make(**options) -> Uptake:
        options = {
            "api_key": ingest_key,
            "host": live_server.url,
            "flush_interval": 0.05,
            "backoff_base": 0.05,
            "backoff_cap": 0.5,
            **options,
        }
        client = Uptake(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(timeout=5)


class RecordingTransport(httpx.HTTPTransport):
    """The real HTTP transport, keeping each request it sends (to look at headers and bodies)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return super().handle_request(request)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    """The test database (the one this process uses), for a server in another process."""
    db = settings.DATABASES["default"]
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'], safe='')}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Gunicorn:
    """gunicorn serving the test database (as README runs it: gthread) on one port, stopped and started at
    will; the same port every time."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "UPTAKE_RATE_LIMIT_ENABLED": "false",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        }
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi:application",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
        wait_for(self._answers, timeout=60, what="gunicorn to answer")

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v1/events", timeout=1).status_code in (401, 405)
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the master and its workers at once: requests in flight get no answer."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None


@pytest.fixture
def gunicorn(transactional_db) -> Iterator[Gunicorn]:
    server = Gunicorn()
    try:
        yield server
    finally:
        server.kill()
