"""Fixtures of the alert tests; the HTTP receiver and the alert settings live in tests/alert_receiver.py."""

from __future__ import annotations

import pytest

from accounts.models import Account
from tests.alert_receiver import alert_settings, eager, receiver  # noqa: F401


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
