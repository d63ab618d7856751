"""`POST /api/v1/events`: the fast path (below DRF) and EventsView give the same status, headers and body, and
store the same rows, for valid and invalid requests. Each request is sent twice through the whole stack, once
with UPTAKE_FAST_PATHS on and once off, from the same database state (a savepoint rolled back in between)."""

import gzip
import json
from unittest import mock

import pytest
import time_machine
from django.db import transaction
from rest_framework.test import APIClient

from tests.conftest import FROZEN_NOW, database_unreachable, key_client
from usage.api import EventsView
from usage.models import UsageEvent
from usage.services import events_ingest

URL = "/api/v1/events"
EVENT = {"account_id": "acct-1", "feature_id": "export"}

# (body, served by the fast path when it is on)
CASES = {
    "one event": (EVENT, True),
    "a list": ([EVENT, {**EVENT, "account_id": "acct-2", "quantity": 3}], True),
    "an events object": ({"events": [EVENT]}, True),
    "every field": (
        {
            **EVENT,
            "user_id": "u-1",
            "product_id": "default",
            "module_id": "reports",
            "event_id": "e-1",
            "timestamp": "2026-11-18T11:00:00+01:00",
            "quantity": 4,
            "properties": {"format": "csv"},
        },
        True,
    ),
    "a duplicate in the batch": ([{**EVENT, "event_id": "e-2"}, {**EVENT, "event_id": "e-2"}], True),
    "an id stored before": ({**EVENT, "event_id": "seen"}, True),
    "quantity 0": ({**EVENT, "quantity": 0}, True),
    "quantity 2.0": ({**EVENT, "quantity": 2.0}, True),
    "quantity 2.5": ({**EVENT, "quantity": 2.5}, True),
    "a negative quantity": ({**EVENT, "quantity": -3}, True),
    "quantity out of range": ({**EVENT, "quantity": 10**12}, True),
    "quantity as text": ({**EVENT, "quantity": "3"}, True),
    "no account": ({"feature_id": "export"}, True),
    "an unknown field and a long id": ({**EVENT, "account_id": "a" * 70, "colour": "red"}, True),
    "too old": ({**EVENT, "timestamp": "2020-01-01T00:00:00Z"}, True),
    "in the future": ({**EVENT, "timestamp": "2030-01-01T00:00:00Z"}, True),
    "a timestamp that is not one": ({**EVENT, "timestamp": "yesterday"}, True),
    "properties too large": ({**EVENT, "properties": {"note": "x" * 100}}, True),
    "properties not an object": ({**EVENT, "properties": [1, 2]}, True),
    "an event id too long": ({**EVENT, "event_id": "e" * 129}, True),
    "a hierarchy conflict": ({**EVENT, "product_id": "other"}, True),
    "valid and invalid mixed": ([EVENT, {"account_id": 7, "feature_id": "export"}, {**EVENT, "quantity": 0}], True),
    "an empty list": ([], True),
    "not JSON": (b"{nope", True),
    "an empty body": (b"", True),
    "a JSON number": (b"42", True),
    "a list of non-objects": (b'[1, "x"]', True),
    "events not a list": ({"events": 3}, True),
    "not UTF-8": (b"\xff\xfe", True),
    "too many events": ([EVENT] * 6, True),
    "a body over the byte limit": ([{**EVENT, "event_id": f"e-{n}", "user_id": "u" * 60} for n in range(5)], True),
}


@pytest.fixture
def state(workspace, settings):
    settings.UPTAKE_INGEST_MAX_EVENTS = 5
    settings.UPTAKE_INGEST_MAX_BYTES = 600
    settings.UPTAKE_INGEST_MAX_PROPERTIES_BYTES = 64
    result = events_ingest(workspace=workspace, payload=[{**EVENT, "event_id": "seen"}], now=FROZEN_NOW)
    assert result.accepted == 1
    return workspace


