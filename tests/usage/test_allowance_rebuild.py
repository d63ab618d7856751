"""Allowance counters follow the catalog: events stored before a feature became metered count once it is, under
every reset period and anchor, through metering switched off and on, and under concurrent ingestion."""

import io
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from catalog.services import feature_update
from entitlements.models import AllowanceCounterState, AllowanceUsageDaily, AllowanceUsageEntry, Subscription
from entitlements.periods import period_containing
from entitlements.selectors import entitlement_check
from entitlements.services import (
    ALLOWANCE_COUNTING_LOCK_SLOTS,
    item_entitlement_set,
    subscription_entitlement_set,
    subscription_update,
)
from tests.conftest import FROZEN_NOW
from tests.entitlements.factories import account, feature, plan, subscribe
from usage.allowances import allowance_counters_pending, allowance_counters_rebuild, allowance_counters_sync
from usage.models import UsageEvent
from usage.services import events_ingest
from usage.tasks import allowance_counters_verify_task

LEVELS = [
    {"value": "20", "name": "20"},
    {"value": "50", "name": "50"},
    {"value": "unlimited", "name": "Unlimited", "is_unlimited": True},
]


def _ingest(workspace, events: list[tuple[str, datetime, int]], now: datetime = FROZEN_NOW) -> None:
    payload = [
        {"account_id": a, "feature_id": "api-calls", "quantity": q, "timestamp": t.isoformat()} for a, t, q in events
    ]
    result = events_ingest(workspace=workspace, payload=payload, now=now)
    assert (result.accepted, result.rejected) == (len(events), [])


def _recount(*, account_key: str, reset_period: str, reset_anchor: str, term_start, now: datetime) -> int:
    """The independent model: the sum of the account's events whose own period is the current one."""
    current = period_containing(reset_period=reset_period, reset_anchor=reset_anchor, term_start=term_start, at=now)
    return sum(
        quantity
        for occurred_at, quantity in UsageEvent.objects.filter(
            account__external_id=account_key, feature__key="api-calls"
        ).values_list("occurred_at", "quantity")
        if period_containing(
            reset_period=reset_period, reset_anchor=reset_anchor, term_start=term_start, at=occurred_at
        )
        == current
    )


def _used(workspace, account_key: str = "acct-1", now: datetime = FROZEN_NOW) -> int | None:
    return entitlement_check(workspace=workspace, account_key=account_key, feature_key="api-calls", now=now)["used"]


@pytest.fixture
def history(workspace, product):
    """A quantity feature that is not metered yet, a plan granting 20 of it, and events over 14 months (every
    period boundary of the frozen clock nearby), negative ones included, from both accounts."""
    workspace.late_event_window_days = 800
    workspace.save(update_fields=["late_event_window_days"])
    calls = feature(workspace, product, "api-calls", type="quantity", levels=LEVELS)
    team = plan(workspace, "team", {calls: "20"})
    for key in ("acct-1", "acct-2"):
        subscribe(
            workspace,
            account(workspace, key),
            f"sub-{key}",
            [team],
            term_start=datetime(2025, 10, 31, 7, 30, tzinfo=UTC),
        )
    moments = [
        datetime(2025, 9, 30, 23, 59, tzinfo=UTC),
        datetime(2025, 10, 31, 7, 29, tzinfo=UTC),
        datetime(2025, 12, 31, 12, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 31, 7, 29, tzinfo=UTC),
        datetime(2026, 10, 31, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 15, 23, 59, tzinfo=UTC),
        datetime(2026, 11, 16, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 17, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 18, 7, 29, tzinfo=UTC),
        datetime(2026, 11, 18, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 18, 11, 59, tzinfo=UTC),
    ]
    _ingest(workspace, [("acct-1", t, 3 + i) for i, t in enumerate(moments)] + [("acct-2", moments[-1], 4)])
    _ingest(workspace, [("acct-1", datetime(2026, 11, 18, 9, tzinfo=UTC), -2), ("acct-1", moments[2], -1)])
    return calls


def _meter(calls, **changes):
    """Switch metering on (or change it) and run the rebuild the switch queues (its Celery task)."""
    updated = feature_update(feature=calls, **changes)
    allowance_counters_rebuild(feature_id=calls.pk)
    return updated


