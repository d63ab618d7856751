"""Incremental rollups: reruns, concurrent runs, crashes, rebuild and verify never double-count."""

import random
import threading
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.models import (
    AccountFeatureLastSeen,
    AccountProductDay,
    FeatureAccountDay,
    FeatureDay,
    FeatureQuarterHour,
    FeatureUserDay,
    ProductQuarterHour,
)
from analytics.selectors import rollup_differences
from analytics.services import rollup_day, rollup_pending
from usage.models import UsageDayDirty

from .conftest import ACCOUNTS, FEATURES, random_events
from .helpers import Ev, oracle, rollup_during_open_ingestion, store_events

URL = "/api/v1/products/default/analytics/feature-usage"


def _snapshot() -> dict:
    return {
        "fad": sorted(
            FeatureAccountDay.objects.values_list(
                "day", "feature_id", "account_id", "uses", "events", "users", "last_at"
            )
        ),
        "fqh": sorted(FeatureQuarterHour.objects.values_list("bucket", "feature_id", "uses", "events")),
        "fud": sorted(FeatureUserDay.objects.values_list("day", "feature_id", "end_user_id", "uses", "events")),
        "seen": sorted(AccountFeatureLastSeen.objects.values_list("account_id", "feature_id", "last_seen_at")),
    }


def test_rollup_clears_marks_and_rerun_changes_nothing(workspace, catalog):
    # given
    store_events(workspace, random_events(3, 200, datetime(2026, 11, 1, tzinfo=UTC), 10))
    assert UsageDayDirty.objects.count() == 10
    # when
    report = rollup_pending(now=timezone.now())
    first = _snapshot()
    for day in {d for d, *_ in first["fad"]}:  # a rerun of every day, as after a crash before the mark went
        UsageDayDirty.objects.create(workspace=workspace, day=day, marked_at=timezone.now())
    rollup_pending(now=timezone.now())
    rollup_pending(now=timezone.now())
    # then
    assert report.days_rolled_up == 10 and UsageDayDirty.objects.count() == 0
    assert _snapshot() == first
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)
    assert sum(u for *_, u, _e, _n, _l in first["fad"]) == sum(
        e.q for e in random_events(3, 200, datetime(2026, 11, 1, tzinfo=UTC), 10)
    )


def test_crash_mid_rollup_leaves_the_mark_and_old_rows(workspace, catalog):
    # given a rolled-up day, then a late event on it
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 5)])
    rollup_pending(now=timezone.now())
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 10, tzinfo=UTC), 3)])
    # when the rollup transaction dies after recomputing
    with pytest.raises(RuntimeError), transaction.atomic():
        rollup_day(workspace_id=workspace.pk, day=date(2026, 11, 2))
        raise RuntimeError("worker killed")
    # then nothing changed and the mark stays for the next run
    assert list(FeatureAccountDay.objects.values_list("uses", flat=True)) == [5]
    assert UsageDayDirty.objects.filter(day=date(2026, 11, 2)).count() == 1
    rollup_pending(now=timezone.now())
    assert list(FeatureAccountDay.objects.values_list("uses", "events")) == [(8, 2)]


@pytest.mark.django_db(transaction=True)
def test_events_committed_during_a_rollup_keep_the_day_dirty(workspace, catalog):
    # given a rolled-up day and an ingestion transaction that has stored a late event but not committed yet
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 5)])
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 10, tzinfo=UTC), 2)])
    # when a rollup reads version 2, recomputes without the uncommitted event, and the ingestion then commits
    results = rollup_during_open_ingestion(
        workspace=workspace,
        day=date(2026, 11, 2),
        ingest=lambda: store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 11, tzinfo=UTC), 1)]),
    )
    # then the mark (now version 3) survives, so the next run picks the event up
    assert results == [True]
    assert list(FeatureAccountDay.objects.values_list("uses", flat=True)) == [7]
    assert UsageDayDirty.objects.get().version == 3
    rollup_pending(now=timezone.now())
    assert list(FeatureAccountDay.objects.values_list("uses", "events")) == [(8, 3)]
    assert UsageDayDirty.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_rollups_never_double_count(workspace, catalog):
    # given many dirty days
    events = random_events(5, 600, datetime(2026, 10, 1, tzinfo=UTC), 30)
    store_events(workspace, events)
    barrier = threading.Barrier(2)
    reports = []

    def run():
        try:
            barrier.wait()
            reports.append(rollup_pending(now=timezone.now()))
        finally:
            connections.close_all()

    # when two runs go at once
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then every day was rolled up exactly once in all, and rollups equal raw events
    assert sum(r.days_rolled_up for r in reports) == 30
    assert UsageDayDirty.objects.count() == 0
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)
    total = sum(FeatureAccountDay.objects.values_list("uses", flat=True))
    assert total == sum(e.q for e in events)


