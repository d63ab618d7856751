"""The feature-usage analytics API against an independent oracle computed from the events sent."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Account
from analytics.models import FeatureAccountDay
from analytics.services import rollup_pending
from tests.conftest import FROZEN_NOW

from .conftest import ACCOUNTS, FEATURES, random_events
from .helpers import Ev, oracle, store_events

URL = "/api/v1/products/default/analytics/feature-usage"
PRODUCT_FEATURES = dict(FEATURES)


def _expected(
    events: list[Ev],
    *,
    start: date = date(2026, 11, 1),
    end: date = date(2026, 11, 14),
    active_accounts: int = 5,
    **filters,
) -> dict:
    """The oracle's answer for the default product (the two weeks from 2026-11-01 unless told otherwise)."""
    return oracle(
        events,
        features=PRODUCT_FEATURES,
        accounts=ACCOUNTS,
        start=start,
        end=end,
        active_accounts=active_accounts,
        **filters,
    )


def _roll():
    rollup_pending(now=timezone.now())


@pytest.fixture
def stream(workspace, catalog):
    events = random_events(11, 400, datetime(2026, 10, 10, tzinfo=UTC), 40)
    events += [
        # window edges: first second of `from`, last second of `to`, and just outside both
        Ev("export.pdf", "a1", datetime(2026, 11, 1, 0, 0, 0, tzinfo=UTC), 7),
        Ev("export.pdf", "a3", datetime(2026, 11, 14, 23, 59, 59, tzinfo=UTC), 11),
        Ev("export.pdf", "a3", datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), 13),
        Ev("export.pdf", "a1", datetime(2026, 11, 15, 0, 0, 0, tzinfo=UTC), 17),
        # a feature used only in the prior window: quiet now
        Ev("legacy.import", "a2", datetime(2026, 10, 20, 9, tzinfo=UTC), 40),
    ]
    events = [e for e in events if not (e.feature == "legacy.import" and e.at >= datetime(2026, 11, 1, tzinfo=UTC))]
    store_events(workspace, events)
    _roll()
    return events


def test_feature_usage_matches_oracle_for_every_field(api, stream):
    # given the stream rolled up
    # when
    response = api.get(URL, {"from": "2026-11-01", "to": "2026-11-14"})
    # then
    assert response.status_code == 200
    expected = _expected(stream)
    assert response.json() == expected
    assert response.json()["quiet_features"][0]["feature_id"] == "legacy.import"
    assert all(f["feature_id"] != "license.check" for f in response.json()["top_features"])


def test_window_edges_are_inclusive_utc_days(api, workspace, catalog):
    # given only edge events
    store_events(
        workspace,
        [
            Ev("export.pdf", "a1", datetime(2026, 11, 1, 0, 0, 0, tzinfo=UTC), 7),
            Ev("export.pdf", "a3", datetime(2026, 11, 14, 23, 59, 59, tzinfo=UTC), 11),
            Ev("export.pdf", "a3", datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), 13),
            Ev("export.pdf", "a1", datetime(2026, 11, 15, 0, 0, 0, tzinfo=UTC), 17),
        ],
    )
    _roll()
    # when
    body = api.get(URL, {"from": "2026-11-01", "to": "2026-11-14"}).json()
    # then
    feature = body["top_features"][0]
    assert body["totals"]["events"] == 18
    assert feature["events"] == 18 and feature["prior_events"] == 13
    assert feature["sparkline"][0] == 7 and feature["sparkline"][-1] == 11 and sum(feature["sparkline"]) == 18
    assert feature["sparkline_days"][0] == "2026-11-01" and feature["sparkline_days"][-1] == "2026-11-14"


@pytest.mark.parametrize(
    "params",
    [
        {"event": "EXPORT"},
        {"account_id": "a2"},
        {"event": "o", "account_id": "a3"},
        {"event": "nothing-matches"},
    ],
)
def test_filters_apply_to_every_section(api, stream, params):
    # given / when
    response = api.get(URL, {"from": "2026-11-01", "to": "2026-11-14", **params})
    # then
    active = 5 if "account_id" not in params else 1
    expected = _expected(stream, active_accounts=active, event=params.get("event"), account=params.get("account_id"))
    assert response.status_code == 200
    assert response.json() == expected


@time_machine.travel(FROZEN_NOW, tick=False)
def test_default_window_is_last_30_days_including_today(api, stream):
    # when
    body = api.get(URL).json()
    # then
    expected = _expected(stream, start=date(2026, 10, 20), end=date(2026, 11, 18), active_accounts=6)
    assert (body["from"], body["to"]) == ("2026-10-20", "2026-11-18")
    assert body == expected


def test_heatmap_in_new_york_across_the_dst_change(api, workspace, catalog):
    # given a New York workspace; DST ends 2026-11-01 at 06:00 UTC (02:00 EDT → 01:00 EST)
    workspace.timezone = "America/New_York"
    workspace.save(update_fields=["timezone"])
    events = [
        Ev("export.pdf", "a1", datetime(2026, 10, 31, 14, 0, tzinfo=UTC), 3),  # Sat 10:00 EDT
        Ev("export.pdf", "a1", datetime(2026, 11, 2, 14, 0, tzinfo=UTC), 5),  # Mon 09:00 EST
        Ev("export.pdf", "a2", datetime(2026, 11, 1, 5, 30, tzinfo=UTC), 2),  # Sun 01:30 EDT
        Ev("export.pdf", "a2", datetime(2026, 11, 1, 6, 30, tzinfo=UTC), 4),  # Sun 01:30 EST
        Ev("export.pdf", "a3", datetime(2026, 11, 3, 2, 15, tzinfo=UTC), 6),  # Mon 21:15 EST (UTC Tuesday)
    ]
    store_events(workspace, events)
    _roll()
    # when
    body = api.get(URL, {"from": "2026-10-31", "to": "2026-11-03"}).json()
    # then
    expected = _expected(events, start=date(2026, 10, 31), end=date(2026, 11, 3), tz="America/New_York")
    assert body["usage_pattern"] == expected["usage_pattern"]
    grid = body["usage_pattern"]
    assert grid[6][10] == 3 and grid[1][9] == 5 and grid[0][1] == 6 and grid[1][21] == 6
    assert sum(map(sum, grid)) == 20
    # the single-account path (raw events of that account) agrees
    one = api.get(URL, {"from": "2026-10-31", "to": "2026-11-03", "account_id": "a2"}).json()
    assert one["usage_pattern"][0][1] == 6 and sum(map(sum, one["usage_pattern"])) == 6


