"""POST /api/v1/events over HTTP: authentication and scopes, malformed and oversize bodies, rate limiting
(real Redis), 503 on a real database outage, concurrency on one event_id, and the OpenAPI schema."""

import json
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account
from accounts.services import api_key_revoke
from catalog.models import Feature, Product
from tests.conftest import database_unreachable, key_client, redis_unreachable
from usage.models import UsageEvent
from usage.services import events_ingest

GOOD = {"account_id": "acct-ok", "feature_id": "good.feature"}


def raw_post(client: APIClient, body: bytes | str, content_type: str = "application/json"):
    return client.generic("POST", "/api/v1/events", body, content_type=content_type)


# ---------------------------------------------------------------------------
# Authentication and scopes
# ---------------------------------------------------------------------------


def test_no_key_is_401_and_nothing_is_stored(workspace):
    # when
    response = APIClient().post("/api/v1/events", GOOD, format="json")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert UsageEvent.objects.count() == 0


def test_bad_key_is_401(workspace):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer upt_000000000000_nope")
    # when
    response = client.post("/api/v1/events", GOOD, format="json")
    # then
    assert (response.status_code, response.json()["error"]["message"]) == (401, "Invalid API key.")
    assert UsageEvent.objects.count() == 0


def test_revoked_key_is_401(workspace, make_key):
    # given
    api_key, raw = make_key(workspace, "ingest")
    api_key_revoke(workspace=workspace, prefix=api_key.prefix)
    client = key_client(raw)
    # when
    response = client.post("/api/v1/events", GOOD, format="json")
    # then
    assert (response.status_code, response.json()["error"]["message"]) == (
        401,
        "This API key has been revoked.",
    )
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("scopes", ["read", "admin", "read,admin"])
def test_key_without_ingest_scope_is_403(workspace, make_client, scopes):
    # when
    response = make_client(workspace, scopes).post("/api/v1/events", GOOD, format="json")
    # then
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This API key lacks the 'ingest' scope."
    assert UsageEvent.objects.count() == 0


def test_ingest_only_key_is_enough(workspace, make_client):
    # when
    response = make_client(workspace, "ingest").post("/api/v1/events", GOOD, format="json")
    # then
    assert (response.status_code, response.json()["accepted"]) == (200, 1)


# ---------------------------------------------------------------------------
# Bodies refused whole
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "phrase"),
    [
        (b"{not json", "invalid_json", "not valid JSON"),
        (b"", "invalid_body", "empty"),
        (b"\xff\xfe", "invalid_json", "UTF-8"),
        (b'"a string"', "invalid_body", "got a JSON str"),
        (b"42", "invalid_body", "got a JSON int"),
        (b'{"events": {"account_id": "a"}}', "invalid_body", "'events' must be a list"),
        (b'{"events": [{"account_id": "a", "feature_id": "f"}, 3]}', "invalid_body", "index 1"),
        (b'[{"account_id": "a", "feature_id": "f"}, "x"]', "invalid_body", "index 1"),
        (b'{"events": [], "extra": 1}', "invalid_body", "extra"),
    ],
)
def test_malformed_bodies_are_400_and_store_nothing(api, body, code, phrase):
    # when
    response = raw_post(api, body)
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert phrase in error["message"]
    assert UsageEvent.objects.count() == 0
    assert Account.objects.count() == 0


def test_a_list_of_events_is_accepted(api):
    # when
    response = raw_post(api, json.dumps([GOOD, GOOD]))
    # then
    assert (response.status_code, response.json()["accepted"]) == (200, 2)


def test_too_many_events_is_413_and_stores_nothing(api, settings):
    # given
    settings.UPTAKE_INGEST_MAX_EVENTS = 3
    # when
    response = raw_post(api, json.dumps({"events": [GOOD] * 4}))
    # then
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "too_many_events",
        "message": "The batch holds 4 events; the limit is 3 per request. Split the batch.",
    }
    assert UsageEvent.objects.count() == 0


def test_exactly_the_maximum_number_of_events_is_accepted(api, settings):
    # given
    settings.UPTAKE_INGEST_MAX_EVENTS = 3
    # when
    response = raw_post(api, json.dumps({"events": [GOOD] * 3}))
    # then
    assert (response.status_code, response.json()["accepted"]) == (200, 3)


def test_body_over_the_byte_limit_is_413_and_stores_nothing(api, settings):
    # given a limit of 200 bytes and a 201-byte body
    settings.UPTAKE_INGEST_MAX_BYTES = 200
    body = json.dumps({**GOOD, "properties": {"pad": ""}})
    body = body.replace('"pad": ""', '"pad": "' + "x" * (201 - len(body)) + '"')
    assert len(body) == 201
    # when
    response = raw_post(api, body)
    # then
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert "201 bytes" in response.json()["error"]["message"]
    assert UsageEvent.objects.count() == 0


def test_the_default_limits_are_1000_events_and_1_mib(settings):
    assert (settings.UPTAKE_INGEST_MAX_EVENTS, settings.UPTAKE_INGEST_MAX_BYTES) == (1000, 1024 * 1024)