def test_nothing_is_counted_before_the_feature_is_metered(workspace, history):
    # then
    assert AllowanceUsageDaily.objects.count() == 0
    assert AllowanceUsageEntry.objects.count() == 0


@pytest.mark.parametrize("reset_period", ["none", "day", "week", "month", "year"])
@pytest.mark.parametrize("reset_anchor", ["calendar", "term"])
def test_switching_metering_on_counts_every_earlier_event_in_its_own_period(
    workspace, history, reset_period, reset_anchor
):
    # when
    _meter(history, metered=True, reset_period=reset_period, reset_anchor=reset_anchor)
    # then
    term = datetime(2025, 10, 31, 7, 30, tzinfo=UTC)
    for key in ("acct-1", "acct-2"):
        expected = _recount(
            account_key=key, reset_period=reset_period, reset_anchor=reset_anchor, term_start=term, now=FROZEN_NOW
        )
        assert _used(workspace, key) == expected
    assert AllowanceUsageEntry.objects.count() == UsageEvent.objects.count() == 16
    assert AllowanceCounterState.objects.get(feature=history).metering_version == 1
    assert allowance_counters_pending() == []


def test_the_recount_model_sees_the_edges_it_is_meant_to(workspace, history):
    # given: the monthly term period of acct-1 runs from 31 October 07:30 (its term start's day and time)
    _meter(history, metered=True, reset_period="month", reset_anchor="term")
    # then: 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 - 2 (every event from 31 October 07:30 on)
    assert _used(workspace) == 90
    # and under the calendar month: from 1 November
    _meter(history, reset_anchor="calendar")
    assert _used(workspace) == 90 - 8


def test_metering_off_and_on_and_every_catalog_change_agree_with_a_recount(workspace, history):
    # given
    _meter(history, metered=True, reset_period="month")
    # when: metering off, events arrive, metering on again
    _meter(history, metered=False)
    assert AllowanceUsageDaily.objects.count() == 0
    _ingest(workspace, [("acct-1", datetime(2026, 11, 18, 10, tzinfo=UTC), 6)])
    _meter(history, metered=True)
    # then
    assert _used(workspace) == _recount(
        account_key="acct-1", reset_period="month", reset_anchor="calendar", term_start=None, now=FROZEN_NOW
    )
    # when: the period, the anchor, the term and the plan's value change (the counters stay; reads differ)
    for changes in ({"reset_period": "week"}, {"reset_anchor": "term"}, {"reset_period": "year"}):
        feature_update(feature=history, **changes)
        history.refresh_from_db()
        term = Subscription.objects.get(external_id="sub-acct-1").current_term_start
        assert _used(workspace) == _recount(
            account_key="acct-1",
            reset_period=history.reset_period,
            reset_anchor=history.reset_anchor,
            term_start=term,
            now=FROZEN_NOW,
        )
    subscription_update(
        subscription=Subscription.objects.get(external_id="sub-acct-1"),
        current_term_start=datetime(2026, 2, 28, 7, 30, tzinfo=UTC),
    )
    item_entitlement_set(item=history.item_entitlements.get().item, feature=history, value="50")
    answer = entitlement_check(workspace=workspace, account_key="acct-1", feature_key="api-calls", now=FROZEN_NOW)
    expected = _recount(
        account_key="acct-1",
        reset_period="year",
        reset_anchor="term",
        term_start=datetime(2026, 2, 28, 7, 30, tzinfo=UTC),
        now=FROZEN_NOW,
    )
    assert (answer["limit"], answer["used"], answer["remaining"]) == (50, expected, max(50 - expected, 0))
    assert answer["resets_at"] == "2027-02-28T07:30:00Z"
    # and a subscription's own value (an override) replaces the plan's
    subscription_entitlement_set(
        subscription=Subscription.objects.get(external_id="sub-acct-1"), feature=history, value="20"
    )
    answer = entitlement_check(workspace=workspace, account_key="acct-1", feature_key="api-calls", now=FROZEN_NOW)
    assert (answer["limit"], answer["used"], answer["remaining"]) == (20, expected, max(20 - expected, 0))
    assert AllowanceCounterState.objects.get(feature=history).metering_version == 3


