"""Shared fixtures. Tests run on real PostgreSQL (DATABASE_URL, or the embedded server `make test` starts)."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from rest_framework.test import APIClient

from accounts.models import ApiKey, Workspace
from accounts.services import api_key_create, membership_set, workspace_create
from catalog.models import Product
from core.redis_breaker import redis_breaker_reset

# Alert test fixtures (a real HTTP receiver, fast retry settings), shared by tests/usage and tests/analytics.
pytest_plugins = ["tests.alert_receiver", "tests.live_gunicorn"]

# The clock that time-sensitive tests freeze at.
FROZEN_NOW = datetime(2026, 11, 18, 12, 0, 0, tzinfo=UTC)


@contextmanager
def database_unreachable() -> Iterator[None]:
    """A real outage for the code under test: the default connection is closed and pointed at a port where
    nothing listens, then restored (use in `django_db(transaction=True)` tests)."""
    conn = connections["default"]
    port = conn.settings_dict["PORT"]
    conn.close()
    conn.settings_dict["PORT"] = 1
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict["PORT"] = port


class DeadRedis:
    """A TCP listener on 127.0.0.1 that accepts connections and closes them at once, counting them: Redis as an
    outage looks to a client (every command fails), with the number of connection attempts observable."""

    def __init__(self) -> None:
        self.accepts = 0
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.url = f"redis://127.0.0.1:{self._server.getsockname()[1]}/0"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.accepts += 1
            conn.close()

    def close(self) -> None:
        self._server.close()


@contextmanager
def redis_unreachable(settings) -> Iterator[DeadRedis]:
    """A real Redis outage for the cache, the rate limiter and Celery publishing: all pointed at a `DeadRedis`,
    the shared breaker closed at the start; everything restored afterwards."""
    from config.celery import app

    dead = DeadRedis()
    cache_before, broker_before = settings.CACHES, app.conf.broker_url
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": dead.url}}
    app.conf.broker_url = dead.url
    app._pool = None
    app.amqp._producer_pool = None
    redis_breaker_reset()
    try:
        yield dead
    finally:
        settings.CACHES = cache_before
        app.conf.broker_url = broker_before
        app._pool = None
        app.amqp._producer_pool = None
        redis_breaker_reset()
        dead.close()


@pytest.fixture(autouse=True)
def _test_settings(settings):
    """Test-only settings: no rate limiting unless a test turns it on; in-memory e-mail; alert destinations
    may be on loopback (the receivers of tests/alert_receiver.py; tests of the address policy turn it off)."""
    settings.UPTAKE_RATE_LIMIT_ENABLED = False
    settings.UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS = True
    # A test that saw Redis fail must not leave the shared breaker open for the next one.
    redis_breaker_reset()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = False


@pytest.fixture
def workspace(db) -> Workspace:
    return workspace_create(slug="acme", name="Acme Inc.")


@pytest.fixture
def other_workspace(db) -> Workspace:
    return workspace_create(slug="globex", name="Globex")


@pytest.fixture
def free_workspace(db) -> Workspace:
    return workspace_create(slug="freebie", name="Freebie", tier="free")


@pytest.fixture
def make_key(db) -> Callable[..., tuple[ApiKey, str]]:
    def make(workspace: Workspace, scopes: str = "ingest,read,admin", **kwargs) -> tuple[ApiKey, str]:
        return api_key_create(workspace=workspace, scopes=scopes.split(","), **kwargs)

    return make


def key_client(raw: str) -> APIClient:
    """An API client that sends the API key `raw`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def make_client(make_key) -> Callable[..., APIClient]:
    """An API client authenticated with a fresh key of the given workspace and scopes."""

    def make(workspace: Workspace, scopes: str = "ingest,read,admin") -> APIClient:
        return key_client(make_key(workspace, scopes)[1])

    return make


@pytest.fixture
def api(workspace, make_client) -> APIClient:
    """A client with every scope on the `acme` workspace."""
    return make_client(workspace)


@pytest.fixture
def product(workspace) -> Product:
    from catalog.services import product_create

    return product_create(workspace=workspace, key="default", name="Default")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="carol", email="carol@example.com", password="pw-carol-123", is_staff=True
    )


@pytest.fixture
def staff_of(staff_user):
    """Give `staff_user` a role in a workspace; returns the user."""

    def give(workspace: Workspace, role: str = "admin"):
        membership_set(workspace=workspace, user=staff_user, role=role)
        return staff_user

    return give
