"""End to end: events through POST /api/v1/events, rollups by `manage.py rollup` and by a real Celery worker."""

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from accounts.models import Account
from analytics.models import FeatureAccountDay
from analytics.selectors import rollup_differences
from catalog.models import Feature
from tests.conftest import FROZEN_NOW
from usage.models import UsageDayDirty

from .conftest import random_events
from .helpers import oracle, store_events

URL = "/api/v1/products/default/analytics/feature-usage"
SPECS = {
    "a1": {"name": "Alpha", "domain": "acme.com", "status": "active"},
    "a2": {"name": "Beta", "domain": "beta.io", "status": "active"},
    "a3": {"name": "Gamma", "domain": "acme.com", "status": "churned"},
}


@time_machine.travel(FROZEN_NOW, tick=False)
def test_events_sent_over_http_and_rolled_up_match_the_oracle(api, workspace):
    # given accounts and events sent through the ingestion API (features registered on first sight)
    for key, spec in SPECS.items():
        response = api.put(f"/api/v1/accounts/{key}", spec, format="json")
        assert response.status_code in (200, 201), response.content
    events = random_events(21, 150, FROZEN_NOW - timedelta(days=30), 30, accounts=tuple(SPECS))
    payload = [
        {
            "account_id": e.account,
            "feature_id": e.feature,
            "quantity": e.q,
            "timestamp": e.at.isoformat(),
            **({"user_id": e.user} if e.user else {}),
        }
        for e in events
    ]
    payload = [p for p in payload if p["feature_id"] != "other.thing"]
    events = [e for e in events if e.feature != "other.thing"]
    response = api.post("/api/v1/events", {"events": payload}, format="json")
    assert response.status_code == 200 and response.json()["accepted"] == len(payload), response.content
    # when
    out = StringIO()
    call_command("rollup", stdout=out, stderr=StringIO())
    body = api.get(URL, {"from": "2026-11-04", "to": "2026-11-17"}).json()
    # then
    names = dict(Feature.objects.filter(workspace=workspace).values_list("key", "name"))
    active = Account.objects.filter(workspace=workspace, status="active").count()
    assert active == 2
    assert body == oracle(
        events,
        features=names,
        accounts=SPECS,
        start=date(2026, 11, 4),
        end=date(2026, 11, 17),
        active_accounts=active,
    )
    assert UsageDayDirty.objects.count() == 0
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)


@time_machine.travel(FROZEN_NOW, tick=False)
def test_daily_series_endpoints(api, workspace):
    # given
    for key, spec in SPECS.items():
        api.put(f"/api/v1/accounts/{key}", spec, format="json")
    sent = [
        {
            "account_id": "a1",
            "user_id": "u1",
            "feature_id": "export.pdf",
            "quantity": 3,
            "timestamp": "2026-11-16T10:00:00Z",
        },
        {
            "account_id": "a1",
            "user_id": "u2",
            "feature_id": "export.pdf",
            "quantity": 2,
            "timestamp": "2026-11-16T23:59:59Z",
        },
        {
            "account_id": "a2",
            "user_id": "u1",
            "feature_id": "export.pdf",
            "quantity": -1,
            "timestamp": "2026-11-17T00:00:00Z",
        },
        {
            "account_id": "a1",
            "user_id": "u1",
            "feature_id": "export.pdf",
            "quantity": 1,
            "timestamp": "2026-11-18T08:00:00Z",
        },
        {
            "account_id": "a1",
            "feature_id": "license.check",
            "quantity": 9,
            "timestamp": "2026-11-17T08:00:00Z",
        },
    ]
    assert api.post("/api/v1/events", {"events": sent}, format="json").json()["accepted"] == 5
    call_command("rollup", stdout=StringIO(), stderr=StringIO())
    # when
    feature = api.get(
        "/api/v1/products/default/analytics/features/export.pdf/daily",
        {"from": "2026-11-16", "to": "2026-11-18"},
    ).json()
    account = api.get("/api/v1/accounts/a1/analytics/daily", {"from": "2026-11-16", "to": "2026-11-18"}).json()
    # then
    assert feature["days"] == [
        {"day": "2026-11-16", "uses": 5, "events": 2, "accounts": 1, "users": 2},
        {"day": "2026-11-17", "uses": -1, "events": 1, "accounts": 0, "users": 1},
        {"day": "2026-11-18", "uses": 1, "events": 1, "accounts": 1, "users": 1},
    ]
    assert (feature["uses"], feature["accounts"], feature["users"]) == (5, 1, 3)
    assert account["days"] == [
        {"day": "2026-11-16", "uses": 5, "events": 2, "features": 1},
        {"day": "2026-11-17", "uses": 0, "events": 0, "features": 0},
        {"day": "2026-11-18", "uses": 1, "events": 1, "features": 1},
    ]
    assert account["last_seen"] == [{"feature_id": "export.pdf", "last_seen_at": "2026-11-18T08:00:00+00:00"}]
    unknown = api.get("/api/v1/products/default/analytics/features/nope/daily")
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "feature_id"


def _redis_answers(url: str) -> bool:
    if not url:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_real_celery_worker_rolls_up_pending_days(workspace, catalog):
    if not _redis_answers(settings.REDIS_URL):
        pytest.skip("Redis does not answer at REDIS_URL; the Celery end-to-end test needs a real broker")
    from analytics.tasks import rollup_pending_task

    # given dirty days from stored events
    events = random_events(8, 300, datetime(2026, 11, 1, tzinfo=UTC), 7)
    store_events(workspace, events)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    root = Path(settings.BASE_DIR)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # when the task is queued on Redis
        rollup_pending_task.delay()
        deadline = time.monotonic() + 60
        while UsageDayDirty.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.3)
        # then the worker rolled every day up, exactly once
        assert UsageDayDirty.objects.count() == 0
        assert sum(FeatureAccountDay.objects.values_list("uses", flat=True)) == sum(e.q for e in events)
        assert rollup_differences(workspace_id=workspace.pk) == ([], 0)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