def test_a_switch_whose_rebuild_was_lost_is_caught_by_the_sweep(workspace, history):
    # given: the switch commits, its task never runs
    feature_update(feature=history, metered=True, reset_period="month")
    assert allowance_counters_pending() == [history.pk]
    # when
    rebuilt = allowance_counters_sync()
    # then
    assert [(r.feature_id, r.metering_version, r.superseded) for r in rebuilt] == [(history.pk, 1, False)]
    assert rebuilt[0].days == AllowanceUsageDaily.objects.values("day").distinct().count() == 10
    assert allowance_counters_pending() == []
    assert _used(workspace) == 82


def test_a_rebuild_overtaken_by_another_switch_stops_and_leaves_it_pending(workspace, history):
    # given
    feature_update(feature=history, metered=True, reset_period="month")

    def switch_off_midway(done: int, total: int) -> None:
        if done == 1:
            feature_update(feature=history, metered=False)

    # when
    rebuilt = allowance_counters_rebuild(feature_id=history.pk, progress=switch_off_midway)
    # then
    assert (rebuilt.superseded, rebuilt.days) == (True, 1)
    assert allowance_counters_pending() == [history.pk]
    allowance_counters_sync()
    assert AllowanceUsageDaily.objects.count() == AllowanceUsageEntry.objects.count() == 0


@time_machine.travel(FROZEN_NOW, tick=False)
def test_record_enforces_the_limit_exactly_while_the_rebuild_is_pending(workspace, history, api):
    # given: metering on, its rebuild not run yet (the counters hold nothing)
    feature_update(feature=history, metered=True, reset_period="month")
    assert AllowanceUsageDaily.objects.count() == 0
    record = {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 1}
    # when
    refused = api.post("/api/v1/usage/record", record, format="json").json()
    refund = api.post("/api/v1/usage/record", {**record, "quantity": -2}, format="json").json()
    # then: used is summed from the raw events meanwhile
    assert (refused["recorded"], refused["reason"], refused["entitlement"]["used"]) == (False, "limit_exceeded", 82)
    assert (refund["recorded"], refund["entitlement"]["used"], refund["entitlement"]["remaining"]) == (True, 80, 0)
    assert UsageEvent.objects.count() == 17
    # and once rebuilt, the counters say the same
    allowance_counters_sync()
    assert _used(workspace) == 80


@time_machine.travel(FROZEN_NOW, tick=False)
def test_unlimited_metered_answers_say_when_the_period_resets(workspace, history, api):
    # given
    _meter(history, metered=True, reset_period="month")
    item_entitlement_set(item=history.item_entitlements.get().item, feature=history, value="unlimited")
    # when
    response = api.get("/api/v1/entitlements/check", {"account_id": "acct-1", "feature_id": "api-calls"})
    # then
    assert response.status_code == 200
    assert response.json() == {
        "feature_id": "api-calls",
        "entitled": True,
        "type": "quantity",
        "value": "unlimited",
        "unlimited": True,
        "limit": None,
        "used": None,
        "remaining": None,
        "resets_at": "2026-12-01T00:00:00Z",
        "reason": None,
    }


# ---------------------------------------------------------------------------
# The scenario over HTTP
# ---------------------------------------------------------------------------


