"""uptake_client's check (TTL cache, background refresh, stale or default answers when Uptake cannot
answer), entitlements(), record() and identify_* against a real Uptake server."""

import time

import pytest
from uptake_client import APIError, ConnectionFailed, Entitlement

from accounts.models import Account, EndUser
from entitlements.models import Subscription
from tests.clients.conftest import RecordingTransport, drop_connections, wait_for
from tests.conftest import database_unreachable
from tests.entitlements.factories import team_account
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def granted(workspace, product):
    return team_account(workspace, product, "acme")


def check_requests(transport: RecordingTransport) -> int:
    return sum(1 for r in transport.requests if r.url.path == "/api/v1/entitlements/check")


def test_check_answers_from_the_cache_within_its_ttl(make_uptake, granted):
    # given
    transport = RecordingTransport()
    uptake = make_uptake(transport=transport)
    # when
    first = uptake.check("acme", "sso")
    second = uptake.check("acme", "sso")
    # then
    assert first == Entitlement(account_id="acme", feature_id="sso", entitled=True, type="switch", value="true")
    assert (first.source, second.source, second.entitled) == ("server", "cache", True)
    assert check_requests(transport) == 1


def test_a_metered_answer_and_quantities_match_the_servers_check(make_uptake, granted, api):
    # given 7 of the 10 api-calls used
    uptake = make_uptake()
    uptake.track("acme", "api-calls", quantity=7)
    assert uptake.flush(timeout=10)
    answer = uptake.check("acme", "api-calls")
    # then the cached answer, asked for each quantity, is what the server answers for it
    assert (answer.limit, answer.used, answer.remaining, answer.resets_at is not None) == (10, 7, 3, True)
    for quantity in range(6):
        server = api.get(
            "/api/v1/entitlements/check", {"account_id": "acme", "feature_id": "api-calls", "quantity": quantity}
        )
        mine = uptake.check("acme", "api-calls", quantity)
        assert (mine.entitled, mine.reason) == (server.json()["entitled"], server.json()["reason"]), quantity
        seats = api.get(
            "/api/v1/entitlements/check", {"account_id": "acme", "feature_id": "seats", "quantity": quantity}
        )
        mine = uptake.check("acme", "seats", quantity)
        assert (mine.entitled, mine.reason) == (seats.json()["entitled"], seats.json()["reason"]), quantity


def test_an_expired_answer_is_asked_again(make_uptake, granted):
    # given an answer cached for 0.2 s, then the subscription cancelled
    uptake = make_uptake(cache_ttl=0.2, refresh_ahead=0.0)
    assert uptake.check("acme", "sso").entitled is True
    Subscription.objects.filter(external_id="s1").update(status="cancelled")
    # then the cache answers until the TTL passes, and Uptake after it
    answer = wait_for(lambda: (a := uptake.check("acme", "sso")).entitled is False and a, what="the new answer")
    assert (answer.source, answer.reason) == ("server", "not_entitled")


def test_an_answer_is_refreshed_in_the_background_before_it_expires(make_uptake, granted):
    # given a 30 s TTL whose last 99 % is the refresh window
    transport = RecordingTransport()
    uptake = make_uptake(cache_ttl=30, refresh_ahead=0.99, transport=transport)
    assert uptake.check("acme", "sso").entitled is True
    Subscription.objects.filter(external_id="s1").update(status="cancelled")
    # when checks go on: the first in the window starts a refresh, and every answer still comes from the cache
    answer = wait_for(lambda: (a := uptake.check("acme", "sso")).entitled is False and a, what="the refresh")
    # then
    assert (answer.source, answer.reason) == ("cache", "not_entitled")
    assert check_requests(transport) == 2


def test_when_uptake_cannot_answer_the_last_value_is_answered_stale(make_uptake, granted):
    # given a cached answer that has expired, and a database that does not answer (the API answers 503)
    uptake = make_uptake(cache_ttl=0.05, refresh_ahead=0.0)
    assert uptake.check("acme", "api-calls").remaining == 10
    wait_for(lambda: uptake._cache[("acme", "api-calls")].fresh_until < time.monotonic(), what="the TTL")
    drop_connections(uptake)
    with database_unreachable():
        # when
        answer = uptake.check("acme", "api-calls")
        again = uptake.check("acme", "api-calls", 11)
        # then
        assert (answer.source, answer.stale, answer.entitled, answer.remaining) == ("stale", True, True, 10)
        assert "503" in answer.error
        assert (again.source, again.entitled, again.reason) == ("stale", False, "limit_exceeded")
        # and with nothing cached: the default, or an error when asked for one
        assert uptake.check("acme", "sso").source == "default"
        assert uptake.check("acme", "sso").entitled is False
        assert uptake.check("acme", "sso", default=True).entitled is True
        with pytest.raises(ConnectionFailed):
            uptake.check("acme", "sso", raise_errors=True)


