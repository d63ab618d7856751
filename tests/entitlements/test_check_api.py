"""`GET /api/v1/entitlements/check` over HTTP: the fast path (below DRF) answers byte for byte as the DRF view
does, and every request it does not serve (bad keys, scopes, parameters, methods, Accept, a database outage)
gets the DRF view's error, with nothing stored."""

import time
from unittest import mock

import pytest
import time_machine
from django.db import connection, connections
from rest_framework.test import APIRequestFactory

from accounts.services import api_key_revoke
from entitlements.api import EntitlementCheckView
from entitlements.models import AllowanceUsageDaily, Subscription
from tests.conftest import FROZEN_NOW, database_unreachable, key_client
from tests.entitlements.factories import account, feature, team_account
from usage.models import UsageEvent

URL = "/api/v1/entitlements/check"


@pytest.fixture
def granted(workspace, product):
    return team_account(workspace, product, "acme-corp")


def _drf_view_answer(raw_key: str, params: dict):
    """The same request answered by the DRF view alone (APIRequestFactory, no fast path)."""
    request = APIRequestFactory().get(URL, params, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    response = EntitlementCheckView.as_view()(request)
    response.render()
    return response


@time_machine.travel(FROZEN_NOW, tick=False)
@pytest.mark.parametrize(
    "params",
    [
        {"account_id": "acme-corp", "feature_id": "api-calls"},
        {"account_id": "acme-corp", "feature_id": "api-calls", "quantity": "10"},
        {"account_id": "acme-corp", "feature_id": "api-calls", "quantity": "11"},
        {"account_id": "acme-corp", "feature_id": "sso"},
        {"account_id": "acme-corp", "feature_id": "seats"},
        {"account_id": " acme-corp ", "feature_id": "sso "},
        {"account_id": "ghost", "feature_id": "sso"},
        {"account_id": "acme-corp", "feature_id": "ghost"},
    ],
)
def test_fast_answer_is_the_drf_views_answer_byte_for_byte(workspace, make_key, granted, params):
    # given
    _, raw = make_key(workspace, "read")
    client = key_client(raw)
    # when
    fast = client.get(URL, params)
    slow = _drf_view_answer(raw, params)
    # then
    assert (fast.status_code, fast["Content-Type"], fast["Allow"]) == (200, "application/json", "GET, HEAD, OPTIONS")
    assert fast.content == slow.content
    assert (slow.status_code, slow["Content-Type"]) == (200, "application/json")
    assert {name: fast[name] for name in ("Allow", "Vary") if name in fast} == {
        name: slow[name] for name in ("Allow", "Vary") if name in slow
    }


@time_machine.travel(FROZEN_NOW, tick=False)
@pytest.mark.parametrize(
    "params",
    [
        {"account_id": "acme-corp", "feature_id": "api-calls", "quantity": "11"},
        {"account_id": "acme-corp", "feature_id": "sso"},
        {"account_id": "ghost", "feature_id": "sso"},
        {"account_id": "acme-corp", "feature_id": "sso", "quantity": "3.0"},
        {"account_id": "acme-corp", "feature_id": "sso", "quantity": "-1"},
        {"feature_id": "sso"},
    ],
)
def test_with_fast_paths_off_the_whole_answer_is_the_same(api, granted, settings, params):
    # when: through the whole stack, with UPTAKE_FAST_PATHS on and off
    answers = []
    for fast in (True, False):
        settings.UPTAKE_FAST_PATHS = fast
        with mock.patch.object(
            EntitlementCheckView, "get", autospec=True, side_effect=EntitlementCheckView.get
        ) as view:
            response = api.get(URL, params)
        answers.append((response.status_code, dict(response.headers), response.content, view.call_count))
    # then: the same status, headers and bytes; with fast paths off the DRF view answered
    (fast_status, fast_headers, fast_body, _), (slow_status, slow_headers, slow_body, slow_calls) = answers
    assert (fast_status, fast_headers, fast_body) == (slow_status, slow_headers, slow_body)
    assert slow_calls == 1


@time_machine.travel(FROZEN_NOW, tick=False)
def test_fast_answer_for_a_metered_feature_has_exact_values(api, granted):
    # when: the DRF view is out of the way, so the answer can only come from the fast path
    with mock.patch.object(EntitlementCheckView, "get", side_effect=AssertionError("not the fast path")):
        body = api.get(URL, {"account_id": "acme-corp", "feature_id": "api-calls", "quantity": "11"}).json()
    # then
    assert body == {
        "feature_id": "api-calls",
        "entitled": False,
        "type": "quantity",
        "value": "10",
        "unlimited": False,
        "limit": 10,
        "used": 0,
        "remaining": 10,
        "resets_at": "2026-12-01T00:00:00Z",
        "reason": "limit_exceeded",
    }


def _nothing_stored() -> tuple[int, int, int]:
    return UsageEvent.objects.count(), AllowanceUsageDaily.objects.count(), Subscription.objects.count()


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"feature_id": "sso"}, "account_id", "required"),
        ({"account_id": "acme-corp"}, "feature_id", "required"),
        ({"account_id": "   ", "feature_id": "sso"}, "account_id", "blank"),
        ({"account_id": "a" * 65, "feature_id": "sso"}, "account_id", "max_length"),
        ({"account_id": "acme-corp", "feature_id": "sso\x00"}, "feature_id", "null_characters_not_allowed"),
        ({"account_id": "acme-corp", "feature_id": "sso", "quantity": "-1"}, "quantity", "min_value"),
        ({"account_id": "acme-corp", "feature_id": "sso", "quantity": "lots"}, "quantity", "invalid"),
        ({"account_id": "acme-corp", "feature_id": "sso", "quantity": "1000000001"}, "quantity", "max_value"),
    ],
)
def test_bad_parameters_get_the_views_400_and_change_nothing(api, granted, params, field, code):
    # given
    before = _nothing_stored()
    # when
    response = api.get(URL, params)
    # then
    assert response.status_code == 400
    assert (response.json()["error"]["field"], response.json()["error"]["code"]) == (field, code)
    assert _nothing_stored() == before


