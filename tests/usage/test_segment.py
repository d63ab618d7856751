"""The Segment-compatible tracking API over HTTP (Django's test client): auth, limits, gzip, the mapping of
track / identify / group / alias / page / screen, exactly-once by messageId, ingestion problems, 429 and 503."""

import base64
import gzip
import json
from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.models import Account, EndUser
from catalog.models import Feature, Module, Product
from tests.conftest import FROZEN_NOW, database_unreachable
from usage.models import IngestionProblem, SegmentIgnoredDay, SegmentMapping, SegmentUser, UsageEvent
from usage.problems import ingestion_problems_prune
from usage.segment import segment_mapping_cache_forget

BATCH = "/api/segment/v1/batch"


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@pytest.fixture
def key(workspace, make_key) -> str:
    return make_key(workspace, "ingest")[1]


@pytest.fixture
def segment(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(key))
    return client


def post(client: APIClient, path: str, body, **extra):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", path, data, content_type="application/json", **extra)


def track(message_id: str, **fields) -> dict:
    return {
        "type": "track",
        "messageId": message_id,
        "userId": "u_7",
        "event": "Project Created",
        "context": {"groupId": "acct_42"},
        "timestamp": "2026-11-18T11:00:00Z",
        **fields,
    }


pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen():
    segment_mapping_cache_forget()
    with time_machine.travel(FROZEN_NOW, tick=False):
        yield


# ---------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------


def test_basic_auth_with_the_key_as_user_name_is_accepted(segment):
    # when
    response = post(segment, BATCH, {"batch": [track("m-1")]})
    # then
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert UsageEvent.objects.get().event_id == "m-1"


def test_write_key_in_the_body_is_accepted(key):
    # when
    response = post(APIClient(), "/api/segment/v1/track", {**track("m-1"), "writeKey": key})
    # then
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert UsageEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("authorization", "body_key", "status", "code"),
    [
        (None, None, 401, "not_authenticated"),
        (basic("upt_000000000000_nope"), None, 401, "authentication_failed"),
        (None, "upt_000000000000_nope", 401, "authentication_failed"),
        ("Digest abc", None, 401, "authentication_failed"),
        ("Basic !!!", None, 401, "authentication_failed"),
        # Not ASCII (a WSGI server hands header bytes over as latin-1): was a 500 from base64.
        ("Basic \u00c3\u00a9t\u00c3\u00a9", None, 401, "authentication_failed"),
        ("Basic " + base64.b64encode(b"\xff\xfe:").decode(), None, 401, "authentication_failed"),
    ],
)
def test_missing_or_bad_write_key_is_401_and_stores_nothing(workspace, authorization, body_key, status, code):
    # given
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    body = {"batch": [track("m-1")], **({"writeKey": body_key} if body_key else {})}
    # when
    response = post(client, BATCH, body)
    # then
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["success"] is False
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("separator", [" ", "\t", "   "])
def test_the_scheme_and_the_key_may_be_separated_by_any_whitespace(workspace, make_key, separator):
    # given the key after "Bearer" and after "Basic" with a tab or several spaces (the REST API takes both)
    _, key = make_key(workspace, "ingest")
    credentials = [f"Bearer{separator}{key}", f"Basic{separator}" + basic(key).removeprefix("Basic ")]
    for n, authorization in enumerate(credentials):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        # when
        response = post(client, BATCH, {"batch": [track(f"ws-{n}")]})
        # then
        assert (response.status_code, response.json()) == (200, {"success": True})
    assert UsageEvent.objects.count() == 2


def test_a_key_without_ingest_scope_is_403(workspace, make_key):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(make_key(workspace, "read")[1]))
    # when
    response = post(client, BATCH, {"batch": [track("m-1")]})
    # then
    assert (response.status_code, response.json()["message"]) == (403, "This API key lacks the 'ingest' scope.")
    assert UsageEvent.objects.count() == 0


