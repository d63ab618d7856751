from datetime import timedelta

import pytest
import time_machine

from catalog.services import feature_archive
from core.errors import Conflict, DomainError
from entitlements.models import ItemEntitlement
from entitlements.selectors import effective_entitlement, entitlement_check
from entitlements.services import item_entitlement_set, subscription_entitlement_set, subscription_update
from tests.conftest import FROZEN_NOW

from .factories import account, feature, plan, subscribe

pytestmark = pytest.mark.django_db


def _value(acct, feat):
    return effective_entitlement(account_id=acct.pk, feature=feat, now=FROZEN_NOW).value


def test_highest_level_across_items_and_subscriptions_wins(workspace, product):
    # given
    seats = feature(
        workspace,
        product,
        "seats",
        type="quantity",
        levels=[{"value": "5", "name": "5"}, {"value": "50", "name": "50"}, {"value": "500", "name": "500"}],
    )
    acct = account(workspace)
    team = plan(workspace, "team", {seats: "5"})
    addon = plan(workspace, "more-seats", {seats: "50"}, type="addon")
    business = plan(workspace, "business", {seats: "500"})
    subscribe(workspace, acct, "sub-1", [team, addon])
    # when / then
    assert _value(acct, seats) == "50"
    subscribe(workspace, acct, "sub-2", [business])
    assert _value(acct, seats) == "500"


def test_custom_levels_rank_by_their_order_and_unlimited_is_highest(workspace, product):
    # given
    support = feature(
        workspace,
        product,
        "support",
        type="custom",
        levels=[
            {"value": "email", "name": "E-mail"},
            {"value": "phone", "name": "Phone"},
            {"value": "dedicated", "name": "Dedicated"},
        ],
    )
    calls = feature(
        workspace,
        product,
        "calls",
        type="quantity",
        levels=[{"value": "1000", "name": "1k"}, {"value": "unlimited", "name": "∞", "is_unlimited": True}],
    )
    acct = account(workspace)
    subscribe(workspace, acct, "s1", [plan(workspace, "a", {support: "phone", calls: "unlimited"})])
    subscribe(workspace, acct, "s2", [plan(workspace, "b", {support: "email", calls: "1000"})])
    # when / then
    assert _value(acct, support) == "phone"
    assert _value(acct, calls) == "unlimited"


def test_switch_is_granted_if_any_item_grants_it(workspace, product):
    # given
    sso = feature(workspace, product, "sso")
    acct = account(workspace)
    subscribe(
        workspace,
        acct,
        "s1",
        [plan(workspace, "free", {sso: "false"}), plan(workspace, "pro", {sso: "true"})],
    )
    # when
    answer = entitlement_check(workspace=workspace, account_key="acct-1", feature_key="sso", now=FROZEN_NOW)
    # then
    assert answer == {
        "feature_id": "sso",
        "entitled": True,
        "type": "switch",
        "value": "true",
        "unlimited": False,
        "limit": None,
        "used": None,
        "remaining": None,
        "resets_at": None,
        "reason": None,
    }


def test_override_replaces_what_its_items_give_even_downwards(workspace, product):
    # given
    seats = feature(
        workspace,
        product,
        "seats",
        type="range",
        levels=[{"value": "1", "name": "min"}, {"value": "100", "name": "max"}],
    )
    acct = account(workspace)
    sub = subscribe(workspace, acct, "s1", [plan(workspace, "team", {seats: "40"})])
    # when
    subscription_entitlement_set(subscription=sub, feature=seats, value="12")
    # then
    assert _value(acct, seats) == "12"


def test_override_on_one_subscription_does_not_lower_another(workspace, product):
    # given
    sso = feature(workspace, product, "sso")
    acct = account(workspace)
    s1 = subscribe(workspace, acct, "s1", [plan(workspace, "pro", {sso: "true"})])
    subscribe(workspace, acct, "s2", [plan(workspace, "enterprise", {sso: "true"})])
    # when
    subscription_entitlement_set(subscription=s1, feature=sso, value="false")
    # then
    assert _value(acct, sso) == "true"


def test_expired_override_no_longer_counts(workspace, product):
    # given
    seats = feature(
        workspace,
        product,
        "seats",
        type="range",
        levels=[{"value": "1", "name": "min"}, {"value": "100", "name": "max"}],
    )
    acct = account(workspace)
    sub = subscribe(workspace, acct, "s1", [plan(workspace, "team", {seats: "10"})])
    subscription_entitlement_set(
        subscription=sub, feature=seats, value="90", expires_at=FROZEN_NOW + timedelta(hours=1)
    )
    # when / then
    assert effective_entitlement(account_id=acct.pk, feature=seats, now=FROZEN_NOW).value == "90"
    later = FROZEN_NOW + timedelta(hours=1)
    assert effective_entitlement(account_id=acct.pk, feature=seats, now=later).value == "10"


