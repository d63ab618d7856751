"""`POST /api/v1/usage/record` and `GET /api/v1/entitlements/check?quantity=` give the same verdict: one rule
(entitlements.selectors.usage_refusal) decides whether a quantity may be used, for both endpoints. A metered
allowance of 0 is "not entitled" everywhere, with its limit of 0 in the answer."""

import pytest
import time_machine

from tests.conftest import FROZEN_NOW
from tests.entitlements.factories import account, feature, metered, plan, subscribe
from usage.models import UsageEvent
from usage.services import events_ingest

RECORD = "/api/v1/usage/record"
CHECK = "/api/v1/entitlements/check"
ACCOUNT_ENTITLEMENTS = "/api/v1/accounts/acct-1/entitlements"

NUMBERS = [{"value": "0", "name": "None"}, {"value": "5", "name": "Five"}, {"value": "10", "name": "Ten"}]
UNLIMITED = [*NUMBERS, {"value": "unlimited", "name": "Unlimited", "is_unlimited": True}]
RANGE = [{"value": "1", "name": "min"}, {"value": "50", "name": "max"}]
TIERS = [{"value": "basic", "name": "Basic"}, {"value": "pro", "name": "Pro"}]


@pytest.fixture
def catalog(workspace, product):
    """acct-1 holds one value of each kind; `api-calls` (metered, 10 a month) has 8 used."""
    grants = {
        metered(workspace, product, "api-calls", levels=NUMBERS): "10",
        metered(workspace, product, "exports", levels=NUMBERS): "0",
        metered(workspace, product, "tokens", levels=UNLIMITED): "unlimited",
        feature(workspace, product, "seats", type="quantity", levels=NUMBERS): "5",
        feature(workspace, product, "guests", type="quantity", levels=NUMBERS): "0",
        feature(workspace, product, "projects", type="quantity", levels=UNLIMITED): "unlimited",
        feature(workspace, product, "storage", type="range", levels=RANGE): "20",
        feature(workspace, product, "sso"): "true",
        feature(workspace, product, "audit"): "false",
        feature(workspace, product, "support", type="custom", levels=TIERS): "basic",
    }
    feature(workspace, product, "webhooks")  # granted by nothing
    acct = account(workspace)
    subscribe(workspace, acct, "s1", [plan(workspace, "team", grants)])
    events_ingest(
        workspace=workspace,
        payload=[{"account_id": "acct-1", "feature_id": "api-calls", "quantity": 8}],
        now=FROZEN_NOW,
    )
    return acct


def _used_api_calls(api) -> int:
    return api.get(CHECK, {"account_id": "acct-1", "feature_id": "api-calls"}).json()["used"]


CASES = [
    # (feature, quantity, refusal reason or None)
    ("api-calls", 2, None),  # metered: 8 used + 2 ≤ 10
    ("api-calls", 3, "limit_exceeded"),  # 8 + 3 > 10
    ("exports", 1, "not_entitled"),  # a metered allowance of 0
    ("tokens", 1_000_000_000, None),  # metered, unlimited
    ("seats", 5, None),  # not metered: quantity ≤ value
    ("seats", 7, "limit_exceeded"),  # quantity > value
    ("guests", 1, "limit_exceeded"),  # not metered, value 0: granted, 1 > 0
    ("projects", 1_000_000_000, None),  # not metered, unlimited
    ("storage", 20, None),  # range: quantity ≤ value
    ("storage", 21, "limit_exceeded"),
    ("sso", 1_000_000_000, None),  # switch granted: any quantity
    ("audit", 1, "not_entitled"),  # switch "false"
    ("support", 3, None),  # custom: no limit
    ("webhooks", 1, "not_entitled"),  # granted by nothing
]


@time_machine.travel(FROZEN_NOW, tick=False)
@pytest.mark.parametrize(("feature_key", "quantity", "reason"), CASES)
def test_record_and_check_give_the_same_verdict(api, catalog, feature_key, quantity, reason):
    # given
    before = UsageEvent.objects.count()
    # when
    check = api.get(CHECK, {"account_id": "acct-1", "feature_id": feature_key, "quantity": str(quantity)}).json()
    record = api.post(RECORD, {"account_id": "acct-1", "feature_id": feature_key, "quantity": quantity}, format="json")
    # then
    assert record.status_code == 200
    body = record.json()
    assert (check["entitled"], check["reason"]) == (reason is None, reason)
    assert (body["recorded"], body.get("reason")) == (reason is None, reason)
    assert UsageEvent.objects.count() == before + (reason is None)
    if reason is not None:
        # a refusal carries the check's answer for that quantity
        assert body["entitlement"] == check


@time_machine.travel(FROZEN_NOW, tick=False)
def test_a_non_metered_value_is_enforced_by_the_record_whatever_was_used_before(api, catalog):
    # when: a value that is not an allowance limits each use, not their sum
    answers = [
        api.post(RECORD, {"account_id": "acct-1", "feature_id": "seats", "quantity": q}, format="json").json()
        for q in (5, 5, 6)
    ]
    # then
    assert [(a["recorded"], a.get("reason")) for a in answers] == [
        (True, None),
        (True, None),
        (False, "limit_exceeded"),
    ]
    assert list(UsageEvent.objects.filter(feature__key="seats").values_list("quantity", flat=True)) == [5, 5]


@time_machine.travel(FROZEN_NOW, tick=False)
def test_negative_quantities_are_recorded_whatever_the_verdict(api, catalog):
    # when
    answers = {
        key: api.post(RECORD, {"account_id": "acct-1", "feature_id": key, "quantity": -2}, format="json").json()
        for key in ("exports", "seats", "guests", "audit", "webhooks")
    }
    # then
    assert {key: a["recorded"] for key, a in answers.items()} == dict.fromkeys(answers, True)
    assert UsageEvent.objects.filter(quantity=-2).count() == 5
    assert _used_api_calls(api) == 8


@time_machine.travel(FROZEN_NOW, tick=False)
def test_a_metered_allowance_of_zero_is_not_entitled_with_its_limit_shown(api, catalog):
    # when
    check = api.get(CHECK, {"account_id": "acct-1", "feature_id": "exports"}).json()
    listed = {e["feature_id"]: e for e in api.get(ACCOUNT_ENTITLEMENTS).json()["entitlements"]}
    record = api.post(RECORD, {"account_id": "acct-1", "feature_id": "exports", "quantity": 1}, format="json").json()
    # then
    assert check == {
        "feature_id": "exports",
        "entitled": False,
        "type": "quantity",
        "value": "0",
        "unlimited": False,
        "limit": 0,
        "used": 0,
        "remaining": 0,
        "resets_at": "2026-12-01T00:00:00Z",
        "reason": "not_entitled",
    }
    assert listed["exports"] == check
    assert (record["recorded"], record["reason"], record["entitlement"]) == (False, "not_entitled", check)
    assert not UsageEvent.objects.filter(feature__key="exports").exists()


@time_machine.travel(FROZEN_NOW, tick=False)
def test_the_account_list_answers_each_feature_as_the_check_does(api, catalog):
    # when
    listed = api.get(ACCOUNT_ENTITLEMENTS).json()["entitlements"]
    checked = [api.get(CHECK, {"account_id": "acct-1", "feature_id": e["feature_id"]}).json() for e in listed]
    # then
    assert listed == checked
    assert {e["feature_id"]: e["reason"] for e in listed} == {
        "api-calls": None,
        "audit": "not_entitled",
        "exports": "not_entitled",
        "guests": None,
        "projects": None,
        "seats": None,
        "sso": None,
        "storage": None,
        "support": None,
        "tokens": None,
    }