@time_machine.travel(FROZEN_NOW, tick=False)
def test_events_sent_before_the_feature_is_metered_count_over_http(
    workspace, api, eager, django_capture_on_commit_callbacks
):
    # given: a team sends events first (the feature registers itself as a draft)
    events = [
        {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 30, "timestamp": "2026-11-02T10:00:00Z"},
        {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 9, "timestamp": "2026-11-18T08:00:00Z"},
        {"account_id": "acct-1", "feature_id": "api-calls", "quantity": -4, "timestamp": "2026-11-18T09:00:00Z"},
        {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 50, "timestamp": "2026-10-31T23:59:59Z"},
    ]
    assert api.post("/api/v1/events", events, format="json").json()["accepted"] == 4
    # when: an admin makes it a metered quantity feature, activates it and grants 20 a month
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(
            "/api/v1/features/api-calls",
            {"type": "quantity", "levels": LEVELS, "metered": True, "reset_period": "month"},
            format="json",
        )
    assert response.status_code == 200
    assert api.post("/api/v1/features/api-calls/activate").status_code == 200
    assert api.post("/api/v1/items", {"id": "team", "name": "Team"}, format="json").status_code == 201
    assert api.post("/api/v1/items/team/activate").status_code == 200
    assert api.put("/api/v1/items/team/entitlements/api-calls", {"value": "20"}, format="json").status_code == 200
    body = {"id": "sub-1", "account_id": "acct-1", "items": ["team"]}
    assert api.post("/api/v1/subscriptions", body, format="json").status_code == 201
    # then: 35 of 20 used this month
    check = api.get("/api/v1/entitlements/check", {"account_id": "acct-1", "feature_id": "api-calls"}).json()
    assert (check["entitled"], check["limit"], check["used"], check["remaining"], check["reason"]) == (
        False,
        20,
        35,
        0,
        "limit_exceeded",
    )
    record = {"account_id": "acct-1", "feature_id": "api-calls", "quantity": 1}
    refused = api.post("/api/v1/usage/record", record, format="json").json()
    assert (refused["recorded"], refused["reason"], refused["entitlement"]["used"]) == (False, "limit_exceeded", 35)
    assert UsageEvent.objects.count() == 4
    # and a refund brings the account back under its limit
    refund = api.post("/api/v1/usage/record", {**record, "quantity": -20}, format="json").json()
    assert (refund["recorded"], refund["entitlement"]["used"], refund["entitlement"]["remaining"]) == (True, 15, 5)
    recorded = api.post("/api/v1/usage/record", {**record, "quantity": 5}, format="json").json()
    assert (recorded["recorded"], recorded["entitlement"]["used"]) == (True, 20)


