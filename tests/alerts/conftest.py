"""Fixtures of the alert tests; the HTTP receiver and the alert settings live in tests/alert_receiver.py
(a plugin of tests/conftest.py)."""

from __future__ import annotations

import pytest

from accounts.models import Account


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