# ---------------------------------------------------------------------------
# Bodies and limits
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_body"),
        (b"[1, 2]", "invalid_body"),
        (b'{"batch": {"type": "track"}}', "invalid_body"),
        (b'{"batch": [1]}', "invalid_body"),
    ],
)
def test_malformed_bodies_are_400_with_a_message_and_store_nothing(segment, body, code):
    # when
    response = post(segment, BATCH, body)
    # then
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert response.json()["message"]
    assert UsageEvent.objects.count() == 0


def test_a_message_over_32_kb_refuses_the_batch_with_400(segment):
    # given: one message of 33 KB next to a good one
    big = track("m-2", properties={"blob": "x" * (33 * 1024)})
    # when
    response = post(segment, BATCH, {"batch": [track("m-1"), big]})
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "message_too_large"
    assert response.json()["message"].startswith("Message at index 1 is ")
    assert UsageEvent.objects.count() == 0


def test_a_batch_over_500_kb_is_400_and_stores_nothing(segment):
    # given: 20 messages of 30 KB (each under the message limit)
    batch = [track(f"m-{n}", properties={"blob": "x" * (30 * 1024)}) for n in range(20)]
    # when
    response = post(segment, BATCH, {"batch": batch})
    # then
    assert (response.status_code, response.json()["code"]) == (400, "body_too_large")
    assert UsageEvent.objects.count() == 0


def test_gzip_bodies_are_decoded(segment):
    # given
    body = gzip.compress(json.dumps({"batch": [track("m-1"), track("m-2")]}).encode())
    # when
    response = post(segment, BATCH, body, HTTP_CONTENT_ENCODING="gzip")
    # then
    assert response.status_code == 200
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["m-1", "m-2"]


def test_a_gzip_bomb_is_refused_without_inflating_it(segment):
    # given: 50 MB of zeros compress to ~50 KB
    body = gzip.compress(b"0" * (50 * 1024 * 1024))
    # when
    response = post(segment, BATCH, body, HTTP_CONTENT_ENCODING="gzip")
    # then
    assert (response.status_code, response.json()["code"]) == (400, "body_too_large")


def test_another_encoding_is_415(segment):
    # when
    response = post(segment, BATCH, b"xx", HTTP_CONTENT_ENCODING="br")
    # then
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_encoding")
    assert UsageEvent.objects.count() == 0


def test_broken_gzip_is_400(segment):
    # when
    response = post(segment, BATCH, b"not gzip at all", HTTP_CONTENT_ENCODING="gzip")
    # then
    assert (response.status_code, response.json()["code"]) == (400, "invalid_gzip")


# ---------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------


def test_track_maps_to_a_usage_event(segment):
    # given
    message = track(
        "m-1",
        event="Report Exported",
        properties={"module_id": "Report Center", "product_id": "Web App", "quantity": 3, "format": "pdf"},
    )
    # when
    post(segment, "/api/segment/v1/track", message)
    # then
    event = UsageEvent.objects.select_related("account", "end_user", "feature__module", "feature__product").get()
    assert (event.account.external_id, event.end_user.external_id, event.quantity, event.event_id) == (
        "acct_42",
        "u_7",
        3,
        "m-1",
    )
    assert (event.feature.key, event.feature.name) == ("report-exported", "Report Exported")
    assert (event.feature.module.key, event.feature.module.name) == ("report-center", "Report Center")
    assert (event.feature.product.key, event.feature.product.name) == ("web-app", "Web App")
    assert event.occurred_at.isoformat() == "2026-11-18T11:00:00+00:00"
    assert event.properties == {"format": "pdf"}


def test_properties_feature_id_wins_over_the_event_name(segment):
    # when
    post(segment, BATCH, {"batch": [track("m-1", properties={"feature_id": "export.csv"})]})
    # then
    assert UsageEvent.objects.get().feature.key == "export.csv"


def test_the_account_comes_from_properties_then_from_the_users_last_group(segment):
    # given: u_9 grouped with acct_9 in an earlier request
    post(segment, "/api/segment/v1/group", {"messageId": "g-1", "userId": "u_9", "groupId": "acct_9"})
    batch = [
        track("m-1", context={}, properties={"account_id": "acct_p"}),
        track("m-2", context={}, userId="u_9"),
    ]
    # when
    post(segment, BATCH, {"batch": batch})
    # then
    assert dict(UsageEvent.objects.values_list("event_id", "account__external_id")) == {
        "m-1": "acct_p",
        "m-2": "acct_9",
    }


