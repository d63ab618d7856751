"""The ingestion hot path: allowances count only metered features in a mixed batch (known, unmetered and newly
registered), large batches leave the caller's foreign-key deferral as it was, and outside a caller's
transaction events, dirty mark and counters are committed together by the single COMMIT."""

from datetime import date

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from catalog.services import feature_create
from entitlements.models import AllowanceUsageDaily
from tests.conftest import FROZEN_NOW
from usage.models import UsageDayDirty, UsageEvent
from usage.services import events_ingest


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(FROZEN_NOW, tick=False):
        yield


def _metered(workspace, product, key: str):
    return feature_create(
        workspace=workspace,
        key=key,
        name=key,
        product=product,
        type="quantity",
        levels=[{"value": "1000", "name": "1000"}],
        metered=True,
        reset_period="month",
    )


def test_a_mixed_batch_counts_only_its_metered_feature(api, workspace, product):
    # given a metered feature and an unmetered one
    metered = _metered(workspace, product, "api.calls")
    feature_create(workspace=workspace, key="plain", name="Plain", product=product)
    events = [
        {"account_id": "a1", "feature_id": "api.calls", "quantity": 4},
        {"account_id": "a1", "feature_id": "plain", "quantity": 9},
        {"account_id": "a1", "feature_id": "brand.new", "quantity": 5},
    ] * 20  # 60 events: the COPY path
    # when
    response = api.post("/api/v1/events", {"events": events}, format="json")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 60
    assert list(AllowanceUsageDaily.objects.values_list("feature_id", "day", "quantity")) == [
        (metered.pk, date(2026, 11, 18), 80)
    ]
    assert list(UsageDayDirty.objects.values_list("day", "version")) == [(date(2026, 11, 18), 1)]


def test_a_large_batch_inside_a_callers_transaction_leaves_foreign_keys_deferred(workspace):
    # given a caller's transaction (the test's) around a 40-event batch
    payload = [{"account_id": f"a{i}", "feature_id": "f.one"} for i in range(40)]
    events_ingest(workspace=workspace, payload=payload, now=timezone.now())
    # when the caller goes on: a deferred FK to a row that does not exist yet is fine until commit
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT probe")
        cursor.execute(
            "INSERT INTO usage_usagedaydirty (workspace_id, day, version, marked_at) VALUES (%s, %s, 1, now())",
            [workspace.pk + 10_000, date(2026, 1, 1)],
        )
        # then: no error at statement time (IMMEDIATE would raise here); undo the probe
        cursor.execute("ROLLBACK TO SAVEPOINT probe")
    assert UsageEvent.objects.count() == 40


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_events_mark_and_counters_commit_together(workspace, product):
    # given
    _metered(workspace, product, "api.calls")
    assert not connection.in_atomic_block
    # when: the service owns its transaction and commits with the dirty mark
    result = events_ingest(
        workspace=workspace,
        payload=[{"account_id": "a1", "feature_id": "api.calls", "quantity": 3, "event_id": "e1"}] * 2,
        now=timezone.now(),
    )
    # then: committed (visible outside any transaction), and Django's connection is back in autocommit
    assert (result.accepted, result.duplicates) == (1, 1)
    assert connection.get_autocommit() and not connection.in_atomic_block
    with transaction.atomic():
        assert UsageEvent.objects.count() == 1
        assert list(UsageDayDirty.objects.values_list("day", "version")) == [(date(2026, 11, 18), 1)]
        assert list(AllowanceUsageDaily.objects.values_list("quantity", flat=True)) == [3]


@pytest.mark.parametrize("shards", [1, 16, 7])
def test_the_dirty_mark_is_this_connections_shard_and_repeats_bump_it(workspace, settings, shards):
    # given
    settings.UPTAKE_DIRTY_SHARDS = shards
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    # when two small batches and one large (COPY path) batch of the same day come over this connection
    for size in (1, 2, 40):
        events_ingest(
            workspace=workspace, payload=[{"account_id": "a1", "feature_id": "f.one"}] * size, now=timezone.now()
        )
    # then one mark row: this connection's shard, bumped by each batch
    assert list(UsageDayDirty.objects.values_list("day", "shard", "version")) == [(date(2026, 11, 18), pid % shards, 3)]
