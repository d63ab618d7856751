"""Batch entitlement selectors (used by the dashboard's lists) give exactly what the one-account selectors give,
with a fixed number of queries whatever the number of accounts."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Feature
from core.errors import NotFound
from entitlements.selectors import (
    Effective,
    effective_entitlement,
    effective_entitlements,
    effective_entitlements_by_account,
    effective_entitlements_for_accounts,
    entitlement_check,
    entitlement_payload,
    entitlement_payloads,
)
from entitlements.services import UsageRow, allowance_usage_apply, subscription_entitlement_set
from tests.conftest import FROZEN_NOW

from .factories import account, feature, metered, plan, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(workspace, product):
    """Seven accounts: items, an override that lowers, an expired override, a trial, a cancelled subscription,
    a term-anchored allowance, a custom-level feature and an account with nothing."""
    seats = feature(
        workspace,
        product,
        "seats",
        type="quantity",
        levels=[
            {"value": "5", "name": "5"},
            {"value": "50", "name": "50"},
            {"value": "unlimited", "name": "U", "is_unlimited": True},
        ],
    )
    tier = feature(
        workspace,
        product,
        "support",
        type="custom",
        levels=[{"value": "gold", "name": "Gold"}, {"value": "bronze", "name": "Bronze"}],
    )
    calls = metered(workspace, product, "api-calls", anchor="term")
    draft = feature(workspace, product, "beta", active=False)
    team = plan(workspace, "team", {seats: "5", tier: "gold", calls: "10"})
    business = plan(workspace, "business", {seats: "50", tier: "bronze", calls: "100"})
    addon = plan(workspace, "unlimited-seats", {seats: "unlimited"}, type="addon")
    accts = {key: account(workspace, key) for key in ("a1", "a2", "a3", "a4", "a5", "a6", "a7")}
    term = FROZEN_NOW - timedelta(days=40)
    subscribe(workspace, accts["a1"], "s1", [team], term_start=term)
    subscribe(workspace, accts["a1"], "s1b", [business], term_start=FROZEN_NOW - timedelta(days=3))
    lowered = subscribe(workspace, accts["a2"], "s2", [business], term_start=term)
    subscription_entitlement_set(subscription=lowered, feature=calls, value="10")
    expired = subscribe(workspace, accts["a3"], "s3", [team], term_start=term)
    subscription_entitlement_set(
        subscription=expired, feature=seats, value="50", expires_at=FROZEN_NOW - timedelta(hours=1)
    )
    subscribe(workspace, accts["a4"], "s4", [team, addon], status="in_trial", term_start=term)
    subscribe(workspace, accts["a5"], "s5", [business], status="cancelled", term_start=term)
    subscribe(workspace, accts["a6"], "s6", [team])  # no term start: calendar month
    rows = [
        UsageRow(accts[a].pk, calls.pk, at, q)
        for a, at, q in [
            ("a1", FROZEN_NOW - timedelta(days=1), 7),
            ("a1", FROZEN_NOW - timedelta(days=5), 40),  # before s1b's term: only counts for s1's period
            ("a2", FROZEN_NOW - timedelta(hours=2), 9),
            ("a2", FROZEN_NOW - timedelta(days=2, hours=5), 3),
            ("a4", FROZEN_NOW - timedelta(days=8, hours=1), 4),  # a partial first day (ledger)
            ("a4", FROZEN_NOW - timedelta(days=30), 50),  # before a4's current period
            ("a6", datetime(2026, 11, 1, 0, 0, tzinfo=UTC), 6),
            ("a6", datetime(2026, 10, 31, 23, 59, tzinfo=UTC), 60),  # last month
        ]
    ]
    allowance_usage_apply(workspace_id=workspace.pk, rows=rows)
    ids = [a.pk for a in accts.values()]
    return {"accounts": accts, "ids": ids, "features": [seats, tier, calls, draft]}


def test_batch_effective_values_equal_the_single_account_selector(workspace, scenario):
    # given the scenario's four features
    for feat in scenario["features"]:
        # when resolved for every account at once
        batch = effective_entitlements_for_accounts(
            workspace=workspace, feature=feat, account_ids=scenario["ids"], now=FROZEN_NOW
        )
        # then each account's answer is the one-account selector's
        assert batch == {
            pk: effective_entitlement(account_id=pk, feature=feat, now=FROZEN_NOW) for pk in scenario["ids"]
        }, feat.key
    # and the values are the scenario's
    seats = effective_entitlements_for_accounts(
        workspace=workspace, feature=scenario["features"][0], account_ids=scenario["ids"], now=FROZEN_NOW
    )
    assert [seats[pk].value for pk in scenario["ids"]] == ["50", "50", "5", "unlimited", None, "5", None]


def test_batch_payloads_equal_single_payloads_with_their_own_periods(workspace, scenario):
    # given the metered feature and each account's effective entitlement
    calls = scenario["features"][2]
    effectives = effective_entitlements_for_accounts(
        workspace=workspace, feature=calls, account_ids=scenario["ids"], now=FROZEN_NOW
    )
    # when the payloads are built at once
    batch = entitlement_payloads(feature=calls, effectives=effectives, now=FROZEN_NOW)
    # then they equal the one-account payloads, used counting each account's own period
    single = {
        pk: entitlement_payload(feature=calls, effective=effectives[pk], account_id=pk, now=FROZEN_NOW)
        for pk in scenario["ids"]
    }
    assert batch == single
    used = [(batch[pk]["limit"], batch[pk]["used"], batch[pk]["entitled"]) for pk in scenario["ids"]]
    assert used == [
        (100, 7, True),
        (10, 12, False),
        (10, 0, True),
        (10, 4, True),
        (None, None, False),
        (10, 6, True),
        (None, None, False),
    ]


@pytest.mark.parametrize("quantity", [0, 5, 11])
def test_the_checks_single_query_answers_what_the_orm_selectors_answer(workspace, scenario, quantity):
    # given every account and feature of the scenario (overrides, an expired one, a trial, a cancelled
    # subscription, term and calendar periods, custom levels, a draft)
    for acct in scenario["accounts"].values():
        for feat in scenario["features"]:
            # when the check answers with its one query
            answer = entitlement_check(
                workspace=workspace,
                account_key=acct.external_id,
                feature_key=feat.key,
                now=FROZEN_NOW,
                quantity=quantity,
            )
            # then it is the answer built from the ORM's resolution
            effective = effective_entitlement(account_id=acct.pk, feature=feat, now=FROZEN_NOW)
            expected = entitlement_payload(
                feature=feat, effective=effective, account_id=acct.pk, now=FROZEN_NOW, quantity=quantity
            )
            assert answer == expected, (acct.external_id, feat.key)
    a1 = scenario["accounts"]["a1"]
    calls = entitlement_check(workspace=workspace, account_key=a1.external_id, feature_key="api-calls", now=FROZEN_NOW)
    # the higher grant is s1b's, so its term (started three days ago) sets the period
    assert (calls["limit"], calls["used"], calls["resets_at"]) == (100, 7, "2026-12-15T12:00:00Z")


def test_batch_for_every_feature_equals_the_single_account_list(workspace, scenario):
    # when every account's entitlements are resolved at once
    batch = effective_entitlements_by_account(workspace=workspace, account_ids=scenario["ids"], now=FROZEN_NOW)
    # then each equals the one-account list (draft features left out, by key)
    for pk in scenario["ids"]:
        assert batch[pk] == effective_entitlements(account_id=pk, workspace=workspace, now=FROZEN_NOW)
    a1 = scenario["accounts"]["a1"].pk
    assert [(f.key, e.value) for f, e in batch[a1]] == [("api-calls", "100"), ("seats", "50"), ("support", "bronze")]
    assert batch[scenario["accounts"]["a7"].pk] == []


def test_batch_query_count_does_not_grow_with_accounts(workspace, scenario, product):
    # given many more accounts on the team plan
    calls = scenario["features"][2]
    team = calls.item_entitlements.get(item__key="team").item
    extra = [account(workspace, f"x{i}") for i in range(30)]
    for i, acct in enumerate(extra):
        subscribe(workspace, acct, f"sx{i}", [team], term_start=FROZEN_NOW - timedelta(days=i))
    ids = scenario["ids"] + [a.pk for a in extra]
    calls = Feature.objects.get(pk=calls.pk)
    # when resolving and building payloads for all of them
    with CaptureQueriesContext(connection) as queries:
        effectives = effective_entitlements_for_accounts(
            workspace=workspace, feature=calls, account_ids=ids, now=FROZEN_NOW
        )
        payloads = entitlement_payloads(feature=calls, effectives=effectives, now=FROZEN_NOW)
    # then one query resolves and one sums the allowances (the prepared-cursor sum is not captured by Django)
    assert len(queries) == 1
    assert len(payloads) == 37 and payloads[extra[0].pk]["limit"] == 10


def test_batch_refuses_a_feature_of_another_workspace(workspace, other_workspace, scenario):
    # given a feature of another workspace
    from catalog.services import product_create

    other = feature(other_workspace, product_create(workspace=other_workspace, key="p", name="P"), "seats")
    # when resolved for this workspace's accounts / then refused, naming the feature
    with pytest.raises(NotFound, match="No feature 'seats'"):
        effective_entitlements_for_accounts(
            workspace=workspace, feature=other, account_ids=scenario["ids"], now=FROZEN_NOW
        )
    assert (
        effective_entitlements_for_accounts(
            workspace=workspace, feature=scenario["features"][0], account_ids=[], now=FROZEN_NOW
        )
        == {}
    )
    assert Effective(None) == effective_entitlement(
        account_id=scenario["accounts"]["a7"].pk, feature=scenario["features"][0], now=FROZEN_NOW
    )