def test_a_group_earlier_in_the_batch_places_later_tracks(segment):
    # given
    batch = [
        {"type": "group", "messageId": "g-1", "userId": "u_5", "groupId": "acct_5", "traits": {"name": "Five"}},
        track("m-1", context={}, userId="u_5"),
    ]
    # when
    post(segment, BATCH, {"batch": batch})
    # then
    assert UsageEvent.objects.get().account.external_id == "acct_5"


def test_original_timestamp_is_corrected_by_sent_at(segment):
    # given: the client's clock is 10 minutes ahead; the event happened 1 minute before sending
    message = track("m-1", originalTimestamp="2026-11-18T12:09:00Z")
    del message["timestamp"]
    # when
    post(segment, BATCH, {"batch": [message], "sentAt": "2026-11-18T12:10:00Z"})
    # then: received at 12:00 (frozen) − (12:10 − 12:09)
    assert UsageEvent.objects.get().occurred_at.isoformat() == "2026-11-18T11:59:00+00:00"


@pytest.mark.parametrize(
    ("original", "sent_at", "reason"),
    [
        # the skew moves the time past year 9999 / before year 1 (an OverflowError was a 500)
        ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "in_future"),
        ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "too_old"),
    ],
)
def test_a_clock_skew_past_the_calendar_is_judged_on_the_time_as_sent(segment, original, sent_at, reason):
    # given
    message = track("m-1", originalTimestamp=original, sentAt=sent_at)
    del message["timestamp"]
    # when
    response = post(segment, "/api/segment/v1/track", message)
    # then: answered like any message that cannot be used: 200, a problem, nothing stored
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert list(IngestionProblem.objects.values_list("message_id", "reason")) == [("m-1", reason)]
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("trait", ["website", "domain"])
def test_a_website_that_is_not_a_url_is_a_problem_and_the_rest_of_the_group_is_applied(segment, trait):
    # when ("http://[::1" made urlsplit raise: a 500)
    response = post(
        segment,
        "/api/segment/v1/group",
        {"messageId": "g-1", "groupId": "acct_1", "traits": {"name": "Acme", trait: "http://[::1", "plan": "pro"}},
    )
    # then
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert list(Account.objects.values_list("external_id", "name", "domain", "plan")) == [("acct_1", "Acme", "", "pro")]
    problem = IngestionProblem.objects.get()
    assert (problem.message_id, problem.reason, problem.message) == (
        "g-1",
        "invalid_trait",
        f"'traits.{trait}' (http://[::1) is neither a host name nor a URL; the account's domain is left as it was.",
    )


@pytest.mark.parametrize("path", ["/api/segment/v1/track", BATCH])
def test_the_write_key_is_never_kept_in_a_problems_payload(workspace, key, path):
    # given a track that cannot be used (no account), its write key in the body (and, in a batch, in the message)
    message = {**track("m-1", context={}, userId="stranger"), "writeKey": key}
    body = message if path.endswith("track") else {"batch": [message], "writeKey": key}
    # when
    response = post(APIClient(), path, body)
    # then the problem is recorded without the key
    assert (response.status_code, response.json()) == (200, {"success": True})
    problem = IngestionProblem.objects.get()
    assert problem.reason == "no_account"
    assert key not in problem.payload_excerpt and "writeKey" not in problem.payload_excerpt
    assert json.loads(problem.payload_excerpt)["userId"] == "stranger"


