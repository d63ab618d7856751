"""Dormant and usage-drop alert pipelines on the beat schedule: events through ingestion at frozen times,
rollups, then the task → exactly the expected messages at a real HTTP receiver, once."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from accounts.models import Account
from alerts.models import AlertDelivery, AlertWindowMark
from alerts.rollup_triggers import usage_drop_window
from alerts.services import pipeline_create
from alerts.tasks import alerts_evaluate_rollup_triggers_task
from analytics.services import rollup_pending
from tests.conftest import FROZEN_NOW
from usage.services import events_ingest

pytestmark = pytest.mark.django_db

# FROZEN_NOW is Wednesday 2026-11-18: the last complete 7-day window is Mon 11-09 … Sun 11-15, the prior one
# Mon 11-02 … Sun 11-08.


def _at(day: str, hour: int = 10) -> str:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).isoformat()


def _ingest(workspace, *events: tuple[str, str, str, int]) -> None:
    payload = [
        {"account_id": account, "feature_id": feature, "timestamp": _at(day), "quantity": quantity}
        for account, feature, day, quantity in events
    ]
    result = events_ingest(workspace=workspace, payload=payload, now=FROZEN_NOW)
    assert result.rejected == [] and result.accepted == len(payload), result


@pytest.fixture
def scenario(workspace):
    _ingest(
        workspace,
        # quiet: last real use 19 days ago; a reserved-prefix event yesterday does not count as use
        ("quiet", "export", "2026-10-30", 3),
        ("quiet", "license.check", "2026-11-17", 1),
        # busy: steady (10 and 10), used yesterday
        ("busy", "export", "2026-11-03", 10),
        ("busy", "export", "2026-11-12", 10),
        ("busy", "reports", "2026-11-17", 1),
        # dropper: 20 uses the week before, 2 last week (-90 %), last used 8 days ago
        ("dropper", "export", "2026-11-03", 15),
        ("dropper", "reports", "2026-11-04", 5),
        ("dropper", "export", "2026-11-10", 3),
        ("dropper", "export", "2026-11-10", -1),
        # churned: long quiet and dropped, but churned accounts are nobody's concern
        ("gone", "export", "2026-11-02", 30),
    )
    Account.objects.filter(workspace=workspace, external_id="gone").update(status=Account.Status.CHURNED)
    # ghost: known for 60 days, never used anything (not dormant: dormancy needs a day of use before);
    # newbie: created today, never used anything
    Account.objects.create(
        workspace=workspace,
        external_id="ghost",
        name="Ghost Co",
        first_seen_at=FROZEN_NOW - timedelta(days=60),
    )
    Account.objects.create(workspace=workspace, external_id="newbie", first_seen_at=FROZEN_NOW)
    rollup_pending(now=FROZEN_NOW)
    return workspace


def _pipelines(workspace, receiver, **drop_trigger):
    dormant = pipeline_create(
        workspace=workspace,
        name="Dormant",
        trigger={"type": "dormant", "days": 14},
        destinations=[{"type": "slack", "url": receiver.url("/dormant")}],
    )
    drop = pipeline_create(
        workspace=workspace,
        name="Drop",
        trigger={"type": "usage_drop", "percent": 50, "days": 7, **drop_trigger},
        destinations=[{"type": "slack", "url": receiver.url("/drop")}],
    )
    return dormant, drop


def _run(capture) -> dict:
    with capture(execute=True):
        return alerts_evaluate_rollup_triggers_task()


def test_usage_drop_window_is_the_last_complete_one():
    # when / then
    assert usage_drop_window(today=date(2026, 11, 18), days=7) == usage_drop_window(today=date(2026, 11, 16), days=7)
    window = usage_drop_window(today=date(2026, 11, 18), days=7)
    assert (window.start, window.end) == (date(2026, 11, 9), date(2026, 11, 15))
    assert (window.prior.start, window.prior.end) == (date(2026, 11, 2), date(2026, 11, 8))
    assert usage_drop_window(today=date(2026, 11, 15), days=7).start == date(2026, 11, 2)


@time_machine.travel(FROZEN_NOW, tick=False)
def test_dormant_and_usage_drop_alerts_from_rollups_once(scenario, receiver, eager, django_capture_on_commit_callbacks):
    # given
    dormant, drop = _pipelines(scenario, receiver)
    # when
    first = _run(django_capture_on_commit_callbacks)
    # then: quiet is dormant, dropper dropped; busy (used yesterday), ghost and newbie (never used) and gone are not
    assert first == {"workspaces": 1, "dormant": 1, "usage_drop": 1}
    by_account = {(d.pipeline_id, d.payload["account"]["id"]): d for d in AlertDelivery.objects.order_by("id")}
    assert sorted(by_account) == [(dormant.pk, "quiet"), (drop.pk, "dropper")]
    assert by_account[(dormant.pk, "quiet")].payload["details"] == {"days": 14, "last_used_on": "2026-10-30"}
    assert by_account[(drop.pk, "dropper")].payload["details"] == {
        "current": 2,
        "prior": 20,
        "drop_percent": 90.0,
        "days": 7,
    }
    assert sorted(r.path for r in receiver.requests) == ["/dormant", "/drop"]
    # without a template the title is the bare event name
    titles = sorted(r.json["blocks"][0]["text"]["text"] for r in receiver.requests)
    assert titles == ["account.dormant", "usage.drop"]
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sent"}

    # when: the beat runs again, now and an hour later
    again = _run(django_capture_on_commit_callbacks)
    with time_machine.travel(FROZEN_NOW + timedelta(hours=1), tick=False):
        later = _run(django_capture_on_commit_callbacks)
    # then: nothing new
    assert again == later == {"workspaces": 1, "dormant": 0, "usage_drop": 0}
    assert len(receiver.requests) == 2 and AlertDelivery.objects.count() == 2
    assert AlertWindowMark.objects.count() == 2


@time_machine.travel(FROZEN_NOW, tick=False)
def test_usage_drop_counts_only_the_pipelines_features(scenario, receiver, eager, django_capture_on_commit_callbacks):
    # given: a drop pipeline on "reports" only (busy: 0 → 0 in the windows; dropper: 5 → 0)
    _, drop = _pipelines(scenario, receiver, features=["reports"])
    # when
    result = _run(django_capture_on_commit_callbacks)
    # then
    assert result["usage_drop"] == 1
    [delivery] = AlertDelivery.objects.filter(pipeline=drop)
    assert delivery.payload["details"] == {"current": 0, "prior": 5, "drop_percent": 100.0, "days": 7}
    assert delivery.payload["account"]["id"] == "dropper"


@time_machine.travel(FROZEN_NOW, tick=False)
def test_disabled_pipelines_and_workspaces_without_pipelines_send_nothing(
    scenario, receiver, eager, django_capture_on_commit_callbacks
):
    # given
    pipeline_create(
        workspace=scenario,
        name="Off",
        enabled=False,
        trigger={"type": "dormant", "days": 1},
        destinations=[{"type": "slack", "url": receiver.url()}],
    )
    # when
    result = _run(django_capture_on_commit_callbacks)
    # then
    assert result == {"workspaces": 0, "dormant": 0, "usage_drop": 0}
    assert receiver.requests == []
    assert AlertDelivery.objects.count() == 0 and AlertWindowMark.objects.count() == 0
