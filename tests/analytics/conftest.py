"""Fixtures for analytics tests: a catalog, accounts and a generator of deterministic event streams; the
dashboard scenario and a client logged in to it."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import Account
from catalog.services import feature_create, product_create

from .browser.data import build
from .helpers import Ev

FEATURES = {
    "export.pdf": "PDF export",
    "reports.view": "Reports",
    "sso.login": "Single sign-on",
    "api.calls": "API calls",
    "legacy.import": "Legacy import",
    "license.check": "License check",
}
ACCOUNTS = {
    "a1": {"name": "Alpha", "domain": "acme.com", "status": "active", "customer_email": "billing@acme.com"},
    "a2": {"name": "Alpha EU", "domain": "ACME.com", "status": "active"},
    "a3": {"name": "Beta", "domain": "globex.io", "status": "active"},
    "a4": {"name": "Gamma", "domain": "", "status": "active"},
    "a5": {"name": "Delta", "domain": "initech.com", "status": "churned"},
    "a6": {"name": "Epsilon", "domain": "umbrella.org", "status": "active"},
    "a7": {"name": "Zeta", "domain": "hooli.com", "status": "active"},
}
# a7 is first seen after the windows the tests ask for, so it is not counted as an active account by then.
FIRST_SEEN = {key: datetime(2026, 9, 1, tzinfo=UTC) for key in ACCOUNTS} | {"a7": datetime(2026, 11, 16, tzinfo=UTC)}


@pytest.fixture
def catalog(workspace, product):
    other = product_create(workspace=workspace, key="other", name="Other")
    for key, name in FEATURES.items():
        feature_create(workspace=workspace, key=key, name=name, product=product)
    feature_create(workspace=workspace, key="other.thing", name="Other thing", product=other)
    for key, spec in ACCOUNTS.items():
        account = Account.objects.create(
            workspace=workspace,
            external_id=key,
            name=spec["name"],
            domain=spec["domain"],
            status=spec["status"],
            customer_email=spec.get("customer_email", ""),
            first_seen_at=FIRST_SEEN[key],
        )
        Account.objects.filter(pk=account.pk).update(created_at=FIRST_SEEN[key])
    return product


def random_events(seed: int, count: int, start: datetime, days: int, accounts=("a1", "a2", "a3", "a4", "a5")):
    rng = random.Random(seed)
    keys = [*FEATURES, "other.thing"]
    out = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.randrange(days * 86400))
        q = rng.choice([1, 1, 1, 2, 5, -1, -3])
        account = rng.choice(accounts)
        out.append(Ev(rng.choice(keys), account, at, q, rng.choice([None, f"{account}-u1", f"{account}-u2"])))
    return out


@pytest.fixture
def built(db):
    """The dashboard scenario of browser/data.py (workspaces acme and globex, carol a manager of acme)."""
    return build()


@pytest.fixture
def carol_client(built) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username="carol"))
    return client
