"""Delta rollups: a day with a watermark gets only its new events added; whatever the delta cannot account for
(an end user under two accounts, a transaction still adding events, a day marked for a whole recompute) is
recomputed whole. A tampered rollup row shows which one ran: a delta keeps the tampering, a recompute repairs it."""

from datetime import UTC, date, datetime

import pytest
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from accounts.models import Account, EndUser
from analytics.models import (
    AccountFeatureLastSeen,
    AccountProductDay,
    FeatureAccountDay,
    FeatureDay,
    FeatureQuarterHour,
    FeatureUserDay,
    RollupWatermark,
)
from analytics.selectors import rollup_differences
from analytics.services import rollup_pending, rollups_rebuild, usage_days_mark_restated
from catalog.models import Feature
from usage.models import UsageDayDirty, UsageEvent
from usage.services import usage_days_mark_appended

from .helpers import Ev, rollup_during_open_ingestion, store_events

DAY = date(2026, 11, 2)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 2, hour, minute, tzinfo=UTC)


def _watermarks(workspace) -> dict[date, int]:
    return dict(RollupWatermark.objects.filter(workspace=workspace).values_list("day", "event_id"))


def _last_event_id() -> int:
    return UsageEvent.objects.aggregate(last=Max("id"))["last"]


def _fad(workspace) -> list[tuple]:
    return sorted(
        FeatureAccountDay.objects.filter(workspace=workspace).values_list(
            "day", "account__external_id", "uses", "events", "users", "last_at"
        )
    )


def test_a_rolled_up_day_gets_only_its_new_events_added(workspace, catalog):
    # given a day rolled up whole (no watermark yet), which sets its watermark
    store_events(workspace, [Ev("export.pdf", "a1", at(9), 5, "u1"), Ev("export.pdf", "a1", at(10), -1)])
    rollup_pending(now=timezone.now())
    assert _watermarks(workspace) == {DAY: _last_event_id()}
    assert _fad(workspace) == [(DAY, "a1", 4, 2, 1, at(9))]
    # and a tampered feature × account × day row (a recompute would repair it, a delta keeps the +100)
    FeatureAccountDay.objects.update(uses=F("uses") + 100)
    # when new events arrive: the same end user again, a new one, another account's negative event
    store_events(
        workspace,
        [
            Ev("export.pdf", "a1", at(11, 5), 2, "u1"),
            Ev("export.pdf", "a1", at(12, 20), 3, "u2"),
            Ev("export.pdf", "a2", at(13), -2, "u3"),
        ],
    )
    report = rollup_pending(now=timezone.now())
    # then the new events were added to the stored rows, each end user counted once per (day, feature, account)
    assert report.days_rolled_up == 1 and not UsageDayDirty.objects.exists()
    assert _fad(workspace) == [(DAY, "a1", 109, 4, 2, at(12, 20)), (DAY, "a2", -2, 1, 1, None)]
    assert sorted(FeatureUserDay.objects.values_list("end_user__external_id", "account__external_id", "uses")) == [
        ("u1", "a1", 7),
        ("u2", "a1", 3),
        ("u3", "a2", -2),
    ]
    assert list(FeatureDay.objects.values_list("day", "uses", "events")) == [(DAY, 7, 5)]
    assert sorted(AccountProductDay.objects.values_list("account__external_id", "uses", "events", "last_at")) == [
        ("a1", 9, 4, at(12, 20)),
        ("a2", -2, 1, None),
    ]
    assert sorted(FeatureQuarterHour.objects.values_list("bucket", "uses")) == [
        (at(9), 5),
        (at(10), -1),
        (at(11), 2),
        (at(12, 15), 3),
        (at(13), -2),
    ]
    assert list(AccountFeatureLastSeen.objects.values_list("account__external_id", "last_seen_at")) == [
        ("a1", at(12, 20))
    ]
    assert _watermarks(workspace) == {DAY: _last_event_id()}
    # when a rerun finds the day marked again with no new event, then nothing moves
    usage_days_mark_appended(workspace_id=workspace.pk, days=[DAY], now=timezone.now())
    rollup_pending(now=timezone.now())
    assert _fad(workspace) == [(DAY, "a1", 109, 4, 2, at(12, 20)), (DAY, "a2", -2, 1, 1, None)]
    # when the day is marked for a whole recompute (as after deleted events), then the tampering is gone
    usage_days_mark_restated(workspace_id=workspace.pk, days=[DAY], now=timezone.now())
    assert _watermarks(workspace) == {}
    rollup_pending(now=timezone.now())
    assert _fad(workspace) == [(DAY, "a1", 9, 4, 2, at(12, 20)), (DAY, "a2", -2, 1, 1, None)]
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)
    assert _watermarks(workspace) == {DAY: _last_event_id()}


