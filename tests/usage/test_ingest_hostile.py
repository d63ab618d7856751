"""Hostile input to ingestion: what is echoed back can always be rendered (so a committed batch is always
answered 2xx), ids are printable text, and timestamps at the ends of the calendar are refused by name."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Account, EndUser
from config.jsonio import JSONRenderer
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

UNKNOWN_FIELD_SURROGATE = '{"account_id": "a", "feature_id": "f", "\\ud800": 1}'
TIMESTAMP_SURROGATE = (
    '[{"account_id": "a", "feature_id": "f"}, {"account_id": "a", "feature_id": "f", "timestamp": "\\ud800"}]'
)
# The fast path serves Accept "" and application/json; any other Accept goes through the DRF view.
ACCEPTS = [{}, {"HTTP_ACCEPT": "application/json; version=1"}]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_a_lone_surrogate_in_an_unknown_field_name_is_answered_200_and_stored_once(api, accept):
    # when a body names an unknown field with a lone surrogate (valid JSON, not encodable as UTF-8)
    response = api.post("/api/v1/events", UNKNOWN_FIELD_SURROGATE, content_type="application/json", **accept)
    # then the committed batch is answered 200, the name echoed with U+FFFD, and the event stored once
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "ignored": 0,
        "rejected": [],
        "warnings": [
            {
                "index": 0,
                "code": "unknown_field",
                "field": "\ufffd",
                "message": "Unknown field '\ufffd' was ignored; put custom data in 'properties'.",
            }
        ],
    }
    assert UsageEvent.objects.count() == 1


@pytest.mark.parametrize("accept", ACCEPTS)
def test_a_lone_surrogate_in_another_events_timestamp_is_answered_200_and_stored_once(api, accept):
    # when the second event of a batch has a lone surrogate as its timestamp
    response = api.post("/api/v1/events", TIMESTAMP_SURROGATE, content_type="application/json", **accept)
    # then the first is stored once and the second rejected, in a 200 that renders
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "ignored": 0,
        "rejected": [
            {
                "index": 1,
                "code": "invalid_value",
                "message": "'timestamp' '\ufffd' is not ISO 8601 (e.g. 2026-11-18T12:00:00Z).",
                "field": "timestamp",
            }
        ],
        "warnings": [],
    }
    assert UsageEvent.objects.count() == 1


def test_the_json_renderer_cannot_fail_on_text():
    # when data holding lone surrogates (in a key and a value) is rendered
    rendered = JSONRenderer().render({"\udc80": ["ok", "\ud800x"]})
    # then it renders, each surrogate replaced by U+FFFD
    assert json.loads(rendered) == {"\ufffd": ["ok", "\ufffdx"]}


@pytest.mark.parametrize(
    ("field", "value", "phrase"),
    [
        ("account_id", "acct\u0007", "contains the control character U+0007"),
        ("account_id", "a\u0000b", "contains the NUL character"),
        ("account_id", "line\nbreak", "contains the control character U+000A"),
        ("user_id", "u\u0085v", "contains the control character U+0085"),
        ("user_id", "\ud800", "contains an unpaired surrogate (invalid Unicode)"),
    ],
)
def test_ids_with_control_characters_are_rejected_as_invalid_id_and_nothing_is_stored(api, field, value, phrase):
    # given an event whose id is not printable text, and a good neighbour
    bad = {"account_id": "a", "feature_id": "f", field: value}
    body = json.dumps({"events": [bad, {"account_id": "ok", "feature_id": "f"}]})
    # when
    response = api.post("/api/v1/events", body, content_type="application/json")
    # then the bad event is rejected by name, the good one stored, and no account or user holds the bad id
    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {"index": 0, "code": "invalid_id", "message": f"'{field}' {phrase}; ids are printable text.", "field": field}
    ]
    assert list(UsageEvent.objects.values_list("account__external_id", flat=True)) == ["ok"]
    assert list(Account.objects.values_list("external_id", flat=True)) == ["ok"]
    assert EndUser.objects.count() == 0


@pytest.mark.parametrize(
    "timestamp",
    [
        # Python 3.11's fromisoformat read each of these as 10:00 UTC today
        "{day}T10:00:00\u0000Z",
        "{day}\u000010:00:00Z",
        "{day}T10:00:00XZ",
        "{day}T10:00:00\u0007+00:00",
    ],
)
def test_a_timestamp_with_stray_characters_is_not_iso_8601(api, timestamp):
    # given
    timestamp = timestamp.format(day=timezone.now().date().isoformat())
    # when
    response = api.post("/api/v1/events", {"account_id": "a", "feature_id": "f", "timestamp": timestamp}, format="json")
    # then
    assert response.json()["rejected"] == [
        {
            "index": 0,
            "code": "invalid_value",
            "message": f"'timestamp' '{timestamp.replace(chr(0), chr(0x2400))}' is not ISO 8601 (e.g. "
            "2026-11-18T12:00:00Z).",
            "field": "timestamp",
        }
    ]
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize(
    "timestamp",
    ["{day}", "{day}T10Z", "{day}T10:00Z", "{day} 10:00:00", "{day}T10:00:00,5+05:30", "{compact}T100000Z"],
)
def test_iso_8601_forms_clients_send_are_accepted(api, timestamp):
    # given
    yesterday = timezone.now().date() - timedelta(days=1)  # never in the future, well inside the window
    timestamp = timestamp.format(day=yesterday.isoformat(), compact=yesterday.strftime("%Y%m%d"))
    # when
    response = api.post("/api/v1/events", {"account_id": "a", "feature_id": "f", "timestamp": timestamp}, format="json")
    # then
    assert (response.json()["accepted"], response.json()["rejected"]) == (1, [])


@pytest.mark.parametrize(
    "timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+00:45"]
)
def test_timestamps_pushed_past_the_calendar_by_their_offset_are_rejected(api, timestamp):
    # when an event's offset moves it before year 1 or after 9999 in UTC
    response = api.post("/api/v1/events", {"account_id": "a", "feature_id": "f", "timestamp": timestamp}, format="json")
    # then it is rejected by name and nothing is stored
    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {
            "index": 0,
            "code": "invalid_value",
            "message": f"'timestamp' '{timestamp}' is out of range: in UTC it falls before year 1 or after 9999.",
            "field": "timestamp",
        }
    ]
    assert UsageEvent.objects.count() == 0 and Account.objects.count() == 0


@pytest.mark.parametrize(
    ("timestamp", "code", "message"),
    [
        (
            "0001-01-01T00:00:00+01:00",
            "invalid_value",
            "'timestamp' '0001-01-01T00:00:00+01:00' is out of range: in UTC it falls before year 1 or after 9999.",
        ),
        (
            "9999-12-31T23:59:59-01:00",
            "invalid_value",
            "'timestamp' '9999-12-31T23:59:59-01:00' is out of range: in UTC it falls before year 1 or after 9999.",
        ),
        (
            "0001-01-01T00:00:00",
            "too_old",
            "'timestamp' 0001-01-01T00:00:00+00:00 is older than this workspace's window of 35 days.",
        ),
        (
            "9999-12-31T23:59:59Z",
            "in_future",
            "'timestamp' 9999-12-31T23:59:59+00:00 is more than 300 seconds in the future.",
        ),
    ],
)
def test_usage_record_refuses_timestamps_at_year_1_and_9999_by_name(api, workspace, timestamp, code, message):
    # given a known account
    Account.objects.create(workspace=workspace, external_id="a")
    # when usage is recorded at the ends of the calendar
    response = api.post(
        "/api/v1/usage/record", {"account_id": "a", "feature_id": "f", "timestamp": timestamp}, format="json"
    )
    # then 400 names the field and nothing is stored
    assert response.status_code == 400
    assert response.json()["error"] == {"code": code, "message": message, "field": "timestamp"}
    assert UsageEvent.objects.count() == 0


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("depth", "accepted"), [(62, 1), (63, 1), (64, 0), (900, 0)])
def test_properties_nest_at_most_64_levels(api, depth, accepted):
    # given properties (one level) holding `depth` nested lists (900 was stored; near the parser's own limit,
    # encoding them again for storage ran out of stack: a 500)
    body = json.dumps({"account_id": "a", "feature_id": "f", "properties": {"p": "__P__"}})
    body = body.replace('"__P__"', _nested(depth))
    # when
    response = api.generic("POST", "/api/v1/events", body, content_type="application/json")
    # then
    assert response.json()["accepted"] == accepted
    if not accepted:
        assert response.json()["rejected"] == [
            {
                "index": 0,
                "code": "invalid_value",
                "message": "'properties' nests JSON deeper than 64 levels.",
                "field": "properties",
            }
        ]
    assert UsageEvent.objects.count() == accepted


def test_properties_deeper_than_the_encoder_can_go_are_refused_by_name():
    # given properties nested past the recursion limit (built without the parser, which would refuse them)
    from usage.validation import validate_event

    deep: list = []
    for _ in range(5000):
        deep = [deep]
    # when
    checked = validate_event(
        {"account_id": "a", "feature_id": "f", "properties": {"p": deep}},
        index=0,
        now=timezone.now(),
        late_event_policy="window",
        late_event_window_days=35,
        max_future_seconds=300,
        max_properties_bytes=8192,
    )
    # then
    assert (checked.code, checked.message) == ("invalid_value", "'properties' nests JSON deeper than 64 levels.")
