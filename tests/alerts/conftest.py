"""Fixtures of the alert tests; the HTTP receiver and the alert settings live in tests/alert_receiver.py
(a plugin of tests/conftest.py)."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings as django_settings
from psycopg import sql

from accounts.models import Account
from alerts.models import AlertChannel, AlertPipeline


@pytest.fixture
def customer(workspace, staff_user) -> Account:
    return Account.objects.create(
        workspace=workspace,
        external_id="acc-1",
        name="Initech",
        domain="initech.com",
        plan="free",
        owner=staff_user,
    )


@pytest.fixture
def ingest(api, django_capture_on_commit_callbacks):
    """POST events and run what ingestion queued with transaction.on_commit, as a real commit would."""

    def post(*events) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/v1/events", {"events": list(events)}, format="json")
        assert response.status_code == 200, response.json()
        return response.json()

    return post


@pytest.fixture
def bot_api(receiver, settings):
    """The fake Bot API: the receiver, with UPTAKE_TELEGRAM_API_BASE pointing at it."""
    settings.UPTAKE_TELEGRAM_API_BASE = receiver.url("")
    return receiver


@pytest.fixture
def sink_url():
    """A database of its own on the machine's PostgreSQL, dropped afterwards."""
    db = django_settings.DATABASES["default"]
    name = f"{db['NAME'].removeprefix('test_')}_sink"[:63]
    admin = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname="postgres", autocommit=True
    )
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield f"postgresql://{db['USER']}:sink-Password1@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def sink_rows(url: str, table: str = "uptake.alerts") -> list[tuple]:
    """The rows a PostgreSQL channel wrote (the documented columns; the payload's title for the whole payload)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            sql.SQL(
                "SELECT delivery_id, pipeline, trigger, event, account_id, account_name, plan, owner, feature, "
                "quantity, occurred_at, payload->>'title', created_at IS NOT NULL FROM {} ORDER BY delivery_id"
            ).format(sql.Identifier(*table.split(".")))
        ).fetchall()


@pytest.fixture
def refused(api):
    """`refused(path, body, field, message)`: POST `body`, and check that it is answered 400 naming `field`, with
    `message` in its text, and that no pipeline or channel was stored. Returns the error."""

    def check(path: str, body: dict, field: str, message: str) -> dict:
        response = api.post(path, body, format="json")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert (error["field"], message in error["message"]) == (field, True), error
        assert (AlertPipeline.objects.count(), AlertChannel.objects.count()) == (0, 0)
        return error

    return check


def dashboard_form(name="Big exports", trigger_type="event", destinations=(), **fields) -> dict:
    """The POST data of the dashboard's pipeline form: its fields, and a row per destination (no condition)."""
    data = {
        "name": name,
        "enabled": "on",
        "trigger_type": trigger_type,
        "plans": "",
        "min_quantity": "",
        "percent": "",
        "days": "",
        **fields,
        "dest-TOTAL_FORMS": str(len(destinations)),
        "dest-INITIAL_FORMS": str(sum(1 for d in destinations if d.get("id"))),
        "dest-MIN_NUM_FORMS": "0",
        "dest-MAX_NUM_FORMS": "1000",
        "cond-TOTAL_FORMS": "0",
        "cond-INITIAL_FORMS": "0",
        "cond-MIN_NUM_FORMS": "0",
        "cond-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(destinations):
        for key, value in row.items():
            if value is True:
                value = "on"
            if value is not False:
                data[f"dest-{index}-{key}"] = value
    return data
