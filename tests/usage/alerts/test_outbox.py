"""The alert outbox: events stored by ingestion are evaluated for alerts even when the evaluation task is lost
(the broker down at COMMIT), exactly once, and a workspace without event-driven pipelines writes no outbox."""

from datetime import timedelta

import pytest
from django.utils import timezone

from usage.alerts import tasks
from usage.alerts.services import pipeline_create
from usage.alerts.triggers import alert_events_evaluate, alerts_pending_sweep
from usage.models import AlertDelivery, AlertEventsPending, UsageEvent

SECRET = "whsec-outbox-0123456789"
GRACE = timedelta(seconds=60)


@pytest.fixture
def pipeline(workspace, receiver):
    return pipeline_create(
        workspace=workspace,
        name="Exports",
        trigger={"type": "event", "features": ["export"]},
        destinations=[{"type": "webhook", "url": receiver.url(), "secret": SECRET}],
    )


def test_evaluation_deletes_the_outbox_row_and_alerts(ingest, customer, pipeline, receiver, eager):
    # when
    ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 3, "event_id": "e1"})
    # then
    assert AlertEventsPending.objects.count() == 0
    assert [r.json["details"]["event_id"] for r in receiver.requests] == ["e1"]
    assert list(AlertDelivery.objects.values_list("status", flat=True)) == ["sent"]


def test_a_lost_evaluation_task_is_evaluated_by_the_sweep_after_the_grace(
    ingest, customer, pipeline, receiver, eager, monkeypatch, django_capture_on_commit_callbacks
):
    # given the broker refusing the evaluation message at COMMIT
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.alert_pending_evaluate_task, "apply_async", broker_down)
    # when events are ingested
    result = ingest(
        {"account_id": "acc-1", "feature_id": "export", "quantity": 3, "event_id": "e1"},
        {"account_id": "acc-1", "feature_id": "export", "quantity": 4, "event_id": "e2"},
    )
    # then they are stored and wait in the outbox, with nothing sent yet
    assert result["accepted"] == 2
    [pending] = AlertEventsPending.objects.all()
    assert sorted(pending.event_ids) == sorted(UsageEvent.objects.values_list("pk", flat=True))
    assert receiver.requests == []
    # and a sweep within the grace leaves the row to its task
    assert alerts_pending_sweep(now=pending.created_at + GRACE - timedelta(seconds=1), grace=GRACE) == 0
    assert AlertEventsPending.objects.count() == 1
    # when the sweep runs after the grace (its deliveries are sent after its commit)
    with django_capture_on_commit_callbacks(execute=True):
        evaluated = alerts_pending_sweep(now=pending.created_at + GRACE + timedelta(seconds=1), grace=GRACE)
    # then the alerts go out once and the row is gone
    assert evaluated == 1
    assert sorted(r.json["details"]["event_id"] for r in receiver.requests) == ["e1", "e2"]
    assert AlertEventsPending.objects.count() == 0
    assert alerts_pending_sweep(now=timezone.now() + timedelta(hours=1), grace=GRACE) == 0
    assert len(receiver.requests) == 2


def test_a_row_evaluated_but_not_deleted_alerts_once_when_swept(
    ingest, customer, pipeline, receiver, eager, monkeypatch, django_capture_on_commit_callbacks
):
    # given a task that evaluated the events and died before deleting its row (simulated: no task at all, then
    # the evaluation run by hand)
    monkeypatch.setattr(tasks.alert_pending_evaluate_task, "apply_async", lambda *a, **k: None)
    ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 3, "event_id": "e1"})
    [pending] = AlertEventsPending.objects.all()
    with django_capture_on_commit_callbacks(execute=True):
        alert_events_evaluate(workspace_id=pending.workspace_id, event_ids=pending.event_ids, now=timezone.now())
    # when the sweep evaluates the row again
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_pending_sweep(now=pending.created_at + 2 * GRACE, grace=GRACE) == 1
    # then one alert was sent, and the row is gone
    assert [r.json["details"]["event_id"] for r in receiver.requests] == ["e1"]
    assert AlertDelivery.objects.count() == 1
    assert AlertEventsPending.objects.count() == 0


def test_a_workspace_without_event_pipelines_writes_no_outbox(ingest, customer, workspace, receiver):
    # given only a disabled pipeline
    pipeline_create(
        workspace=workspace,
        name="Off",
        enabled=False,
        trigger={"type": "event"},
        destinations=[{"type": "webhook", "url": receiver.url(), "secret": SECRET}],
    )
    # when
    ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 3})
    # then
    assert (UsageEvent.objects.count(), AlertEventsPending.objects.count()) == (1, 0)