def _encode(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _answer(client: APIClient, settings, *, fast: bool, method: str = "POST", body: bytes = b"", **extra):
    """One request through the whole stack; what it answered, whether EventsView ran, what it stored. The
    database is rolled back to before the request."""
    settings.UPTAKE_FAST_PATHS = fast
    savepoint = transaction.savepoint()
    with mock.patch.object(EventsView, "dispatch", autospec=True, side_effect=EventsView.dispatch) as view:
        response = client.generic(
            method, URL, body, content_type=extra.pop("content_type", "application/json"), **extra
        )
    stored = list(
        UsageEvent.objects.order_by("id").values_list(
            "account__external_id", "feature__key", "quantity", "event_id", "properties"
        )
    )
    transaction.savepoint_rollback(savepoint)
    return (response.status_code, dict(response.headers), response.content), view.call_count, stored


def _assert_same(client, settings, *, served_fast: bool, **request):
    fast, fast_view_calls, fast_stored = _answer(client, settings, fast=True, **request)
    slow, slow_view_calls, slow_stored = _answer(client, settings, fast=False, **request)
    assert fast == slow
    assert fast_stored == slow_stored
    # the fast path answered the request itself (EventsView did not run), or handed it over
    assert (fast_view_calls, slow_view_calls) == (0 if served_fast else 1, 1)
    return fast


@time_machine.travel(FROZEN_NOW, tick=False)
@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_and_view_answer_alike(state, api, settings, case):
    # given
    body, served_fast = CASES[case]
    # when / then
    status, headers, content = _assert_same(api, settings, served_fast=served_fast, body=_encode(body))
    assert headers["Content-Type"] == "application/json"
    assert status in (200, 400, 413)


GZIP_CASES = {
    "a gzip batch": ("gzip", gzip.compress(json.dumps([EVENT, {**EVENT, "event_id": "z-1"}]).encode()), 200),
    "gzip over the limit once inflated": ("gzip", gzip.compress(json.dumps([EVENT] * 5).encode() + b" " * 600), 413),
    "a corrupt gzip stream": ("gzip", b"\x1f\x8b not really", 400),
    "a truncated gzip stream": ("x-gzip", gzip.compress(json.dumps(EVENT).encode())[:-10], 400),
    "another encoding": ("br", json.dumps(EVENT).encode(), 415),
}


@time_machine.travel(FROZEN_NOW, tick=False)
@pytest.mark.parametrize("case", list(GZIP_CASES))
def test_compressed_bodies_are_answered_alike(state, api, settings, case):
    # given
    encoding, body, expected = GZIP_CASES[case]
    # when / then
    status, headers, content = _assert_same(api, settings, served_fast=True, body=body, HTTP_CONTENT_ENCODING=encoding)
    assert status == expected


@time_machine.travel(FROZEN_NOW, tick=False)
def test_the_answers_compared_are_the_real_ones(state, api, settings):
    # a sample of what the parity above compares (the same on both paths)
    status, headers, content = _assert_same(
        api, settings, served_fast=True, body=_encode([EVENT, {**EVENT, "event_id": "seen"}, {"feature_id": "x"}])
    )
    assert (status, headers["Allow"], "Vary" in headers) == (200, "POST, OPTIONS", False)
    assert json.loads(content) == {
        "accepted": 1,
        "duplicates": 1,
        "ignored": 0,
        "rejected": [
            {"index": 2, "code": "missing_field", "field": "account_id", "message": "'account_id' is required."}
        ],
        "warnings": [],
    }
    status, _, content = _assert_same(api, settings, served_fast=True, body=_encode([EVENT] * 6))
    assert (status, json.loads(content)["error"]["code"]) == (413, "too_many_events")
    status, _, content = _assert_same(api, settings, served_fast=True, body=b"{nope")
    assert (status, json.loads(content)["error"]["code"]) == (400, "invalid_json")


@time_machine.travel(FROZEN_NOW, tick=False)
@pytest.mark.parametrize(
    ("scopes", "extra", "status"),
    [
        (None, {}, 401),
        ("bad", {}, 401),
        ("read", {}, 403),
        ("read,admin", {}, 403),
        ("ingest", {"HTTP_ACCEPT": "text/html"}, 406),
        ("ingest", {"content_type": "text/plain"}, 200),
        ("ingest", {"method": "GET"}, 405),
        ("ingest", {"method": "PUT"}, 405),
    ],
)
def test_requests_the_fast_path_hands_over_answer_alike(state, make_key, settings, scopes, extra, status):
    # given
    client = APIClient()
    if scopes == "bad":
        client.credentials(HTTP_AUTHORIZATION="Bearer upt_000000000000_nope")
    elif scopes is not None:
        _, raw = make_key(state, scopes)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    served_fast = scopes == "ingest" and "HTTP_ACCEPT" not in extra and "method" not in extra
    # when / then
    answer = _assert_same(client, settings, served_fast=served_fast, body=_encode(EVENT), **extra)
    assert answer[0] == status


@time_machine.travel(FROZEN_NOW, tick=False)
def test_over_the_rate_limit_both_answer_429(state, make_key, settings):
    # given: a bucket of one request
    settings.UPTAKE_RATE_LIMIT_ENABLED = True
    settings.UPTAKE_RATE_BURST = 1
    settings.UPTAKE_RATE_PER_SECOND = 0.001
    answers = []
    for fast in (True, False):
        _, raw = make_key(state, "ingest")
        client = key_client(raw)
        assert _answer(client, settings, fast=fast, body=_encode(EVENT))[0][0] == 200
        # when
        answers.append(_answer(client, settings, fast=fast, body=_encode(EVENT)))
    # then
    (fast, _, fast_stored), (slow, _, slow_stored) = answers
    assert fast == slow
    assert fast[0] == 429
    assert fast_stored == slow_stored == [("acct-1", "export", 1, "seen", None)]


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_is_the_same_503_on_both_paths(workspace, make_client, settings):
    # given a key this process has cached (so the fast path reaches the write)
    client = make_client(workspace, "ingest")
    assert client.post(URL, {**EVENT, "event_id": "first"}, format="json").status_code == 200
    answers = []
    for fast in (True, False):
        settings.UPTAKE_FAST_PATHS = fast
        # when
        with database_unreachable():
            response = client.post(URL, {**EVENT, "event_id": "second"}, format="json")
        answers.append((response.status_code, dict(response.headers), response.content))
    # then
    assert answers[0] == answers[1]
    assert (answers[0][0], answers[0][1]["Retry-After"], answers[0][1]["Allow"]) == (503, "5", "POST, OPTIONS")
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["first"]