def test_identify_before_group_is_applied_when_the_user_is_grouped(segment):
    # given
    post(
        segment,
        "/api/segment/v1/identify",
        {"messageId": "i-1", "userId": "u_1", "traits": {"email": "Jane@Example.com", "role": "admin"}},
    )
    assert EndUser.objects.count() == 0
    assert SegmentUser.objects.get().traits == {"role": "admin"}
    # when
    post(
        segment,
        "/api/segment/v1/group",
        {
            "messageId": "g-1",
            "userId": "u_1",
            "groupId": "acct_1",
            "traits": {"name": "Acme", "website": "https://www.acme.com/about", "plan": "pro", "employees": 40},
        },
    )
    # then
    account = Account.objects.get()
    assert (account.external_id, account.name, account.domain, account.plan, account.attributes) == (
        "acct_1",
        "Acme",
        "acme.com",
        "pro",
        {"employees": 40},
    )
    user = EndUser.objects.get()
    assert (user.account_id, user.external_id, user.email, user.attributes) == (
        account.pk,
        "u_1",
        "Jane@Example.com",
        {"role": "admin"},
    )


def test_identify_of_a_grouped_user_updates_its_end_user(segment):
    # given
    post(segment, "/api/segment/v1/group", {"messageId": "g-1", "userId": "u_1", "groupId": "acct_1"})
    # when
    post(segment, "/api/segment/v1/identify", {"messageId": "i-1", "userId": "u_1", "traits": {"email": "j@x.io"}})
    # then
    assert list(EndUser.objects.values_list("account__external_id", "external_id", "email")) == [
        ("acct_1", "u_1", "j@x.io")
    ]


def test_owner_email_trait_sets_the_owner_and_an_unknown_one_is_a_problem(segment, workspace, staff_of):
    # given
    staff = staff_of(workspace, "manager")
    # when
    post(
        segment,
        BATCH,
        {
            "batch": [
                {"type": "group", "messageId": "g-1", "groupId": "a1", "traits": {"owner_email": staff.email}},
                {"type": "group", "messageId": "g-2", "groupId": "a2", "traits": {"owner_email": "who@x.io"}},
            ]
        },
    )
    # then: a2 is stored without an owner, and the problem is recorded
    assert dict(Account.objects.values_list("external_id", "owner_id")) == {"a1": staff.pk, "a2": None}
    problem = IngestionProblem.objects.get()
    assert (problem.reason, problem.message_id, problem.message_type) == ("unknown_owner", "g-2", "group")


def test_alias_gives_the_new_id_the_previous_ids_account(segment):
    # given
    post(segment, "/api/segment/v1/group", {"messageId": "g-1", "anonymousId": "anon-1", "groupId": "acct_1"})
    # when
    post(segment, "/api/segment/v1/alias", {"messageId": "a-1", "previousId": "anon-1", "userId": "u_1"})
    post(segment, BATCH, {"batch": [track("m-1", context={}, userId="u_1")]})
    # then
    assert UsageEvent.objects.get().account.external_id == "acct_1"
    assert set(EndUser.objects.values_list("external_id", flat=True)) == {"anon-1", "u_1"}


@pytest.mark.parametrize("bad", ["nul\u0000", "lone \ud800", float("nan")])
def test_traits_postgresql_cannot_store_are_a_problem_not_an_error(segment, bad):
    # when
    body = json.dumps(
        {"batch": [{"type": "group", "messageId": "g-1", "groupId": "a1", "traits": {"x": bad}}, track("m-1")]}
    ).encode()
    response = post(segment, BATCH, body)
    # then: the group is refused and recorded; the track is stored
    assert response.status_code == 200
    assert list(IngestionProblem.objects.values_list("message_id", "reason")) == [("g-1", "invalid_trait")]
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["m-1"]
    assert Account.objects.get().external_id == "acct_42"


def test_a_problem_is_recorded_even_when_its_payload_holds_text_postgresql_refuses(segment):
    # given: a track without an account whose properties hold NUL and a lone surrogate
    body = json.dumps({"batch": [track("m-1", context={}, userId="x", properties={"a": "\u0000", "b": "\ud800"})]})
    # when
    response = post(segment, BATCH, body.encode())
    # then: stored with the characters replaced (U+2400, U+FFFD)
    assert response.status_code == 200
    problem = IngestionProblem.objects.get()
    assert problem.reason == "no_account"
    assert '"a":"\\u0000"' in problem.payload_excerpt and '"b":"\ufffd"' in problem.payload_excerpt


