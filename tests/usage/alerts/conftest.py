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