def test_an_end_user_under_two_accounts_makes_the_day_recompute_whole(workspace, catalog):
    # given a rolled-up day with u1 of a1, and a tampered row
    store_events(workspace, [Ev("export.pdf", "a1", at(9), 1, "u1")])
    rollup_pending(now=timezone.now())
    FeatureAccountDay.objects.update(uses=F("uses") + 100)
    # when an event arrives for a2 carrying a1's end user (no ingestion path does this; raw SQL could)
    with transaction.atomic():
        UsageEvent.objects.create(
            workspace=workspace,
            account=Account.objects.get(external_id="a2"),
            end_user=EndUser.objects.get(external_id="u1"),
            feature=Feature.objects.get(key="export.pdf"),
            occurred_at=at(10),
            received_at=timezone.now(),
            quantity=2,
        )
        usage_days_mark_appended(workspace_id=workspace.pk, days=[DAY], now=timezone.now())
    rollup_pending(now=timezone.now())
    # then the day was recomputed whole: tampering repaired, u1 counted for both accounts
    assert _fad(workspace) == [(DAY, "a1", 1, 1, 1, at(9)), (DAY, "a2", 2, 1, 1, at(10))]
    assert list(FeatureUserDay.objects.values_list("account__external_id", "uses", "events")) == [("a1", 3, 2)]
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)
    assert _watermarks(workspace) == {DAY: _last_event_id()}


def test_rebuilds_set_the_watermark_of_every_day_with_events(workspace, catalog):
    # given events on two days, a day marked for a whole recompute, rolled up
    store_events(
        workspace,
        [Ev("export.pdf", "a1", at(9), 1), Ev("sso.login", "a2", datetime(2026, 11, 5, 8, tzinfo=UTC), 4)],
    )
    rollup_pending(now=timezone.now())
    usage_days_mark_restated(workspace_id=workspace.pk, days=[DAY], now=timezone.now())
    assert _watermarks(workspace) == {date(2026, 11, 5): _last_event_id()}
    # when a range rebuild covers the 2nd only, then its watermark is back
    rollups_rebuild(workspace_id=workspace.pk, since=DAY, until=DAY)
    assert _watermarks(workspace) == {DAY: _last_event_id(), date(2026, 11, 5): _last_event_id()}
    # when events arrive and a full rebuild runs, then every day with events has the new last id
    store_events(workspace, [Ev("export.pdf", "a3", datetime(2026, 11, 7, 8, tzinfo=UTC), 2)])
    rollups_rebuild(workspace_id=workspace.pk)
    last = _last_event_id()
    assert _watermarks(workspace) == {DAY: last, date(2026, 11, 5): last, date(2026, 11, 7): last}
    assert not UsageDayDirty.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rollup_during_an_open_ingestion_transaction_recomputes_its_days_whole(workspace, catalog):
    # given a rolled-up day (watermark set), a tampered row, a committed new event on it, and an ingestion
    # transaction that has stored another event but not committed
    store_events(workspace, [Ev("export.pdf", "a1", at(9), 5)])
    rollup_pending(now=timezone.now())
    FeatureAccountDay.objects.update(uses=F("uses") + 100)
    store_events(workspace, [Ev("export.pdf", "a1", at(10), 2)])
    # when a rollup runs meanwhile (it cannot tell which ids the open transaction holds: after waiting 0.25 s
    # for it, it recomputes; it then waits for the ingestion's lock on the day's mark), and the ingestion commits
    results = rollup_during_open_ingestion(
        workspace=workspace, day=DAY, ingest=lambda: store_events(workspace, [Ev("export.pdf", "a1", at(11), 1)])
    )
    # then it recomputed the day whole from the events committed before, and left it without a watermark
    assert results == [True]
    assert _fad(workspace) == [(DAY, "a1", 7, 2, 0, at(10))]
    assert _watermarks(workspace) == {}
    # when the next rollup runs, then the day is whole again, with its watermark
    rollup_pending(now=timezone.now())
    assert _fad(workspace) == [(DAY, "a1", 8, 3, 0, at(11))]
    assert _watermarks(workspace) == {DAY: _last_event_id()}
    assert not UsageDayDirty.objects.exists()