def test_page_and_screen_are_accepted_and_counted_not_stored(segment):
    # when
    response = post(
        segment,
        BATCH,
        {
            "batch": [
                {"type": "page", "messageId": "p-1", "userId": "u", "name": "Pricing"},
                {"type": "page", "messageId": "p-2", "userId": "u", "name": "Home"},
                {"type": "screen", "messageId": "s-1", "userId": "u", "name": "Settings"},
            ]
        },
    )
    post(segment, "/api/segment/v1/page", {"messageId": "p-3", "userId": "u"})
    # then
    assert response.status_code == 200
    assert dict(SegmentIgnoredDay.objects.values_list("kind", "count")) == {"page": 3, "screen": 1}
    assert (UsageEvent.objects.count(), IngestionProblem.objects.count()) == (0, 0)


def test_a_workspace_mapping_renames_the_properties(segment, workspace):
    # given
    SegmentMapping.objects.create(
        workspace=workspace, feature_property="feature_key", quantity_property="count", account_property="org"
    )
    segment_mapping_cache_forget()
    message = track("m-1", context={}, properties={"feature_key": "api.call", "count": 7, "org": "o-1"})
    # when
    post(segment, BATCH, {"batch": [message]})
    # then
    event = UsageEvent.objects.get()
    assert (event.feature.key, event.quantity, event.account.external_id, event.properties) == (
        "api.call",
        7,
        "o-1",
        None,
    )


# ---------------------------------------------------------------------------
# Exactly once, problems
# ---------------------------------------------------------------------------


def test_a_replayed_batch_stores_nothing_new(segment):
    # given
    batch = {"batch": [track("m-1"), track("m-2", event="Nope", context={}, userId="ghost")]}
    post(segment, BATCH, batch)
    counts = (UsageEvent.objects.count(), IngestionProblem.objects.count(), Feature.objects.count())
    # when
    response = post(segment, BATCH, batch)
    # then
    assert response.status_code == 200
    assert counts == (1, 1, 1)
    assert (UsageEvent.objects.count(), IngestionProblem.objects.count(), Feature.objects.count()) == counts


def test_unusable_messages_are_answered_200_and_recorded_with_their_reason(segment, workspace):
    # given
    workspace.max_features = 1
    workspace.save()
    old = (FROZEN_NOW - timedelta(days=40)).isoformat()
    batch = [
        track("m-ok"),
        track("m-noacct", context={}, userId="stranger"),
        track("m-old", event="Other Thing", timestamp=old),
        track("m-cap", event="Third Thing"),
        {"type": "track", "messageId": "m-noname", "userId": "u", "context": {"groupId": "a"}},
        {"type": "identify", "messageId": "i-nouser", "traits": {}},
        {"type": "group", "messageId": "g-nogroup", "userId": "u"},
        {"type": "launch", "messageId": "x-1"},
    ]
    # when
    response = post(segment, BATCH, {"batch": batch})
    # then
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["m-ok"]
    assert dict(IngestionProblem.objects.values_list("message_id", "reason")) == {
        "m-noacct": "no_account",
        "m-old": "too_old",
        "m-cap": "feature_cap_reached",
        "m-noname": "missing_event",
        "i-nouser": "missing_user",
        "g-nogroup": "missing_group_id",
        "x-1": "invalid_message",
    }
    problem = IngestionProblem.objects.get(message_id="m-noacct")
    assert problem.workspace_id == workspace.pk
    assert problem.source == "segment"
    assert json.loads(problem.payload_excerpt)["userId"] == "stranger"


def test_old_problems_and_rows_over_the_cap_are_pruned(segment, workspace, settings):
    # given: 3 problems now, 1 from 31 days ago
    settings.UPTAKE_INGESTION_PROBLEMS_MAX_ROWS = 2
    with time_machine.travel(FROZEN_NOW - timedelta(days=31), tick=False):
        post(segment, BATCH, {"batch": [track("old", context={}, userId="x")]})
    post(segment, BATCH, {"batch": [track(f"m-{n}", context={}, userId="x") for n in range(3)]})
    # when
    deleted = ingestion_problems_prune(now=FROZEN_NOW)
    # then: the old one and the oldest beyond 2 (ties by id) go
    assert deleted == 2
    assert sorted(IngestionProblem.objects.values_list("message_id", flat=True)) == ["m-1", "m-2"]


