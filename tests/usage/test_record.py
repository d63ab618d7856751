import threading

import pytest
import time_machine
from django.db import connection

from entitlements.models import AllowanceUsageDaily, RecordOutcome
from tests.conftest import FROZEN_NOW, key_client
from tests.entitlements.factories import account, feature, metered, plan, subscribe
from usage.models import UsageEvent

URL = "/api/v1/usage/record"


@pytest.fixture
def setup(workspace, product):
    calls = metered(
        workspace,
        product,
        period="month",
        levels=[{"value": "10", "name": "10"}, {"value": "100", "name": "100"}],
    )
    sso = feature(workspace, product, "sso")
    acct = account(workspace)
    subscribe(workspace, acct, "s1", [plan(workspace, "team", {calls: "10"})])
    return calls, sso, acct


@time_machine.travel(FROZEN_NOW, tick=False)
def test_record_within_the_limit_is_stored_and_counted(api, setup):
    # given
    calls, _, acct = setup
    # when
    response = api.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 4}, format="json")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["recorded"] is True
    assert "reason" not in body
    assert body["entitlement"] == {
        "feature_id": "api-calls",
        "entitled": True,
        "type": "quantity",
        "value": "10",
        "unlimited": False,
        "limit": 10,
        "used": 4,
        "remaining": 6,
        "resets_at": "2026-12-01T00:00:00Z",
        "reason": None,
    }
    event = UsageEvent.objects.get()
    assert (event.quantity, event.source, event.account_id) == (4, "record", acct.pk)


@time_machine.travel(FROZEN_NOW, tick=False)
def test_record_past_the_limit_is_refused_and_nothing_is_stored(api, setup):
    # given
    api.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 8}, format="json")
    # when
    response = api.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 3}, format="json")
    # then
    body = response.json()
    assert (response.status_code, body["recorded"], body["reason"]) == (200, False, "limit_exceeded")
    assert (body["entitlement"]["used"], body["entitlement"]["remaining"]) == (8, 2)
    assert list(UsageEvent.objects.values_list("quantity", flat=True)) == [8]


@time_machine.travel(FROZEN_NOW, tick=False)
def test_negative_quantities_are_always_recorded(api, setup, workspace, product):
    # given: a feature the account is not entitled to
    feature(
        workspace,
        product,
        "exports",
        type="quantity",
        levels=[{"value": "5", "name": "5"}],
        metered=True,
        reset_period="day",
    )
    # when
    response = api.post(URL, {"account_id": "acct-1", "feature_id": "exports", "quantity": -2}, format="json")
    # then
    assert response.json()["recorded"] is True
    assert list(UsageEvent.objects.values_list("quantity", flat=True)) == [-2]


@time_machine.travel(FROZEN_NOW, tick=False)
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"account_id": "nobody", "feature_id": "api-calls", "quantity": 1}, "unknown_account"),
        ({"account_id": "acct-1", "feature_id": "nothing", "quantity": 1}, "unknown_feature"),
        ({"account_id": "acct-1", "feature_id": "sso", "quantity": 1}, "not_entitled"),
    ],
)
def test_refusals_name_their_reason_and_store_nothing(api, setup, body, reason):
    # when
    response = api.post(URL, body, format="json")
    # then
    assert response.status_code == 200
    assert (response.json()["recorded"], response.json()["reason"]) == (False, reason)
    assert response.json()["entitlement"]["reason"] == reason
    assert UsageEvent.objects.count() == 0
    assert AllowanceUsageDaily.objects.count() == 0


@time_machine.travel(FROZEN_NOW, tick=False)
def test_replaying_an_event_id_returns_the_original_outcome_and_records_nothing(api, setup):
    # given
    first = api.post(
        URL,
        {"event_id": "e-1", "account_id": "acct-1", "feature_id": "api-calls", "quantity": 6},
        format="json",
    ).json()
    refused = api.post(
        URL,
        {"event_id": "e-2", "account_id": "acct-1", "feature_id": "api-calls", "quantity": 6},
        format="json",
    ).json()
    # when
    replay_first = api.post(
        URL,
        {"event_id": "e-1", "account_id": "acct-1", "feature_id": "api-calls", "quantity": 6},
        format="json",
    ).json()
    api.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": -6}, format="json")
    replay_refused = api.post(
        URL,
        {"event_id": "e-2", "account_id": "acct-1", "feature_id": "api-calls", "quantity": 6},
        format="json",
    ).json()
    # then
    assert replay_first == first
    assert replay_refused == refused
    assert refused["reason"] == "limit_exceeded"
    assert sorted(UsageEvent.objects.values_list("quantity", flat=True)) == [-6, 6]
    assert RecordOutcome.objects.count() == 2


