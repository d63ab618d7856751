"""One end-to-end run through a real Celery worker on Redis: ingestion → on_commit → evaluation → delivery."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from accounts.models import Account
from alerts.destinations import webhook_verify
from alerts.models import AlertDelivery
from alerts.services import pipeline_create

SECRET = "whsec-e2e-0123456789abc"
ROOT = Path(__file__).resolve().parents[2]


def _redis_or_skip() -> str:
    url = settings.REDIS_URL
    if not url:
        pytest.skip("REDIS_URL is not set: the end-to-end alert test needs a real Celery worker on Redis")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {url} does not answer ({exc}): cannot run a real Celery worker")
    return url


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_ingested_event_is_delivered_by_a_real_worker(workspace, make_client, receiver, staff_user):
    # given: a worker on the test database and Redis
    redis_url = _redis_or_skip()
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "UPTAKE_ALERT_BACKOFF_BASE_SECONDS": "0.2",
        "UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver is on loopback
    }
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
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # when
        response = make_client(workspace).post(
            "/api/v1/events", {"account_id": "acc-9", "feature_id": "reports", "quantity": 2}, format="json"
        )
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not AlertDelivery.objects.filter(status="sent").exists():
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            _, err = worker.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, err = worker.communicate()
    # then: stored at once, delivered by the worker after one retry, signed
    assert response.status_code == 200 and response.json()["accepted"] == 1
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 2, 200), err.decode()[-2000:]
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