# ---------------------------------------------------------------------------
# Rate limit and outage
# ---------------------------------------------------------------------------


def test_over_the_rate_limit_is_429_with_retry_after(segment, settings):
    # given
    settings.UPTAKE_RATE_LIMIT_ENABLED = True
    settings.UPTAKE_RATE_BURST = 1
    settings.UPTAKE_RATE_PER_SECOND = 0.5
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert post(segment, BATCH, {"batch": [track("m-1")]}).status_code == 200
    # when
    response = post(segment, BATCH, {"batch": [track("m-2")]})
    # then
    assert (response.status_code, response["Retry-After"], response.json()["code"]) == (429, "2", "throttled")
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["m-1"]


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_is_503_with_retry_after(workspace, make_key, settings):
    # given
    settings.UPTAKE_API_KEY_CACHE_SECONDS = 0
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(make_key(workspace, "ingest")[1]))
    # when
    with database_unreachable():
        response = post(client, BATCH, {"batch": [track("m-1")]})
    # then
    assert (response.status_code, response["Retry-After"], response.json()["code"]) == (
        503,
        str(settings.UPTAKE_RETRY_AFTER_SECONDS),
        "database_unavailable",
    )
    assert UsageEvent.objects.count() == 0


def test_the_schema_documents_every_endpoint(client):
    # when
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    # then
    for endpoint in ("batch", "track", "identify", "group", "page", "screen", "alias"):
        operation = schema["paths"][f"/api/segment/v1/{endpoint}"]["post"]
        assert sorted(operation["responses"]) == ["200", "400", "401", "403", "406", "411", "413", "415", "429", "503"]
        assert operation["security"] == [{"SegmentWriteKey": []}]
    assert schema["components"]["securitySchemes"]["SegmentWriteKey"]["scheme"] == "basic"


def test_products_and_modules_from_display_names_are_named_after_them(segment):
    # when
    post(segment, BATCH, {"batch": [track("m-1", properties={"module_id": "Project", "product_id": "MySaaS"})]})
    # then
    assert list(Product.objects.values_list("key", "name")) == [("MySaaS", "MySaaS")]
    assert list(Module.objects.values_list("key", "name")) == [("Project", "Project")]


# ---------------------------------------------------------------------------
# Where admins see the problems: dashboard page, header count, admin
# ---------------------------------------------------------------------------


@pytest.fixture
def problems(segment):
    """Three problems: two no_account, one missing_event."""
    post(
        segment,
        BATCH,
        {
            "batch": [
                track("m-1", context={}, userId="x"),
                track("m-2", context={}, userId="y"),
                {"type": "track", "messageId": "m-3", "userId": "u", "context": {"groupId": "a"}},
            ]
        },
    )


def test_admins_see_problems_newest_first_with_counts_per_reason(problems, client, workspace, staff_of):
    # given
    client.force_login(staff_of(workspace, "admin"))
    # when
    page = client.get("/ingestion/problems/").content.decode()
    # then: counts per reason, most frequent first, and every problem listed
    counts = page[page.index('id="reason-counts"') : page.index("</table>")]
    assert counts.index("no_account") < counts.index("missing_event")
    assert "<td>2</td>" in counts and "<td>1</td>" in counts
    listing = page[page.index('id="problems"') :]
    assert [m for m in ("m-1", "m-2", "m-3") if f"<td>{m}</td>" in listing] == ["m-1", "m-2", "m-3"]
    # and the header counts them on every dashboard page
    assert 'id="ingestion-problems-count">3</span>' in client.get("/ingestion/problems/").content.decode()