def test_rebuild_recomputes_ranges_and_everything(workspace, catalog):
    # given rolled-up rows that were tampered with
    store_events(workspace, random_events(9, 300, datetime(2026, 11, 1, tzinfo=UTC), 10))
    rollup_pending(now=timezone.now())
    good = _snapshot()
    FeatureAccountDay.objects.filter(day=date(2026, 11, 3)).update(uses=999)
    FeatureQuarterHour.objects.filter(bucket__date=date(2026, 11, 8)).delete()
    AccountFeatureLastSeen.objects.all().delete()
    # when a range rebuild covers the 3rd only
    out = StringIO()
    call_command("rebuild_rollups", workspace="acme", since="2026-11-03", until="2026-11-03", stdout=out)
    # then only that day is repaired
    assert not FeatureAccountDay.objects.filter(uses=999).exists()
    assert _snapshot()["fqh"] != good["fqh"]
    # when a full rebuild runs
    call_command("rebuild_rollups", stdout=out)
    # then everything is back
    assert _snapshot() == good
    assert "acme: rebuilt in" in out.getvalue()


def test_verify_rollups_detects_tampering_with_nonzero_exit(workspace, catalog):
    # given matching rollups
    store_events(workspace, random_events(4, 100, datetime(2026, 11, 1, tzinfo=UTC), 5))
    rollup_pending(now=timezone.now())
    out = StringIO()
    call_command("verify_rollups", stdout=out)
    assert "acme: rollups match raw events" in out.getvalue()
    # when a rollup row is tampered with
    row = FeatureAccountDay.objects.order_by("day", "feature_id", "account_id").first()
    FeatureAccountDay.objects.filter(pk=row.pk).update(uses=row.uses + 1)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_rollups", stdout=out, stderr=StringIO())
    # then
    assert exit_info.value.code == 1
    assert "analytics_featureaccountday: missing or different" in out.getvalue()
    assert "analytics_featureaccountday: unexpected" in out.getvalue()
    assert f"{row.uses + 1}" in out.getvalue()


@pytest.mark.parametrize(
    ("model", "table"),
    [
        (FeatureDay, "analytics_featureday"),
        (AccountProductDay, "analytics_accountproductday"),
        (ProductQuarterHour, "analytics_productquarterhour"),
    ],
)
def test_verify_rollups_detects_a_tampered_coarse_row_and_a_rebuild_repairs_it(workspace, catalog, model, table):
    # given matching rollups
    store_events(workspace, random_events(4, 100, datetime(2026, 11, 1, tzinfo=UTC), 5))
    rollup_pending(now=timezone.now())
    good = sorted(model.objects.values_list("uses", "events"))
    assert good and sum(u for u, _ in good) == sum(FeatureAccountDay.objects.values_list("uses", flat=True))
    # when one coarse row is tampered with
    row = model.objects.order_by("pk").first()
    model.objects.filter(pk=row.pk).update(uses=row.uses + 1000)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_rollups", stdout=out, stderr=StringIO())
    # then verify names the table and the tampered value
    assert exit_info.value.code == 1
    assert f"{table}: missing or different" in out.getvalue()
    assert f"{table}: unexpected" in out.getvalue()
    assert f"{row.uses + 1000}" in out.getvalue()
    # when a full rebuild runs, then the table is back and verify passes
    call_command("rebuild_rollups", stdout=StringIO())
    assert sorted(model.objects.values_list("uses", "events")) == good
    out = StringIO()
    call_command("verify_rollups", stdout=out)
    assert "acme: rollups match raw events" in out.getvalue()


def test_verify_skips_days_still_pending(workspace, catalog):
    # given a day not rolled up yet
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 5)])
    # when
    out = StringIO()
    call_command("verify_rollups", stdout=out)
    # then
    assert "1 day(s) still pending rollup, skipped" in out.getvalue()


def test_rollup_command_reports_progress(workspace, catalog):
    store_events(workspace, random_events(2, 50, datetime(2026, 11, 1, tzinfo=UTC), 3))
    out = StringIO()
    call_command("rollup", stdout=out, stderr=StringIO())
    assert out.getvalue().strip() == "Rolled up 3 day(s); 0 skipped (held by another run); 0 still marked dirty."
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)