# ---------------------------------------------------------------------------
# The switch under concurrent ingestion
# ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_switch_is_exact_while_several_threads_ingest(workspace, product, settings):
    # given: a feature with 30 days of history, not metered; every request its own transaction
    settings.UPTAKE_INGEST_COALESCE = False
    workspace.late_event_window_days = 60
    workspace.save(update_fields=["late_event_window_days"])
    calls = feature(workspace, product, "api-calls", type="quantity", levels=LEVELS)
    team = plan(workspace, "team", {calls: "20"})
    for key in ("acct-1", "acct-2"):
        subscribe(workspace, account(workspace, key), f"sub-{key}", [team])
    now = datetime.now(UTC)
    days = [now - timedelta(days=d, hours=1) for d in range(30)]
    _ingest(workspace, [("acct-1", t, 2) for t in days] + [("acct-2", t, -1) for t in days[::3]], now=now)
    batches = {"total": 0}
    progress = threading.Condition()
    stop = threading.Event()
    errors: list[BaseException] = []

    def ingest(thread: int) -> None:
        try:
            n = 0
            while not stop.is_set():
                n += 1
                batch = [
                    ("acct-1" if k % 2 else "acct-2", days[(thread * 7 + n + k) % 30], (-1) ** k * (k + 1))
                    for k in range(4)
                ]
                _ingest(workspace, batch, now=now)
                with progress:
                    batches["total"] += 1
                    progress.notify_all()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            with progress:
                progress.notify_all()
        finally:
            connection.close()

    def wait_for_batches(more: int) -> None:
        with progress:
            target = batches["total"] + more
            assert progress.wait_for(lambda: batches["total"] >= target or errors, timeout=60)

    threads = [threading.Thread(target=ingest, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    wait_for_batches(8)
    # when: metering goes on while they ingest; each day's rebuild waits until more batches were stored
    feature_update(feature=calls, metered=True, reset_period="none")
    rebuilt = allowance_counters_rebuild(feature_id=calls.pk, progress=lambda done, total: wait_for_batches(2))
    wait_for_batches(8)
    stop.set()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert rebuilt.days == 30
    out = io.StringIO()
    call_command("verify_allowances", stdout=out)
    assert "acme: 1 metered feature(s) match raw events" in out.getvalue()
    for key in ("acct-1", "acct-2"):
        total = sum(UsageEvent.objects.filter(account__external_id=key).values_list("quantity", flat=True))
        assert _used(workspace, key, now) == total
    assert AllowanceUsageEntry.objects.count() == UsageEvent.objects.count()


# ---------------------------------------------------------------------------
# verify_allowances and its periodic task
# ---------------------------------------------------------------------------


def test_verify_allowances_finds_and_repairs_a_counter_altered_by_hand(workspace, history, caplog):
    # given
    _meter(history, metered=True, reset_period="month")
    daily = AllowanceUsageDaily.objects.get(account__external_id="acct-1", day="2026-11-18")
    AllowanceUsageDaily.objects.filter(pk=daily.pk).update(quantity=daily.quantity + 5)
    AllowanceUsageEntry.objects.filter(occurred_at=datetime(2026, 11, 1, tzinfo=UTC)).delete()
    used_before = _used(workspace)
    # when
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_code:
        call_command("verify_allowances", "--workspace", "acme", stdout=out, stderr=io.StringIO())
    # then
    assert exit_code.value.code == 1
    assert out.getvalue().splitlines() == [
        "acme: checking metered features",
        "  [1/1] api-calls: 2 difference(s)",
        "acme: 2 difference(s)",
        "  api-calls / acct-1 / 2026-11-01: ledger counter 0, events 9",
        f"  api-calls / acct-1 / 2026-11-18: daily counter {daily.quantity + 5}, events {daily.quantity}",
    ]
    assert _used(workspace) == used_before  # nothing repaired without --repair
    # and the periodic task logs the same differences
    with caplog.at_level(logging.ERROR, logger="usage.allowances"):
        assert allowance_counters_verify_task.apply().get() == 2
    assert [r.getMessage() for r in caplog.records if r.name == "usage.allowances"] == [
        "Allowance counter differs from its events in acme: api-calls / acct-1 / 2026-11-01: ledger counter 0, "
        "events 9",
        f"Allowance counter differs from its events in acme: api-calls / acct-1 / 2026-11-18: daily counter "
        f"{daily.quantity + 5}, events {daily.quantity}",
    ]
    # when
    out = io.StringIO()
    call_command("verify_allowances", "--repair", stdout=out)
    # then
    assert "acme: 1 metered feature(s) match raw events; repaired 2 day(s)" in out.getvalue()
    assert AllowanceUsageDaily.objects.get(account__external_id="acct-1", day="2026-11-18").quantity == 40
    assert _used(workspace) == 82
    out = io.StringIO()
    call_command("verify_allowances", stdout=out)
    assert out.getvalue().splitlines()[-1] == "acme: 1 metered feature(s) match raw events"


def test_verify_allowances_names_an_unknown_workspace(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No workspace 'nope'."):
        call_command("verify_allowances", "--workspace", "nope")


# ---------------------------------------------------------------------------
# The counting lock's footprint on ingestion
# ---------------------------------------------------------------------------


def _counting_locks_held() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' "
            "AND pid = pg_backend_pid() AND granted"
        )
        return cursor.fetchone()[0]


def test_a_batch_of_many_features_holds_at_most_one_lock_per_slot(workspace):
    # given: 100 draft features, registered by a first batch (new features take no lock)
    payload = [{"account_id": "acct-1", "feature_id": f"f-{n:03}"} for n in range(100)]
    assert events_ingest(workspace=workspace, payload=payload, now=FROZEN_NOW).accepted == 100
    assert _counting_locks_held() == 0
    # when: a batch names them all (drafts can become metered)
    assert events_ingest(workspace=workspace, payload=payload, now=FROZEN_NOW).accepted == 100
    # then: the test's transaction holds one shared lock per slot
    assert _counting_locks_held() == ALLOWANCE_COUNTING_LOCK_SLOTS == 64


def test_features_that_can_never_be_metered_take_no_counting_lock(workspace, product):
    # given: an active switch feature (its type is fixed, and a switch is never metered)
    feature(workspace, product, "sso")
    # when
    assert (
        events_ingest(workspace=workspace, payload=[{"account_id": "a", "feature_id": "sso"}], now=FROZEN_NOW).accepted
        == 1
    )
    # then
    assert _counting_locks_held() == 0