def test_the_newest_problem_comes_first(segment, client, workspace, staff_of):
    # given
    post(segment, BATCH, {"batch": [track("older", context={}, userId="x")]})
    with time_machine.travel(FROZEN_NOW + timedelta(minutes=5), tick=False):
        post(segment, BATCH, {"batch": [track("newer", context={}, userId="x")]})
    client.force_login(staff_of(workspace, "owner"))
    # when
    page = client.get("/ingestion/problems/").content.decode()
    # then
    assert page.index("<td>newer</td>") < page.index("<td>older</td>")


def test_viewers_get_no_problems_page_and_no_header_count(problems, client, workspace, staff_of):
    # given
    client.force_login(staff_of(workspace, "viewer"))
    # when
    response = client.get("/ingestion/problems/")
    # then
    assert response.status_code == 403
    assert "ingestion-problems-link" not in client.get("/").content.decode()


def test_the_admin_lists_problems_read_only(problems, client, workspace, staff_of):
    # given
    client.force_login(staff_of(workspace, "admin"))
    # when
    listing = client.get("/admin/usage/ingestionproblem/")
    problem = IngestionProblem.objects.get(message_id="m-3")
    change = client.post(f"/admin/usage/ingestionproblem/{problem.pk}/change/", {"reason": "edited"})
    # then
    assert listing.status_code == 200
    assert listing.content.decode().count("no_account") >= 2
    assert change.status_code == 403
    assert IngestionProblem.objects.get(pk=problem.pk).reason == "missing_event"


# ---------------------------------------------------------------------------
# The one-pass batch scanner (sizes of messages as sent) against json.loads
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"batch": [{"a": 1}, {"b": "é"}], "sentAt": "x"}',
        ' \n{ "sentAt" : "x" ,\t"batch" : [ {"a": [1, {"b": null}]} , {} ] , "writeKey": "k" } \n',
        '{"batch": []}',
        "{}",
        '{"batch": {"a": 1}}',
        '{"x": "\\"batch\\": [", "batch": [{"s": "]},{"}]}',
    ],
)
def test_the_batch_scanner_reads_what_json_loads_reads(text):
    from usage.segment import _scan_batch

    # when
    body, sizes = _scan_batch(text)
    # then
    assert body == json.loads(text)
    assert len(sizes) == (len(body["batch"]) if isinstance(body.get("batch"), list) else 0)


@pytest.mark.parametrize("text", ['{"batch": [1,]}', '{"batch": [1] x', '{"batch": [1]} []', "{'a': 1}", '{"a" 1}'])
def test_the_batch_scanner_refuses_what_json_loads_refuses(text):
    from usage.segment import _scan_batch

    # then
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        _scan_batch(text)


@pytest.mark.parametrize("text", ['{"batch": [1], "batch": [{"a": 2}]}', '{"batch": [{"a": 1, "a": 2}]}'])
def test_the_batch_scanner_refuses_a_key_twice_where_json_loads_keeps_the_last(text):
    from core.text import DuplicateKeyError
    from usage.segment import _scan_batch

    # then
    assert json.loads(text)
    with pytest.raises(DuplicateKeyError):
        _scan_batch(text)


def test_message_sizes_are_their_bytes_as_sent():
    from usage.segment import segment_body_parse
    from usage.validation import BodyError

    # given: {"a": "xxx"} is 12 bytes; {"a": "é"} is 10 characters and 11 bytes in UTF-8
    ascii_batch = '{"batch": [{"a": "é"}, {"a": "xxx"}]}'.encode()
    accented = '{"batch": [{"a": "é"}]}'.encode()
    # when
    with pytest.raises(BodyError) as too_large:
        segment_body_parse(ascii_batch, endpoint="batch", max_message_bytes=11)
    with pytest.raises(BodyError) as accented_too_large:
        segment_body_parse(accented, endpoint="batch", max_message_bytes=10)
    messages, _ = segment_body_parse(accented, endpoint="batch", max_message_bytes=11)
    # then
    assert too_large.value.message == "Message at index 1 is 12 bytes; the limit is 11 bytes per message."
    assert accented_too_large.value.message == "Message at index 0 is 11 bytes; the limit is 10 bytes per message."
    assert messages == [{"a": "é"}]