_event = st.tuples(
    st.sampled_from([*FEATURES]),
    st.sampled_from(["a1", "a2", "a3", "a4", "a5"]),
    st.integers(min_value=0, max_value=20 * 86400 - 1),
    st.sampled_from([1, 2, 3, 10, -1, -2, -10]),
    st.sampled_from([None, "u1", "u2"]),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.lists(_event, min_size=1, max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=4),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_property_random_streams_batched_and_rolled_up_in_any_order_equal_the_oracle(
    api, workspace, catalog, raw, cuts, seed
):
    # given a clean slate for this example
    from usage.models import UsageEvent

    UsageEvent.objects.all().delete()
    UsageDayDirty.objects.all().delete()
    for model in (
        FeatureAccountDay,
        FeatureQuarterHour,
        FeatureUserDay,
        AccountFeatureLastSeen,
        FeatureDay,
        AccountProductDay,
        ProductQuarterHour,
    ):
        model.objects.all().delete()
    base = datetime(2026, 10, 25, tzinfo=UTC)
    events = [Ev(f, a, base + timedelta(seconds=s), q, f"{a}-{u}" if u else None) for f, a, s, q, u in raw]
    # when the stream arrives in batches and each batch's days are rolled up in a random order
    rng = random.Random(seed)
    bounds = sorted({0, len(events), *[c for c in cuts if c < len(events)]})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        store_events(workspace, events[lo:hi])
        days = list(UsageDayDirty.objects.values_list("day", flat=True))
        rng.shuffle(days)
        for day in days[: rng.randint(0, len(days))]:
            rollup_day(workspace_id=workspace.pk, day=day)
    rollup_pending(now=timezone.now())
    # then
    body = api.get(URL, {"from": "2026-11-04", "to": "2026-11-13"}).json()
    assert body == oracle(
        events,
        features=FEATURES,
        accounts=ACCOUNTS,
        start=date(2026, 11, 4),
        end=date(2026, 11, 13),
        active_accounts=5,
    )
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)


def test_every_shard_row_of_a_day_is_consumed_by_one_recompute(workspace, catalog):
    # given one day marked by two ingestion connections (shards 0 and 5) and another day by one
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 5)])
    store_events(workspace, [Ev("export.pdf", "a2", datetime(2026, 11, 3, 9, tzinfo=UTC), 1)])
    UsageDayDirty.objects.create(
        workspace=workspace, day=date(2026, 11, 2), shard=5, version=4, marked_at=timezone.now()
    )
    assert sorted(UsageDayDirty.objects.values_list("day", "shard")) == [
        (date(2026, 11, 2), 0),
        (date(2026, 11, 2), 5),
        (date(2026, 11, 3), 0),
    ]
    # when
    report = rollup_pending(now=timezone.now())
    # then each day counts once, every shard row is gone and the rollups equal the raw events
    assert (report.days_rolled_up, report.days_skipped_locked, report.days_still_dirty) == (2, 0, 0)
    assert sorted(report.rolled_up) == [(workspace.pk, date(2026, 11, 2)), (workspace.pk, date(2026, 11, 3))]
    assert not UsageDayDirty.objects.exists()
    assert sorted(FeatureAccountDay.objects.values_list("day", "uses", "events")) == [
        (date(2026, 11, 2), 5, 1),
        (date(2026, 11, 3), 1, 1),
    ]
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)


@pytest.mark.django_db(transaction=True)
def test_a_shard_bumped_or_added_during_a_rollup_survives_it(workspace, catalog):
    # given a rolled-up day whose only mark is shard 3 (version 1), and an ingestion transaction that has
    # stored a late event, bumped shard 3 and added shard 0, but not committed yet
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 5)])
    UsageDayDirty.objects.update(shard=3)

    def ingest():
        store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 11, tzinfo=UTC), 2)])
        UsageDayDirty.objects.filter(shard=3).update(version=F("version") + 1)

    # when a rollup reads shard 3 at version 1, recomputes without the uncommitted event, then the ingestion
    # commits while the rollup waits to delete shard 3
    results = rollup_during_open_ingestion(workspace=workspace, day=date(2026, 11, 2), ingest=ingest)
    # then the rollup counted the committed event only, and both shard rows of the ingestion survive it
    assert results == [True]
    assert list(FeatureAccountDay.objects.values_list("uses", "events")) == [(5, 1)]
    assert sorted(UsageDayDirty.objects.values_list("shard", "version")) == [(0, 1), (3, 2)]
    # when the next run goes, then the late event is in and every shard row is consumed
    report = rollup_pending(now=timezone.now())
    assert (report.days_rolled_up, report.days_still_dirty) == (1, 0)
    assert list(FeatureAccountDay.objects.values_list("uses", "events")) == [(7, 2)]
    assert not UsageDayDirty.objects.exists()
