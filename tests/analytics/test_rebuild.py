"""Full rebuilds through staging tables built by several connections and swapped in (analytics.services.rebuild):
same rows and schema as before, readers see the old rollups until the swap, a crash leaves them."""

import threading
import time
from datetime import UTC, date, datetime

import pytest
from django.db import connection, connections
from django.db.models import Max

from accounts.models import Account
from analytics.models import FeatureAccountDay, RollupWatermark
from analytics.selectors import rollup_differences
from analytics.services import rollup_pending, rollups_rebuild
from analytics.services.rebuild import TABLES
from catalog.services import feature_create, product_create
from usage.models import UsageDayDirty, UsageEvent

from .conftest import ACCOUNTS, FEATURES, random_events
from .helpers import Ev, oracle, store_events
from .test_rollups import _snapshot

URL = "/api/v1/products/default/analytics/feature-usage"


def _schema() -> list[tuple]:
    """Every index and constraint definition and the storage parameters of the rollup tables, by name."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%(t)s)
            UNION ALL
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid::regclass::text = ANY(%(t)s)
            UNION ALL
            SELECT relname, 'storage', array_to_string(reloptions, ',') FROM pg_class WHERE relname = ANY(%(t)s)
            ORDER BY 1, 2, 3
            """,
            {"t": TABLES},
        )
        return cursor.fetchall()


def _leftovers() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'analytics%%rebuild' ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


def _uses_of(day: date) -> int:
    """Net uses of a day, read on a fresh connection of its own (as a dashboard request would)."""
    result = []

    def read() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT sum(uses) FROM analytics_featureaccountday WHERE day = %s", [day])
                result.append(cursor.fetchone()[0])
        finally:
            connection.close()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    return result[0]


@pytest.mark.django_db(transaction=True)
def test_parallel_rebuild_equals_the_incremental_rollups_and_keeps_the_schema(api, workspace, catalog):
    # given rolled-up events (late and negative ones included), then a tampered rollup row
    events = random_events(11, 400, datetime(2026, 10, 20, tzinfo=UTC), 30)
    store_events(workspace, events)
    rollup_pending(now=datetime.now(UTC))
    good, schema = _snapshot(), _schema()
    FeatureAccountDay.objects.filter(day=date(2026, 11, 3)).update(uses=999)
    # when two connections rebuild everything
    rollups_rebuild(workspace_id=workspace.pk, connections=2)
    # then the rows are the incremental rollups' and the API answers as the oracle, with the same indexes and
    # constraints under the same names, and no staging table left
    assert _snapshot() == good
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)
    assert _schema() == schema
    assert ("analytics_accountfeaturelastseen", "storage", "fillfactor=70") in schema
    last = UsageEvent.objects.aggregate(last=Max("id"))["last"]
    days = {e.at.astimezone(UTC).date() for e in events}
    assert dict(RollupWatermark.objects.values_list("day", "event_id")) == dict.fromkeys(days, last)
    assert _leftovers() == []
    body = api.get(URL, {"from": "2026-11-04", "to": "2026-11-13"}).json()
    assert body == oracle(
        events,
        features=FEATURES,
        accounts=ACCOUNTS,
        start=date(2026, 11, 4),
        end=date(2026, 11, 13),
        active_accounts=5,
    )


@pytest.mark.django_db(transaction=True)
def test_readers_see_the_old_rollups_until_the_swap_which_waits_for_them(workspace, catalog):
    # given a rolled-up day whose rollup row was tampered with (the rebuild will repair it)
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 5)])
    rollup_pending(now=datetime.now(UTC))
    FeatureAccountDay.objects.update(uses=999)
    # and a reader inside a transaction that has read the rollups (it holds its lock until it ends)
    read, release = threading.Event(), threading.Event()
    seen = []

    def reader() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT sum(uses) FROM analytics_featureaccountday")
                seen.append(cursor.fetchone()[0])
                read.set()
                release.wait(20)
                cursor.execute("SELECT sum(uses) FROM analytics_featureaccountday")
                seen.append(cursor.fetchone()[0])
                cursor.execute("COMMIT")
        finally:
            connection.close()

    def rebuild() -> None:
        try:
            rollups_rebuild(workspace_id=workspace.pk, connections=2)
        finally:
            connection.close()

    reading = threading.Thread(target=reader)
    reading.start()
    assert read.wait(10)
    # when a rebuild runs: its staging tables get built, then its swap waits for the reader
    rebuilding = threading.Thread(target=rebuild)
    rebuilding.start()
    _wait_for_the_swap()
    # then meanwhile other readers still get the old rollups
    assert _uses_of(date(2026, 11, 2)) == 999
    # and the swap gives up its lock attempt (500 ms each) and tries again, still waiting
    _wait_for_a_new_swap_attempt()
    assert rebuilding.is_alive()
    assert _uses_of(date(2026, 11, 2)) == 999
    # when the reader ends, then the swap goes through and every reader gets the rebuilt rollups
    release.set()
    reading.join()
    rebuilding.join(20)
    assert not rebuilding.is_alive()
    assert seen == [999, 999]
    assert _uses_of(date(2026, 11, 2)) == 5
    assert _leftovers() == []