def test_parameters_the_serializer_coerces_are_answered_as_the_view_does(api, granted):
    # when: "3.0" and "" are quantities DRF's IntegerField reads as 3 and the default 0
    decimal = api.get(URL, {"account_id": "acme-corp", "feature_id": "seats", "quantity": "3.0"})
    empty = api.get(URL, {"account_id": "acme-corp", "feature_id": "seats", "quantity": ""})
    over = api.get(URL, {"account_id": "acme-corp", "feature_id": "seats", "quantity": "6.0"})
    # then
    assert (decimal.status_code, decimal.json()["entitled"]) == (200, True)
    assert (empty.status_code, empty.json()["entitled"]) == (200, True)
    assert (over.status_code, over.json()["reason"]) == (200, "limit_exceeded")


def test_keys_scopes_methods_and_accept_get_the_views_errors(workspace, make_client, make_key, granted):
    # given
    from rest_framework.test import APIClient

    params = {"account_id": "acme-corp", "feature_id": "sso"}
    anonymous = APIClient()
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer upt_000000000000_nope")
    malformed = APIClient()
    malformed.credentials(HTTP_AUTHORIZATION="Token abc")
    revoked_key, revoked_raw = make_key(workspace, "read")
    api_key_revoke(workspace=workspace, prefix=revoked_key.prefix)
    revoked = key_client(revoked_raw)
    ingest_only = make_client(workspace, "ingest")
    reader = make_client(workspace, "read")
    before = _nothing_stored()
    # when
    answers = {
        "anonymous": anonymous.get(URL, params),
        "wrong": wrong.get(URL, params),
        "malformed": malformed.get(URL, params),
        "revoked": revoked.get(URL, params),
        "ingest_only": ingest_only.get(URL, params),
        "post": reader.post(URL, params, format="json"),
        "html": reader.get(URL, params, HTTP_ACCEPT="text/html"),
    }
    # then
    assert {name: r.status_code for name, r in answers.items()} == {
        "anonymous": 401,
        "wrong": 401,
        "malformed": 401,
        "revoked": 401,
        "ingest_only": 403,
        "post": 405,
        "html": 406,
    }
    assert answers["revoked"].json()["error"]["message"] == "This API key has been revoked."
    assert answers["ingest_only"].json()["error"]["message"] == "This API key lacks the 'read' scope."
    assert reader.get(URL, params, HTTP_ACCEPT="application/json").json()["entitled"] is True
    assert _nothing_stored() == before


def test_another_workspaces_key_sees_unknown_account(other_workspace, make_client, granted):
    # when
    body = make_client(other_workspace, "read").get(URL, {"account_id": "acme-corp", "feature_id": "sso"}).json()
    # then
    assert (body["entitled"], body["reason"]) == (False, "unknown_feature")


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_is_503_even_with_the_key_cached(workspace, make_client, settings, product):
    # given a check answered once (the key is now cached in this process), then the database moved away
    feature(workspace, product, "sso")
    account(workspace, "acme-corp")
    client = make_client(workspace, "read")
    params = {"account_id": "acme-corp", "feature_id": "sso"}
    assert client.get(URL, params).status_code == 200
    # when
    with database_unreachable():
        response = client.get(URL, params)
    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.UPTAKE_RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "database_unavailable"


@pytest.mark.django_db(transaction=True)
def test_health_check_sees_a_connection_the_server_ended_without_a_query(workspace):
    # given an idle connection, healthy, then ended by the server from another session
    connection.ensure_connection()
    assert connection.is_usable() is True
    pid = connection.connection.info.backend_pid
    with connection.connection.cursor() as probe:
        probe.execute("SELECT 1")
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            ended = cursor.fetchone()[0]
            # the server's goodbye is on the socket once the backend has exited
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.01)
    finally:
        other.close()
    # when
    usable = connection.is_usable()
    # then
    assert ended is True
    assert usable is False
    connection.close()
    connection.ensure_connection()
    assert connection.is_usable() is True