# ---------------------------------------------------------------------------
# Rate limiting (Redis token bucket when REDIS_URL is set, in-process otherwise)
# ---------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_and_other_keys_are_unaffected(workspace, make_client, settings):
    # given a bucket of 2 requests refilled at 0.25/s
    settings.UPTAKE_RATE_LIMIT_ENABLED = True
    settings.UPTAKE_RATE_BURST = 2
    settings.UPTAKE_RATE_PER_SECOND = 0.25
    limited, other = make_client(workspace, "ingest"), make_client(workspace, "ingest")

    # when the first key sends three requests and the second key one
    statuses = [limited.post("/api/v1/events", {**GOOD, "quantity": n}, format="json") for n in (1, 2, 3)]
    other_response = other.post("/api/v1/events", {**GOOD, "quantity": 4}, format="json")

    # then the third is refused with Retry-After (a token arrives in ≤ 4 s) and stored nothing
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2]["Retry-After"] in {"3", "4"}
    assert statuses[2].json()["error"]["code"] == "throttled"
    assert other_response.status_code == 200
    assert sorted(UsageEvent.objects.values_list("quantity", flat=True)) == [1, 2, 4]


def test_a_refused_body_takes_one_token_like_any_request(workspace, make_client, settings):
    # given a bucket of 2 requests refilled at 0.25/s
    settings.UPTAKE_RATE_LIMIT_ENABLED = True
    settings.UPTAKE_RATE_BURST = 2
    settings.UPTAKE_RATE_PER_SECOND = 0.25
    client = make_client(workspace, "ingest")
    # when a malformed body, then two good requests are sent
    bad = raw_post(client, b"{not json")
    responses = [client.post("/api/v1/events", {**GOOD, "quantity": n}, format="json") for n in (1, 2)]
    # then the malformed one is refused and counts once: the next request still fits, the one after does not
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_json")
    assert [r.status_code for r in responses] == [200, 429]
    assert list(UsageEvent.objects.values_list("quantity", flat=True)) == [1]


def test_rate_limit_fails_open_when_the_cache_is_unreachable(workspace, make_client, settings):
    # given Redis (cache and limiter) unreachable and a bucket of one request
    settings.UPTAKE_RATE_LIMIT_ENABLED = True
    settings.UPTAKE_RATE_BURST = 1
    client = make_client(workspace, "ingest")
    with redis_unreachable(settings) as dead:
        # when
        responses = [client.post("/api/v1/events", GOOD, format="json") for _ in range(3)]
        # then ingestion goes on, and Redis was tried once
        assert dead.accepts == 1
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert UsageEvent.objects.count() == 3


# ---------------------------------------------------------------------------
# Database unreachable → 503 with Retry-After, never a 2xx
# ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_is_503_with_retry_after(workspace, make_client, settings):
    # given a client with a valid key, then the database moved to a port where nothing listens
    client = make_client(workspace, "ingest")
    # when
    with database_unreachable():
        response = client.post("/api/v1/events", GOOD, format="json")
    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.UPTAKE_RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "database_unavailable"
    assert UsageEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_with_the_key_cached_is_503_and_stores_nothing(workspace, make_client, settings):
    # given a key already cached by this process (the fast path then reaches the write), then the database
    # moved to a port where nothing listens
    client = make_client(workspace, "ingest")
    assert client.post("/api/v1/events", {**GOOD, "event_id": "first"}, format="json").status_code == 200
    # when
    with database_unreachable():
        response = client.post("/api/v1/events", {**GOOD, "event_id": "second"}, format="json")
    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.UPTAKE_RETRY_AFTER_SECONDS)
    assert response.json()["error"] == {
        "code": "database_unavailable",
        "message": "The database is unreachable; retry later.",
    }
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["first"]


def test_valid_ingestion_is_served_below_drf_with_the_views_answer(api, monkeypatch):
    # given the DRF view out of the way: a valid request can only be answered by the fast path
    from usage.api import EventsView

    def not_the_fast_path(self, request):
        raise AssertionError("served by EventsView")

    monkeypatch.setattr(EventsView, "post", not_the_fast_path)
    # when
    response = api.post(
        "/api/v1/events",
        [{**GOOD, "event_id": "e1"}, {**GOOD, "event_id": "e1"}, {**GOOD, "quantity": 0}, {"feature_id": "x"}],
        format="json",
    )
    # then
    assert (response.status_code, response["Content-Type"], response["Allow"]) == (
        200,
        "application/json",
        "POST, OPTIONS",
    )
    assert response.json() == {
        "accepted": 1,
        "duplicates": 1,
        "ignored": 1,
        "rejected": [
            {"index": 3, "code": "missing_field", "field": "account_id", "message": "'account_id' is required."}
        ],
        "warnings": [],
    }
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["e1"]


# ---------------------------------------------------------------------------
# Concurrency: the unique constraint decides between concurrent batches
# ---------------------------------------------------------------------------