def _swap_waiting() -> int:
    """Backends waiting for an ACCESS EXCLUSIVE lock on a rollup table (the rebuild's swap)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock' "
            "AND relation::regclass::text = ANY(%s)",
            [TABLES],
        )
        return cursor.fetchone()[0]


def _swap_wait_started():
    """When the rebuild's current lock attempt for the swap began (pg_locks.waitstart), or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(waitstart) FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock' "
            "AND relation::regclass::text = ANY(%s)",
            [TABLES],
        )
        return cursor.fetchone()[0]


def _wait_for_a_new_swap_attempt() -> None:
    """Until the swap waits in a lock attempt that began after the one seen first (it gave that one up)."""
    deadline = time.monotonic() + 20
    first = None
    while (started := _swap_wait_started()) is None or first is None or started <= first:
        first = first or started
        assert time.monotonic() < deadline, "the swap never tried again"
        time.sleep(0.05)


def _wait_for_the_swap() -> None:
    """Until every staging table is built and the rebuild's swap waits for its locks."""
    deadline = time.monotonic() + 20
    while len(_leftovers()) < len(TABLES) or _swap_waiting() == 0:
        assert time.monotonic() < deadline, "the rebuild never reached its swap"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_killed_before_its_swap_leaves_the_old_rollups_and_the_marks(workspace, catalog):
    # given a rolled-up day, a tampered rollup row, a day still dirty, and a reader that holds the swap back
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 5)])
    rollup_pending(now=datetime.now(UTC))
    FeatureAccountDay.objects.update(uses=999)
    store_events(workspace, [Ev("export.pdf", "a2", datetime(2026, 11, 3, 9, tzinfo=UTC), 2)])
    hold = connections.create_connection("default")
    with hold.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT count(*) FROM analytics_featureuserday")
    pids, errors = [], []

    def rebuild() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids.append(cursor.fetchone()[0])
            rollups_rebuild(workspace_id=workspace.pk, connections=2)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    rebuilding = threading.Thread(target=rebuild)
    rebuilding.start()
    _wait_for_the_swap()
    # when the rebuild's backend dies before the swap commits
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
    rebuilding.join(20)
    hold.close()
    # then the old rollups and the dirty mark are all there (staging tables left behind)
    assert errors and not rebuilding.is_alive()
    assert list(FeatureAccountDay.objects.values_list("day", "uses")) == [(date(2026, 11, 2), 999)]
    assert list(UsageDayDirty.objects.values_list("day", flat=True)) == [date(2026, 11, 3)]
    assert len(_leftovers()) == len(TABLES)
    # when the next rebuild runs, then it drops the leftovers and brings everything back
    rollups_rebuild(workspace_id=workspace.pk, connections=2)
    assert sorted(FeatureAccountDay.objects.values_list("day", "uses")) == [
        (date(2026, 11, 2), 5),
        (date(2026, 11, 3), 2),
    ]
    assert not UsageDayDirty.objects.exists()
    assert _leftovers() == []
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)


@pytest.mark.django_db(transaction=True)
def test_rollup_tables_shared_by_two_workspaces_are_rebuilt_in_place(workspace, other_workspace, catalog):
    # given rolled-up rows of two workspaces, both tampered with
    product = product_create(workspace=other_workspace, key="default", name="Default")
    feature_create(workspace=other_workspace, key="export.pdf", name="PDF export", product=product)
    Account.objects.create(workspace=other_workspace, external_id="a1", name="Other", first_seen_at=datetime.now(UTC))
    store_events(workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 5)])
    store_events(other_workspace, [Ev("export.pdf", "a1", datetime(2026, 11, 2, 9, tzinfo=UTC), 7)])
    rollup_pending(now=datetime.now(UTC))
    FeatureAccountDay.objects.filter(workspace=workspace).update(uses=999)
    FeatureAccountDay.objects.filter(workspace=other_workspace).update(uses=888)
    # when one workspace is rebuilt
    rollups_rebuild(workspace_id=workspace.pk, connections=2)
    # then its rows are repaired, the other workspace's rows are untouched, and no staging table was made
    assert sorted(FeatureAccountDay.objects.values_list("workspace__slug", "uses")) == [("acme", 5), ("globex", 888)]
    assert _leftovers() == []
