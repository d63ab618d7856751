"""End-to-end runs through a real Celery worker on Redis: ingestion → on_commit → evaluation → delivery, with a
retry after a 5xx, and Telegram's pace kept with countdowns in the broker."""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings

from accounts.models import Account
from alerts.destinations import webhook_verify
from alerts.models import AlertDelivery
from alerts.services import pipeline_create

SECRET = "whsec-e2e-0123456789abc"
TOKEN = "123456789:AAHfakeTokenForTests_0123456789abcd"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def _redis_or_skip() -> str:
    url = settings.REDIS_URL
    if not url:
        pytest.skip("REDIS_URL is not set: the end-to-end alert test needs a real Celery worker on Redis")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {url} does not answer ({exc}): cannot run a real Celery worker")
    return url


@pytest.fixture
def celery_worker() -> Callable:
    """`with celery_worker(**env) as errors:` runs a worker on the test database and Redis; `errors()` is what
    it wrote to stderr once it stopped (for failure messages)."""

    @contextmanager
    def run(**extra_env: str) -> Iterator[Callable[[], str]]:
        db = settings.DATABASES["default"]
        env = {
            **os.environ,
            "REDIS_URL": _redis_or_skip(),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "UPTAKE_ALERT_BACKOFF_BASE_SECONDS": "0.2",
            "UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS": "true",  # the receivers are on loopback
            **extra_env,
        }
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--without-heartbeat"]
        command += ["--without-gossip", "--without-mingle", "-l", "WARNING"]
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr: list[bytes] = []
        try:
            yield lambda: b"".join(stderr).decode()[-2000:]
        finally:
            worker.terminate()
            try:
                stderr.append(worker.communicate(timeout=15)[1])
            except subprocess.TimeoutExpired:
                worker.kill()
                stderr.append(worker.communicate()[1])

    return run


def _wait_until(condition: Callable[[], bool], seconds: float = 45) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.2)


def test_ingested_event_is_delivered_by_a_real_worker(workspace, make_client, receiver, staff_user, celery_worker):
    # given: a worker on the test database and Redis, and a webhook that fails once
    Account.objects.create(
        workspace=workspace,
        external_id="acc-9",
        name="Hooli",
        plan="enterprise",
        domain="hooli.xyz",
        owner=staff_user,
    )
    pipeline_create(
        workspace=workspace,
        name="All events",
        trigger={"type": "event"},
        destinations=[{"type": "webhook", "url": receiver.url(), "secret": SECRET}],
    )
    receiver.respond((500, {}, "warming up"))
    with celery_worker() as errors:
        # when
        response = make_client(workspace).post(
            "/api/v1/events", {"account_id": "acc-9", "feature_id": "reports", "quantity": 2}, format="json"
        )
        _wait_until(lambda: AlertDelivery.objects.filter(status="sent").exists())
    # then: stored at once, delivered by the worker after one retry, signed
    assert response.status_code == 200 and response.json()["accepted"] == 1
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 2, 200), errors()
    first, second = receiver.requests
    assert second.json["account"] == {
        "id": "acc-9",
        "name": "Hooli",
        "plan": "enterprise",
        "owner": "carol@example.com",
        "domain": "hooli.xyz",
    }
    assert webhook_verify(
        secret=SECRET,
        timestamp=second.headers["X-Uptake-Timestamp"],
        body=second.body,
        signature=second.headers["X-Uptake-Signature"],
        now=time.time(),
    )


def test_quick_events_to_one_telegram_chat_are_paced_by_the_worker(workspace, make_client, receiver, celery_worker):
    # given: a pipeline to one Telegram group, the fake Bot API on 127.0.0.1
    Account.objects.create(workspace=workspace, external_id="acc-9", name="Hooli")
    pipeline_create(
        workspace=workspace,
        name="Chat",
        trigger={"type": "event"},
        destinations=[{"type": "telegram", "token": TOKEN, "chat_id": "-1001234567890"}],
    )
    events = [{"account_id": "acc-9", "feature_id": "reports", "event_id": f"e{n}"} for n in range(4)]
    with celery_worker(UPTAKE_TELEGRAM_API_BASE=receiver.url("")) as errors:
        # when: four events in one request
        response = make_client(workspace).post("/api/v1/events", {"events": events}, format="json")
        _wait_until(lambda: AlertDelivery.objects.filter(status="sent").count() == 4)
    # then: each reached the chat once, at least a second apart, each delivery sent in one attempt
    assert response.json()["accepted"] == 4
    assert sorted(AlertDelivery.objects.values_list("status", "attempts")) == [("sent", 1)] * 4, errors()
    assert len(receiver.requests) == 4
    gaps = [later.at - earlier.at for earlier, later in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert min(gaps) >= 0.95, gaps
    texts = sorted(r.json["text"].splitlines()[0] for r in receiver.requests)
    assert texts == ["<b>reports</b>"] * 4