def test_override_adds_a_feature_no_item_grants(workspace, product):
    # given
    sso = feature(workspace, product, "sso")
    acct = account(workspace)
    sub = subscribe(workspace, acct, "s1", [plan(workspace, "free", {})])
    # when
    subscription_entitlement_set(subscription=sub, feature=sso, value="true")
    # then
    assert _value(acct, sso) == "true"


def test_cancelled_subscriptions_grant_nothing_and_trials_do(workspace, product):
    # given
    sso = feature(workspace, product, "sso")
    acct = account(workspace)
    sub = subscribe(workspace, acct, "s1", [plan(workspace, "pro", {sso: "true"})], status="in_trial")
    assert _value(acct, sso) == "true"
    # when
    subscription_update(subscription=sub, status="cancelled")
    # then
    assert _value(acct, sso) is None
    answer = entitlement_check(workspace=workspace, account_key="acct-1", feature_key="sso", now=FROZEN_NOW)
    assert (answer["entitled"], answer["reason"]) == (False, "not_entitled")


def test_draft_features_grant_nothing(workspace, product):
    # given
    beta = feature(workspace, product, "beta", active=False)
    acct = account(workspace)
    subscribe(workspace, acct, "s1", [plan(workspace, "pro", {beta: "true"})])
    # when
    answer = entitlement_check(workspace=workspace, account_key="acct-1", feature_key="beta", now=FROZEN_NOW)
    # then
    assert (answer["entitled"], answer["value"], answer["reason"]) == (False, None, "not_entitled")


def test_archived_feature_keeps_existing_entitlements_and_refuses_new_ones(workspace, product):
    # given
    sso = feature(workspace, product, "sso")
    acct = account(workspace)
    pro = plan(workspace, "pro", {sso: "true"})
    other = plan(workspace, "other", {})
    subscribe(workspace, acct, "s1", [pro])
    feature_archive(feature=sso)
    # when
    with pytest.raises(Conflict) as err:
        item_entitlement_set(item=other, feature=sso, value="true")
    # then
    assert err.value.code == "feature_archived"
    assert "accepts no new ones" in err.value.message
    assert list(ItemEntitlement.objects.filter(feature=sso).values_list("item__key", flat=True)) == ["pro"]
    assert _value(acct, sso) == "true"


@pytest.mark.parametrize(
    ("kind", "levels", "bad", "message"),
    [
        ("switch", [], "yes", 'must be "true" or "false"'),
        ("custom", [{"value": "email", "name": "E"}], "phone", "must be one of its levels (email)"),
        ("quantity", [{"value": "10", "name": "10"}], "11", "must be one of its levels (10)"),
        ("quantity", [{"value": "10", "name": "10"}], "unlimited", "has no unlimited level"),
        ("quantity", [{"value": "10", "name": "10"}], "ten", "must be a whole number"),
        ("range", [{"value": "1", "name": "min"}, {"value": "5", "name": "max"}], "6", "between 1 and 5"),
        ("range", [{"value": "1", "name": "min"}, {"value": "5", "name": "max"}], "0", "between 1 and 5"),
    ],
)
def test_bad_values_are_refused_and_nothing_changes(workspace, product, kind, levels, bad, message):
    # given
    feat = feature(workspace, product, f"f-{kind}", type=kind, levels=levels)
    item = plan(workspace, "pro", {})
    # when
    with pytest.raises(DomainError) as err:
        item_entitlement_set(item=item, feature=feat, value=bad)
    # then
    assert err.value.field == "value"
    assert err.value.code == "invalid_value"
    assert message in err.value.message
    assert ItemEntitlement.objects.count() == 0


def test_range_with_unlimited_max_accepts_any_number_above_min_and_unlimited(workspace, product):
    # given
    feat = feature(
        workspace,
        product,
        "users",
        type="range",
        levels=[{"value": "2", "name": "min"}, {"value": "unlimited", "name": "max", "is_unlimited": True}],
    )
    item = plan(workspace, "pro", {})
    # when
    first = item_entitlement_set(item=item, feature=feat, value=5000).value
    second = item_entitlement_set(item=item, feature=feat, value="Unlimited").value
    # then
    assert (first, second) == ("5000", "unlimited")


@time_machine.travel(FROZEN_NOW, tick=False)
def test_check_of_unknown_account_and_feature_answers_with_a_reason(workspace, product):
    # given
    feature(workspace, product, "sso")
    account(workspace)
    # when
    unknown_account = entitlement_check(workspace=workspace, account_key="nobody", feature_key="sso", now=FROZEN_NOW)
    unknown_feature = entitlement_check(workspace=workspace, account_key="acct-1", feature_key="nope", now=FROZEN_NOW)
    # then
    assert (unknown_account["entitled"], unknown_account["reason"], unknown_account["type"]) == (
        False,
        "unknown_account",
        "switch",
    )
    assert (unknown_feature["entitled"], unknown_feature["reason"], unknown_feature["type"]) == (
        False,
        "unknown_feature",
        None,
    )