def test_heatmap_in_a_half_hour_zone(api, workspace, catalog):
    # given Kolkata (+05:30): 15-minute buckets put 08:45 and 09:15 UTC in different local hours
    workspace.timezone = "Asia/Kolkata"
    workspace.save(update_fields=["timezone"])
    events = [
        Ev("sso.login", "a1", datetime(2026, 11, 4, 8, 45, tzinfo=UTC), 1),  # Wed 14:15
        Ev("sso.login", "a1", datetime(2026, 11, 4, 9, 15, tzinfo=UTC), 2),
    ]  # Wed 14:45
    events.append(Ev("sso.login", "a1", datetime(2026, 11, 4, 9, 35, tzinfo=UTC), 4))  # Wed 15:05
    store_events(workspace, events)
    _roll()
    # when
    grid = api.get(URL, {"from": "2026-11-04", "to": "2026-11-04"}).json()["usage_pattern"]
    # then
    assert grid[3][14] == 3 and grid[3][15] == 4 and sum(map(sum, grid)) == 7


def test_late_and_negative_events_restate_earlier_days(api, workspace, stream):
    # given a late negative correction and a late use, both on days already rolled up
    late = [
        Ev("reports.view", "a3", datetime(2026, 11, 3, 8, tzinfo=UTC), -2),
        Ev("legacy.import", "a4", datetime(2026, 11, 5, 8, tzinfo=UTC), 1),
        Ev("export.pdf", "a1", datetime(2026, 10, 25, 8, tzinfo=UTC), -1000),
    ]
    store_events(workspace, late)
    _roll()
    # when
    body = api.get(URL, {"from": "2026-11-01", "to": "2026-11-14"}).json()
    # then
    expected = _expected(stream + late)
    assert body == expected
    assert all(q["feature_id"] != "legacy.import" for q in body["quiet_features"])


def test_free_tier_gets_402_and_nothing_is_computed(make_client, free_workspace):
    # given
    client = make_client(free_workspace)
    # when
    response = client.get(URL)
    # then
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "payment_required"
    assert FeatureAccountDay.objects.count() == 0


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"from": "2026-13-01"}, "from", "Date has wrong format"),
        ({"to": "yesterday"}, "to", "Date has wrong format"),
        ({"from": "2026-11-10", "to": "2026-11-09"}, "to", "'to' (2026-11-09) is before 'from' (2026-11-10)"),
        ({"from": "2020-01-01", "to": "2026-11-09"}, "from", "longer than 366 days"),
    ],
)
def test_bad_dates_are_400_naming_the_field(api, catalog, params, field, fragment):
    # when
    response = api.get(URL, params)
    # then
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert fragment in response.json()["error"]["message"]


def test_unknown_product_and_account_are_404(api, catalog):
    assert api.get("/api/v1/products/nope/analytics/feature-usage").json()["error"]["code"] == "unknown_product"
    response = api.get(URL, {"account_id": "ghost"})
    assert response.status_code == 404 and response.json()["error"]["field"] == "account_id"


def test_read_scope_is_required(make_client, workspace, catalog):
    response = make_client(workspace, "ingest").get(URL)
    assert response.status_code == 403


def test_other_workspaces_events_never_leak(api, stream, other_workspace, make_client):
    # given the same keys in another workspace with its own events
    from catalog.services import feature_create, product_create

    p = product_create(workspace=other_workspace, key="default", name="Default")
    feature_create(workspace=other_workspace, key="export.pdf", name="PDF export", product=p)
    Account.objects.create(workspace=other_workspace, external_id="a1", name="X", domain="x.com")
    store_events(other_workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 3, tzinfo=UTC), 999)])
    _roll()
    # when
    body = api.get(URL, {"from": "2026-11-01", "to": "2026-11-14"}).json()
    # then
    expected = _expected(stream)
    assert body == expected
    other = make_client(other_workspace).get(URL, {"from": "2026-11-01", "to": "2026-11-14"}).json()
    assert other["totals"]["events"] == 999


def test_schema_documents_the_analytics_paths(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/products/{product_id}/analytics/feature-usage" in schema
    assert "/api/v1/products/{product_id}/analytics/features/{feature_id}/daily" in schema
    assert "/api/v1/accounts/{account_id}/analytics/daily" in schema
    assert "adoption_pct" in schema


def test_a_new_rollup_is_never_hidden_by_the_response_cache(api, workspace, stream):
    # given a response computed (and cached) from the current rollups
    params = {"from": "2026-11-01", "to": "2026-11-14"}
    before = api.get(URL, params).json()
    assert api.get(URL, params).json() == before
    # when a late event is rolled up
    late = Ev("sso.login", "a4", datetime(2026, 11, 7, 12, tzinfo=UTC), 50)
    store_events(workspace, [late])
    _roll()
    # then the next answer includes it
    after = api.get(URL, params).json()
    assert after["totals"]["events"] == before["totals"]["events"] + 50
    assert after == _expected(stream + [late])
