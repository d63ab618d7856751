"""A real HTTP receiver on 127.0.0.1 standing in for Slack, Discord and webhook endpoints, and the alert
settings that make retries fast in tests. Shared by tests/alerts (import the
fixtures)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers from a script of (status, headers, body), then 200 once it runs out."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict, str]] = field(default_factory=list)
    delay: float = 0.0

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def respond(self, *responses: tuple[int, dict, str]) -> None:
        self.script.extend(responses)


@pytest.fixture
def receiver():
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                state.requests.append(Received(self.path, dict(self.headers.items()), body, time.monotonic()))
                status, headers, text = state.script.pop(0) if state.script else (200, {}, "ok")
            if state.delay:
                time.sleep(state.delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            payload = text.encode()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def alert_settings(settings):
    """Fast retries for tests: backoff of 50 ms doubling, 4 attempts, 2 s rate windows."""
    settings.UPTAKE_ALERT_BACKOFF_BASE_SECONDS = 0.05
    settings.UPTAKE_ALERT_BACKOFF_MAX_SECONDS = 5.0
    settings.UPTAKE_ALERT_MAX_ATTEMPTS = 4
    settings.UPTAKE_ALERT_HTTP_TIMEOUT_SECONDS = 2.0
    return settings


@pytest.fixture
def eager(alert_settings):
    """Run Celery tasks inline (the Celery app reads its config once, so set it on the app, then restore)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
