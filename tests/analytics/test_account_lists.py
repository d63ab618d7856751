"""The definitions the CSM lists and the alert triggers share, at their edges: dormant at exactly `days`, usage
dropped by exactly `percent`, near limit at exactly the threshold and never on a limit of 0; and the dormant and
usage-drop alerts naming exactly the accounts of their lists on the same data."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from accounts.models import Account
from alerts.models import AlertDelivery
from alerts.rollup_triggers import usage_drop_window
from alerts.services import pipeline_create
from alerts.tasks import alerts_evaluate_rollup_triggers_task
from analytics.selectors import (
    Window,
    accounts_near_limit,
    accounts_usage_dropped,
    dormant_accounts,
    free_accounts_using_ungranted,
    usage_dropped,
)
from analytics.selectors.common import window_and_prior_sums
from analytics.services import rollup_pending
from catalog.services import feature_activate, feature_create, item_activate, item_create
from entitlements.services import item_entitlement_set, subscription_create
from tests.conftest import FROZEN_NOW
from usage.services import events_ingest

pytestmark = pytest.mark.django_db

TODAY = FROZEN_NOW.date()  # Wednesday 2026-11-18
# The drop window the alert compares for 7 days (Mon 11-09 … Sun 11-15, prior Mon 11-02 … Sun 11-08); the
# list is asked for the same window.
WEEK = Window(date(2026, 11, 9), date(2026, 11, 15))


def _ingest(workspace, *events: tuple[str, str, date, int]) -> None:
    payload = [
        {
            "account_id": account,
            "feature_id": feature,
            "timestamp": datetime.combine(day, datetime.min.time(), tzinfo=UTC).replace(hour=10).isoformat(),
            "quantity": quantity,
        }
        for account, feature, day, quantity in events
    ]
    result = events_ingest(workspace=workspace, payload=payload, now=FROZEN_NOW)
    assert result.rejected == [] and result.accepted == len(payload), result


def _ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def _first_seen(workspace, external_id: str, days_ago: int, hour: int = 0) -> None:
    at = datetime.combine(_ago(days_ago), datetime.min.time(), tzinfo=UTC).replace(hour=hour)
    Account.objects.filter(workspace=workspace, external_id=external_id).update(first_seen_at=at, created_at=at)


@pytest.fixture(params=["every feature", "a reserved prefix left out"])
def usage(workspace, request):
    # Two read paths: the account × product × day rollup when the analytics features are every feature, the
    # feature × account × day one when a reserved-prefix feature is left out.
    workspace.late_event_window_days = 90
    workspace.save(update_fields=["late_event_window_days"])
    if request.param != "every feature":
        _ingest(workspace, ("license", "license.check", _ago(30), 1))  # reserved only: no analytics use
    _ingest(
        workspace,
        # dormant edges (days = 14: the last 14 UTC days are 11-05 … 11-18)
        ("day14", "export", _ago(14), 1),  # last use exactly 14 days ago: dormant
        ("day13", "export", _ago(13), 1),  # 13 days ago: inside the last 14 days, not dormant
        ("netzero", "export", _ago(30), 2),  # used 30 days ago; 3 days ago +1 −1 (net 0 is no use): dormant
        ("netzero", "export", _ago(3), 1),
        ("netzero", "export", _ago(3), -1),
        ("young", "export", _ago(20), 1),  # a backdated use, but first seen 13 days ago: not dormant
        ("known14", "export", _ago(20), 1),  # first seen exactly 14 days ago: dormant
        ("gone", "export", _ago(40), 1),  # churned
        # usage-drop edges (percent = 50), prior window 11-02 … 11-08, window 11-09 … 11-15
        ("half", "reports", date(2026, 11, 3), 10),  # 10 → 5: dropped by exactly 50 %
        ("half", "reports", date(2026, 11, 10), 5),
        ("almost", "reports", date(2026, 11, 3), 10),  # 10 → 6: dropped by 40 %
        ("almost", "reports", date(2026, 11, 10), 6),
        ("negative", "reports", date(2026, 11, 6), 4),  # 4 → −1 (a correction): dropped by 100 %
        ("negative", "reports", date(2026, 11, 12), -1),
        ("fresh", "reports", date(2026, 11, 12), 3),  # nothing before: prior 0 is never a drop
    )
    for account in ("day14", "day13", "netzero", "license", "gone", "half", "almost", "negative", "fresh"):
        _first_seen(workspace, account, 60)  # (no "license" account in the first case: updates nothing)
    _first_seen(workspace, "young", 13)
    _first_seen(workspace, "known14", 14, hour=23)
    Account.objects.filter(workspace=workspace, external_id="gone").update(status=Account.Status.CHURNED)
    rollup_pending(now=FROZEN_NOW)
    return workspace


def _dormant(workspace, days: int) -> dict[str, str]:
    return {
        r["external_id"]: r["last_used_on"].isoformat()
        for r in dormant_accounts(workspace=workspace, today=TODAY, days=days)
    }


def test_dormant_at_exactly_days(usage):
    # when / then: 14 days
    assert _dormant(usage, 14) == {
        "day14": _ago(14).isoformat(),
        "known14": _ago(20).isoformat(),
        "netzero": _ago(30).isoformat(),
    }
    # and one day fewer moves the edge by one day: day13 is out of its last 13 days, young now known long enough
    assert _dormant(usage, 13) == {
        "day13": _ago(13).isoformat(),
        "day14": _ago(14).isoformat(),
        "known14": _ago(20).isoformat(),
        "netzero": _ago(30).isoformat(),
        "young": _ago(20).isoformat(),
    }
    # and one day more: day14 was used within the last 15 days, known14 is known for less than 15
    assert _dormant(usage, 15) == {"netzero": _ago(30).isoformat()}


def test_dormant_rows_carry_the_last_day_of_use(usage):
    # when
    [row] = [r for r in dormant_accounts(workspace=usage, today=TODAY, days=14) if r["external_id"] == "netzero"]
    # then: the net-zero day 3 days ago is not a use
    assert (row["last_used_on"], row["days_quiet"]) == (_ago(30), 30)
    assert row["last_used_at"] == datetime(2026, 10, 19, 10, 0, tzinfo=UTC)


def test_usage_dropped_by_exactly_percent():
    # when / then: the predicate on both sides of the edge
    assert usage_dropped(current=5, prior=10, percent=50) is True
    assert usage_dropped(current=6, prior=10, percent=50) is False
    assert usage_dropped(current=6, prior=10, percent=40) is True
    assert usage_dropped(current=7, prior=10, percent=40) is False
    assert usage_dropped(current=0, prior=0, percent=1) is False  # prior must be > 0
    assert usage_dropped(current=-3, prior=0, percent=1) is False
    assert usage_dropped(current=-1, prior=4, percent=100) is True


def test_usage_drop_list_at_exactly_percent(usage):
    # when
    def dropped(percent: int) -> list[tuple]:
        rows = accounts_usage_dropped(workspace=usage, window=WEEK, percent=percent)
        return [(r["external_id"], r["uses"], r["prior_uses"], r["change_pct"]) for r in rows]

    # then: 50 % keeps the exact 50 % drop and leaves the 40 % one out; 40 % keeps both (day13 and day14 were
    # last used in the prior window)
    gone = [("day13", 0, 1, -100.0), ("day14", 0, 1, -100.0), ("negative", -1, 4, -100.0)]
    assert dropped(50) == [*gone, ("half", 5, 10, -50.0)]
    assert dropped(40) == [*gone, ("half", 5, 10, -50.0), ("almost", 6, 10, -40.0)]
    assert dropped(51) == gone


def test_the_usage_drop_query_names_its_rollup_table_as_a_quoted_identifier(usage, request):
    # given
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    expected = (
        "analytics_accountproductday"
        if request.node.callspec.params["usage"] == "every feature"
        else "analytics_featureaccountday"
    )
    # when
    with CaptureQueriesContext(connection) as queries:
        accounts_usage_dropped(workspace=usage, window=WEEK, percent=50)
    # then: the table comes from the fixed mapping of model tables, composed with psycopg.sql.Identifier
    sums = [q["sql"] for q in queries.captured_queries if "sum(uses) FILTER" in q["sql"]]
    assert len(sums) == 1
    assert f'FROM "{expected}"' in sums[0]


@pytest.mark.parametrize(
    ("table", "key", "among"),
    [
        ("analytics_featureday; DROP TABLE accounts_account", "feature_id", None),
        ("accounts_account", "id", None),
        ("analytics_featureday", "feature_id; --", None),
        ("analytics_featureday", "feature_id", ("1=1 OR feature_id", [1])),
    ],
)
def test_window_sums_read_only_the_daily_rollups_by_their_fixed_columns(workspace, table, key, among):
    # when / then: a name outside the whitelist never reaches the SQL
    with pytest.raises(ValueError, match="window_and_prior_sums reads no"):
        window_and_prior_sums(workspace=workspace, window=WEEK, table=table, key=key, among=among)


@time_machine.travel(FROZEN_NOW, tick=False)
def test_the_dormant_and_usage_drop_alerts_name_the_accounts_of_their_lists(
    usage, receiver, eager, staff_of, django_capture_on_commit_callbacks
):
    # given: one pipeline per trigger, and a staff member who exports the lists with the same parameters
    dormant = pipeline_create(
        workspace=usage,
        name="Dormant",
        trigger={"type": "dormant", "days": 14},
        destinations=[{"type": "slack", "url": receiver.url("/dormant")}],
    )
    drop = pipeline_create(
        workspace=usage,
        name="Drop",
        trigger={"type": "usage_drop", "percent": 50, "days": 7},
        destinations=[{"type": "slack", "url": receiver.url("/drop")}],
    )
    assert usage_drop_window(today=TODAY, days=7) == WEEK
    client = Client()
    client.force_login(staff_of(usage))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        result = alerts_evaluate_rollup_triggers_task()
    dormant_csv = _csv(client.get("/lists/dormant/export.csv", {"days": "14"}))
    drop_csv = _csv(
        client.get("/lists/usage-drop/export.csv", {"from": "2026-11-09", "to": "2026-11-15", "percent": "50"})
    )
    # then: the same accounts, with the same numbers
    alerted = {
        name: sorted(d.payload["account"]["id"] for d in AlertDelivery.objects.filter(pipeline=p))
        for name, p in (("dormant", dormant), ("drop", drop))
    }
    assert alerted == {"dormant": ["day14", "known14", "netzero"], "drop": ["day13", "day14", "half", "negative"]}
    assert sorted(r[0] for r in dormant_csv[1:]) == alerted["dormant"]
    assert sorted(r[0] for r in drop_csv[1:]) == alerted["drop"]
    assert result == {"workspaces": 1, "dormant": 3, "usage_drop": 4}
    assert {
        d.payload["account"]["id"]: (d.payload["details"]["current"], d.payload["details"]["prior"])
        for d in AlertDelivery.objects.filter(pipeline=drop)
    } == {r[0]: (int(r[4]), int(r[5])) for r in drop_csv[1:]}


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# ---------------------------------------------------------------------------
# Near limit
# ---------------------------------------------------------------------------


@pytest.fixture
def allowances(workspace, product):
    calls = feature_activate(
        feature=feature_create(
            workspace=workspace,
            key="api.calls",
            name="API calls",
            product=product,
            type="quantity",
            levels=[{"value": "0", "name": "None"}, {"value": "100", "name": "Team"}],
            metered=True,
            reset_period="month",
            reset_anchor="calendar",
        )
    )
    free = item_activate(item=item_create(workspace=workspace, key="free", name="Free"))
    team = item_activate(item=item_create(workspace=workspace, key="team", name="Team"))
    item_entitlement_set(item=free, feature=calls, value="0")
    item_entitlement_set(item=team, feature=calls, value="100")
    used = {"at79": 79, "at80": 80, "at100": 100, "at101": 101, "zero": 5}
    _ingest(workspace, *[(account, "api.calls", _ago(1), quantity) for account, quantity in used.items()])
    for account in used:
        plan = "free" if account == "zero" else "team"
        Account.objects.filter(workspace=workspace, external_id=account).update(plan=plan)
        subscription_create(
            workspace=workspace,
            external_id=f"sub-{account}",
            account=Account.objects.get(workspace=workspace, external_id=account),
            items=[free if plan == "free" else team],
            current_term_start=FROZEN_NOW - timedelta(days=200),
        )
    rollup_pending(now=FROZEN_NOW)
    return workspace


def test_near_limit_at_exactly_the_threshold_and_never_on_a_zero_limit(allowances):
    # when
    rows = accounts_near_limit(workspace=allowances, now=FROZEN_NOW)
    at_81 = accounts_near_limit(workspace=allowances, now=FROZEN_NOW, threshold=81)
    # then: 80 of 100 is near, 79 is not; 100 of 100 is near, above it over; a limit of 0 is not near
    assert [(r["external_id"], r["used"], r["limit"], r["used_pct"], r["limit_state"]) for r in rows] == [
        ("at101", 101, 100, 101.0, "over"),
        ("at100", 100, 100, 100.0, "near"),
        ("at80", 80, 100, 80.0, "near"),
    ]
    assert [r["external_id"] for r in at_81] == ["at101", "at100"]


def test_a_zero_limit_is_not_entitled_so_its_use_is_on_the_ungranted_list(allowances):
    # when
    rows = free_accounts_using_ungranted(workspace=allowances, window=Window(_ago(29), TODAY), now=FROZEN_NOW)
    # then
    assert [(r["external_id"], r["features"], r["uses"]) for r in rows] == [("zero", "api.calls", 5)]


@time_machine.travel(FROZEN_NOW, tick=False)
def test_near_limit_page_and_csv_take_the_threshold_and_mark_over_limit_rows(allowances, staff_of):
    # given
    client = Client()
    client.force_login(staff_of(allowances))
    # when
    default = _csv(client.get("/lists/near-limit/export.csv"))
    at_100 = _csv(client.get("/lists/near-limit/export.csv", {"threshold": "100"}))
    page = client.get("/lists/near-limit/", {"threshold": "100"}).content.decode()
    refused = client.get("/lists/near-limit/export.csv", {"threshold": "0"})
    # then
    assert default[0] == [
        "Account",
        "Name",
        "Plan",
        "Owner",
        "Feature",
        "Used",
        "Limit",
        "Used %",
        "Resets at",
        "State",
    ]
    assert [(r[0], r[5], r[6], r[9]) for r in default[1:]] == [
        ("at101", "101", "100", "over"),
        ("at100", "100", "100", "near"),
        ("at80", "80", "100", "near"),
    ]
    assert [r[0] for r in at_100[1:]] == ["at101", "at100"]
    assert '<p class="help" id="count">2 accounts</p>' in page and 'value="100"' in page
    assert refused.status_code == 400 and b"threshold" in refused.content