def _wait_for_a_lock_wait(seconds: float = 10.0) -> bool:
    """Until a backend of this database waits for a lock (pg_locks, not granted); False after `seconds`."""
    deadline = time.monotonic() + seconds
    probe = connections.create_connection("default")
    try:
        with probe.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND a.datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    return True
                time.sleep(0.01)
        return False
    finally:
        probe.close()


@pytest.mark.django_db(transaction=True)
def test_two_connections_ingesting_the_same_event_id_store_it_once(workspace):
    # given thread A holds an uncommitted insert of event "same" while thread B tries the same id
    a_inserted, a_may_commit = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def thread_a():
        try:
            with transaction.atomic():
                results["a"] = events_ingest(
                    workspace=workspace,
                    payload=[{**GOOD, "event_id": "same", "quantity": 1}],
                    now=timezone.now(),
                )
                a_inserted.set()
                a_may_commit.wait(10)
        finally:
            connection.close()

    def thread_b():
        try:
            results["b"] = events_ingest(
                workspace=workspace, payload=[{**GOOD, "event_id": "same", "quantity": 2}], now=timezone.now()
            )
        finally:
            connection.close()

    # when
    a = threading.Thread(target=thread_a)
    a.start()
    assert a_inserted.wait(10)
    b = threading.Thread(target=thread_b)
    b.start()
    waiting = _wait_for_a_lock_wait()  # B is now blocked on A's uncommitted row
    b_finished_early = not b.is_alive()
    a_may_commit.set()
    a.join(10)
    b.join(10)

    # then exactly one event is stored, A's, and B counts a duplicate
    assert (waiting, b_finished_early) == (True, False)
    assert (results["a"].accepted, results["a"].duplicates) == (1, 0)
    assert (results["b"].accepted, results["b"].duplicates) == (0, 1)
    assert list(UsageEvent.objects.values_list("event_id", "quantity")) == [("same", 1)]


# ---------------------------------------------------------------------------
# OpenAPI
# ---------------------------------------------------------------------------


def test_schema_documents_the_events_endpoint_and_the_upserts(client):
    # when
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    # then
    assert response.status_code == 200
    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/events"]["post"]
    assert operation["operationId"] == "events_ingest"
    assert {"200", "400", "401", "403", "413", "429", "503"} <= set(operation["responses"])
    for code in ("missing_field", "too_old", "in_future", "feature_cap_reached", "hierarchy_conflict"):
        assert code in operation["description"]
    assert "put" in schema["paths"]["/api/v1/accounts/{account_id}"]
    assert "put" in schema["paths"]["/api/v1/accounts/{account_id}/users/{user_id}"]


def test_docs_page_is_served(client):
    # when
    response = client.get("/api/docs/")
    # then
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_a_body_larger_than_django_reads_is_still_a_json_413(api, settings):
    # given a 3 MB body, over both our limit and Django's in-memory upload size
    body = json.dumps({"events": [{**GOOD, "properties": {"pad": "x" * 3_000_000}}]})
    # when
    response = raw_post(api, body)
    # then
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert UsageEvent.objects.count() == 0


def _in_threads(count: int, target) -> list:
    results: list = [None] * count
    errors: list = []
    barrier = threading.Barrier(count)

    def run(slot: int) -> None:
        try:
            barrier.wait(10)
            results[slot] = target(slot)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_a_batch_with_new_dimensions_store_each_event_once(workspace):
    # given a batch of 200 events naming 40 new accounts, 20 new features and 3 new products
    batch = [
        {
            "account_id": f"acct-{n % 40}",
            "user_id": f"user-{n % 7}",
            "product_id": f"prod-{n % 20 % 3}",
            "feature_id": f"feat-{n % 20}",
            "event_id": f"evt-{n}",
        }
        for n in range(200)
    ]

    # when 4 connections send it at the same time
    def send(slot: int):
        return events_ingest(workspace=workspace, payload=batch, now=timezone.now())

    results = _in_threads(4, send)

    # then every event is stored once, every dimension registered once, and no batch failed
    assert sum(r.accepted for r in results) == 200
    assert sum(r.duplicates for r in results) == 600
    assert all(r.rejected == [] for r in results)
    assert UsageEvent.objects.count() == 200
    assert Account.objects.count() == 40
    assert Feature.objects.count() == 20
    assert Product.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_feature_cap_holds_under_concurrent_registration(workspace):
    # given a cap of 5 features and 4 connections each registering 3 different new features
    workspace.max_features = 5
    workspace.save()

    def send(slot: int):
        payload = [{"account_id": "a", "feature_id": f"f-{slot}-{n}"} for n in range(3)]
        return events_ingest(workspace=workspace, payload=payload, now=timezone.now())

    # when
    results = _in_threads(4, send)

    # then exactly 5 features exist; the other 7 events were refused with feature_cap_reached
    assert Feature.objects.count() == 5
    assert sum(r.accepted for r in results) == 5
    codes = [rejection.code for r in results for rejection in r.rejected]
    assert codes == ["feature_cap_reached"] * 7
    assert UsageEvent.objects.count() == 5
