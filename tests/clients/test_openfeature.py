"""uptake_client.openfeature.UptakeProvider through openfeature-sdk's own client API, against a real Uptake
server: the value of each flag type, reasons, and the error codes."""

import sys
import time

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from uptake_client.openfeature import UptakeProvider

from tests.clients.conftest import drop_connections, wait_for
from tests.conftest import database_unreachable
from tests.entitlements.factories import account, feature, metered, plan, subscribe

pytestmark = pytest.mark.django_db(transaction=True)
ACME = EvaluationContext(targeting_key="acme")


@pytest.fixture
def granted(workspace, product):
    calls = metered(workspace, product, period="month")
    sso = feature(workspace, product, "sso")
    seats = feature(workspace, product, "seats", type="quantity", levels=[{"value": "5", "name": "5"}])
    storage = feature(
        workspace,
        product,
        "storage",
        type="quantity",
        levels=[{"value": "10", "name": "10"}, {"value": "unlimited", "name": "Unlimited", "is_unlimited": True}],
    )
    tier = feature(
        workspace,
        product,
        "support",
        type="custom",
        levels=[{"value": "email", "name": "E-mail"}, {"value": "phone", "name": "Phone"}],
    )
    feature(workspace, product, "audit-log")  # granted by no plan
    acct = account(workspace, "acme")
    grants = {calls: "10", sso: "true", seats: "5", storage: "unlimited", tier: "phone"}
    subscribe(workspace, acct, "s1", [plan(workspace, "team", grants)])
    return acct


@pytest.fixture
def flags(make_uptake):
    """An OpenFeature client whose provider is an UptakeProvider (and the Uptake client behind it)."""
    uptake = make_uptake()
    api.set_provider(UptakeProvider(uptake), "uptake-test")
    yield api.get_client("uptake-test"), uptake
    api.clear_providers()


def test_boolean_flags_resolve_to_entitled(flags, granted):
    # given
    client, _ = flags
    # when
    sso = client.get_boolean_details("sso", False, ACME)
    again = client.get_boolean_details("sso", False, ACME)
    audit = client.get_boolean_details("audit-log", True, ACME)
    # then
    assert (sso.value, sso.reason, sso.error_code, sso.variant) == (True, Reason.TARGETING_MATCH, None, "entitled")
    assert (again.value, again.reason) == (True, Reason.CACHED)
    assert (audit.value, audit.reason, audit.variant) == (False, Reason.TARGETING_MATCH, "not_entitled")


def test_integer_flags_resolve_to_the_remaining_allowance_or_the_limit(flags, granted, make_uptake):
    # given 4 of 10 api-calls used
    client, uptake = flags
    uptake.track("acme", "api-calls", quantity=4)
    assert uptake.flush(timeout=10)
    api.set_provider(UptakeProvider(make_uptake(), integer_value="limit"), "limit-test")
    # when
    remaining = client.get_integer_details("api-calls", -1, ACME)
    limit = api.get_client("limit-test").get_integer_value("api-calls", -1, ACME)
    seats = client.get_integer_value("seats", -1, ACME)
    storage = client.get_integer_value("storage", -1, ACME)
    audit = client.get_integer_value("audit-log", -1, ACME)
    ratio = client.get_float_value("api-calls", -1.0, ACME)
    # then
    assert (remaining.value, remaining.reason, remaining.error_code) == (6, Reason.TARGETING_MATCH, None)
    assert (limit, seats, storage, audit, ratio) == (10, 5, sys.maxsize, 0, 6.0)


def test_an_integer_flag_on_a_switch_feature_is_a_type_mismatch(flags, granted):
    # when
    details = flags[0].get_integer_details("sso", 7, ACME)
    # then
    assert (details.value, details.error_code, details.reason) == (7, ErrorCode.TYPE_MISMATCH, Reason.ERROR)


def test_string_and_object_flags(flags, granted):
    # given
    client, _ = flags
    # when
    support = client.get_string_details("support", "none", ACME)
    audit = client.get_string_value("audit-log", "none", ACME)
    whole = client.get_object_value("api-calls", {}, ACME)
    # then
    assert (support.value, support.reason) == ("phone", Reason.TARGETING_MATCH)
    assert audit == "none"
    assert {k: whole[k] for k in ("feature_id", "entitled", "limit", "used", "remaining")} == {
        "feature_id": "api-calls",
        "entitled": True,
        "limit": 10,
        "used": 0,
        "remaining": 10,
    }


def test_unknown_features_unknown_accounts_and_missing_targeting_keys(flags, granted):
    # given
    client, _ = flags
    # when
    unknown_feature = client.get_boolean_details("no-such-feature", True, ACME)
    unknown_account = client.get_boolean_details("sso", True, EvaluationContext(targeting_key="nobody"))
    no_key = client.get_boolean_details("sso", True, EvaluationContext())
    # then
    assert (unknown_feature.value, unknown_feature.error_code, unknown_feature.reason) == (
        True,
        ErrorCode.FLAG_NOT_FOUND,
        Reason.ERROR,
    )
    assert (unknown_account.value, unknown_account.reason, unknown_account.error_code) == (False, Reason.STATIC, None)
    assert (no_key.value, no_key.error_code, no_key.reason) == (True, ErrorCode.TARGETING_KEY_MISSING, Reason.ERROR)


def test_a_network_failure_gives_the_stale_value_where_cached_else_the_default(granted, make_uptake):
    # given a provider whose cached answers have expired, and a database that does not answer
    uptake = make_uptake(cache_ttl=0.05, refresh_ahead=0.0)
    api.set_provider(UptakeProvider(uptake), "outage-test")
    client = api.get_client("outage-test")
    try:
        assert client.get_integer_value("api-calls", -1, ACME) == 10
        wait_for(lambda: all(e.fresh_until < time.monotonic() for e in uptake._cache.values()), what="the TTL")
        drop_connections(uptake)
        with database_unreachable():
            # when
            stale = client.get_integer_details("api-calls", -1, ACME)
            nothing = client.get_boolean_details("sso", True, ACME)
        # then
        assert (stale.value, stale.error_code, stale.reason) == (10, None, Reason.STALE)
        assert stale.flag_metadata == {"source": "stale", "stale": True}
        assert "503" in stale.error_message
        assert (nothing.value, nothing.error_code, nothing.reason) == (True, ErrorCode.GENERAL, Reason.ERROR)
    finally:
        api.clear_providers()