@time_machine.travel(FROZEN_NOW, tick=False)
def test_bad_input_is_refused_with_the_field_named(api, setup):
    # when
    zero = api.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 0}, format="json")
    future = api.post(
        URL,
        {
            "account_id": "acct-1",
            "feature_id": "api-calls",
            "quantity": 1,
            "timestamp": "2026-11-18T13:00:00Z",
        },
        format="json",
    )
    extra = api.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "qty": 1}, format="json")
    # then
    assert (zero.status_code, zero.json()["error"]["field"]) == (400, "quantity")
    assert (future.status_code, future.json()["error"]["code"], future.json()["error"]["field"]) == (
        400,
        "in_future",
        "timestamp",
    )
    assert (extra.status_code, extra.json()["error"]["field"]) == (400, "qty")
    assert UsageEvent.objects.count() == 0


@time_machine.travel(FROZEN_NOW, tick=False)
def test_late_event_is_checked_and_counted_in_its_own_period(api, setup):
    # given: October is full
    api.post(
        URL,
        {
            "account_id": "acct-1",
            "feature_id": "api-calls",
            "quantity": 10,
            "timestamp": "2026-10-30T09:00:00Z",
        },
        format="json",
    )
    # when
    late = api.post(
        URL,
        {
            "account_id": "acct-1",
            "feature_id": "api-calls",
            "quantity": 1,
            "timestamp": "2026-10-31T09:00:00Z",
        },
        format="json",
    ).json()
    now = api.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 10}, format="json").json()
    # then
    assert (late["recorded"], late["reason"]) == (False, "limit_exceeded")
    assert now["recorded"] is True
    assert now["entitlement"]["used"] == 10


def test_record_needs_the_ingest_scope(workspace, make_client, setup):
    # given
    client = make_client(workspace, "read")
    # when
    response = client.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 1}, format="json")
    # then
    assert response.status_code == 403
    assert UsageEvent.objects.count() == 0


def _parallel(target, count: int) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_records_against_a_limit_of_ten_record_exactly_ten(workspace, product, make_key):
    # given
    calls = metered(workspace, product, period="day", levels=[{"value": "10", "name": "10"}])
    acct = account(workspace)
    subscribe(workspace, acct, "s1", [plan(workspace, "team", {calls: "10"})])
    _, raw = make_key(workspace, "ingest,read")

    def record(index: int) -> bool:
        client = key_client(raw)
        response = client.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 1}, format="json")
        assert response.status_code == 200, response.content
        return response.json()["recorded"]

    # when
    results = _parallel(record, 50)
    # then
    assert results.count(True) == 10
    assert results.count(False) == 40
    assert UsageEvent.objects.filter(feature=calls).count() == 10
    client = key_client(raw)
    check = client.get("/api/v1/entitlements/check", {"account_id": "acct-1", "feature_id": "api-calls"}).json()
    assert (check["used"], check["remaining"], check["entitled"], check["reason"]) == (10, 0, True, None)


@pytest.mark.django_db(transaction=True)
def test_concurrent_events_and_records_keep_used_equal_to_the_stored_events(workspace, product, make_key):
    # given
    from django.utils import timezone

    from accounts.models import Workspace
    from usage.services import events_ingest

    calls = metered(workspace, product, period="none", levels=[{"value": "100", "name": "100"}])
    acct = account(workspace)
    subscribe(workspace, acct, "s1", [plan(workspace, "team", {calls: "100"})])
    _, raw = make_key(workspace, "ingest,read")

    def work(index: int) -> None:
        if index % 2:
            client = key_client(raw)
            for _ in range(5):
                client.post(URL, {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 3}, format="json")
        else:
            ws = Workspace.objects.get(pk=workspace.pk)
            for _ in range(5):
                events_ingest(
                    workspace=ws,
                    payload=[{"account_id": "acct-1", "feature_id": "api-calls", "quantity": 2}] * 3,
                    now=timezone.now(),
                )

    # when
    _parallel(work, 8)
    # then
    stored = sum(UsageEvent.objects.filter(feature=calls).values_list("quantity", flat=True))
    counted = sum(AllowanceUsageDaily.objects.filter(feature=calls).values_list("quantity", flat=True))
    assert stored == counted
    assert stored == 4 * 5 * 3 * 2 + sum(
        UsageEvent.objects.filter(feature=calls, source="record").values_list("quantity", flat=True)
    )
    client = key_client(raw)
    check = client.get("/api/v1/entitlements/check", {"account_id": "acct-1", "feature_id": "api-calls"}).json()
    assert check["used"] == stored