def test_a_client_with_no_server_answers_its_default_and_never_raises(ingest_key):
    # given
    from uptake_client import Uptake

    uptake = Uptake(api_key=ingest_key, host="http://127.0.0.1:9", default_entitled=True)
    # when
    answer = uptake.check("acme", "sso")
    # then
    assert (answer.entitled, answer.source, answer.stale) == (True, "default", True)
    assert "ConnectError" in answer.error
    uptake.shutdown()


def test_entitlements_fetches_an_account_in_one_request_and_fills_the_cache(make_uptake, granted):
    # given
    transport = RecordingTransport()
    uptake = make_uptake(transport=transport)
    # when
    answers = uptake.entitlements("acme")
    checks = [uptake.check("acme", key) for key in ("api-calls", "seats", "sso")]
    # then
    assert sorted(answers) == ["api-calls", "seats", "sso"]
    assert (answers["seats"].value, answers["api-calls"].limit, answers["sso"].entitled) == ("5", 10, True)
    assert [c.source for c in checks] == ["cache"] * 3
    assert [r.url.path for r in transport.requests] == ["/api/v1/accounts/acme/entitlements"]


def test_record_retried_with_its_event_id_returns_the_first_outcome(make_uptake, granted):
    # given
    uptake = make_uptake()
    # when the same recording is sent twice (as a retry after a timeout would)
    first = uptake.record("acme", "api-calls", 10, event_id="rec-1")
    again = uptake.record("acme", "api-calls", 10, event_id="rec-1")
    over = uptake.record("acme", "api-calls", 1)
    # then it is recorded once, and the replay answers the first outcome
    assert (first.recorded, first.reason, first.entitlement.used, first.entitlement.remaining) == (True, None, 10, 0)
    assert (again.recorded, again.entitlement.used) == (True, 10)
    assert (over.recorded, over.reason) == (False, "limit_exceeded")
    assert list(UsageEvent.objects.values_list("event_id", "quantity")) == [("rec-1", 10)]
    assert uptake.check("acme", "api-calls").remaining == 0  # the cache took the latest answer


def test_record_refused_by_the_server_raises_without_retrying(make_uptake, granted):
    # given
    transport = RecordingTransport()
    uptake = make_uptake(transport=transport)
    # when
    with pytest.raises(APIError) as raised:
        uptake.record("acme", "api-calls", 0)
    # then
    assert (raised.value.status_code, raised.value.code) == (400, "invalid_value")
    assert len(transport.requests) == 1
    assert UsageEvent.objects.count() == 0


def test_identify_account_and_user_percent_encode_their_ids(make_uptake, workspace):
    # given ids with characters that mean something in a URL (None clears a text field: stored as "")
    uptake = make_uptake()
    account_id, user_id = "org/1 acme #1?x=%", "jane@acme.com/#2"
    # when
    stored = uptake.identify_account(account_id, name="Acme", domain="acme.com", plan="pro", attributes={"tier": 1})
    user = uptake.identify_user(account_id, user_id, email="jane@acme.com")
    updated = uptake.identify_account(account_id, plan=None)
    # then
    assert (stored["id"], stored["name"], stored["plan"], updated["plan"], updated["name"]) == (
        account_id,
        "Acme",
        "pro",
        "",
        "Acme",
    )
    assert (user["id"], user["account_id"], user["email"]) == (user_id, account_id, "jane@acme.com")
    acct = Account.objects.get(workspace=workspace, external_id=account_id)
    assert (acct.domain, acct.attributes) == ("acme.com", {"tier": 1})
    assert EndUser.objects.get(account=acct).external_id == user_id


def test_identify_with_an_unknown_field_value_is_an_api_error(make_uptake, workspace):
    # given
    uptake = make_uptake()
    # when
    with pytest.raises(APIError) as raised:
        uptake.identify_account("acme", status="sleeping")
    # then
    assert raised.value.status_code == 400
    assert not Account.objects.filter(external_id="acme").exists()
