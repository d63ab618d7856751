"""The events outbox as alerts use it: events stored by ingestion are evaluated for alerts even when the
evaluation message is lost (the broker down at COMMIT), exactly once, and a workspace without event-driven
pipelines (no EventSubscription) writes no outbox row."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import tasks
from alerts.models import AlertDelivery
from alerts.services import pipeline_create, pipeline_delete, pipeline_update
from alerts.triggers import alert_events_evaluate, alerts_pending_sweep
from config.celery import app as celery_app
from usage.models import EventOutbox, EventSubscription, UsageEvent

SECRET = "whsec-outbox-0123456789"
GRACE = timedelta(seconds=60)


@pytest.fixture
def pipeline(workspace, receiver):
    return pipeline_create(
        workspace=workspace,
        name="Exports",
        trigger={"type": "event", "features": ["export"], "expected_later": True},
        destinations=[{"type": "webhook", "url": receiver.url(), "secret": SECRET}],
    )


def test_evaluation_deletes_the_outbox_row_and_alerts(ingest, customer, pipeline, receiver, eager):
    # when
    ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 3, "event_id": "e1"})
    # then
    assert EventOutbox.objects.count() == 0
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
    [pending] = EventOutbox.objects.all()
    assert sorted(pending.event_ids) == sorted(UsageEvent.objects.values_list("pk", flat=True))
    assert receiver.requests == []
    # and a sweep within the grace leaves the row to its task
    assert alerts_pending_sweep(now=pending.created_at + GRACE - timedelta(seconds=1), grace=GRACE) == 0
    assert EventOutbox.objects.count() == 1
    # when the sweep runs after the grace (its deliveries are sent after its commit)
    with django_capture_on_commit_callbacks(execute=True):
        evaluated = alerts_pending_sweep(now=pending.created_at + GRACE + timedelta(seconds=1), grace=GRACE)
    # then the alerts go out once and the row is gone
    assert evaluated == 1
    assert sorted(r.json["details"]["event_id"] for r in receiver.requests) == ["e1", "e2"]
    assert EventOutbox.objects.count() == 0
    assert alerts_pending_sweep(now=timezone.now() + timedelta(hours=1), grace=GRACE) == 0
    assert len(receiver.requests) == 2


def test_a_row_evaluated_but_not_deleted_alerts_once_when_swept(
    ingest, customer, pipeline, receiver, eager, monkeypatch, django_capture_on_commit_callbacks
):
    # given a task that evaluated the events and died before deleting its row (simulated: no task at all, then
    # the evaluation run by hand)
    monkeypatch.setattr(tasks.alert_pending_evaluate_task, "apply_async", lambda *a, **k: None)
    ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 3, "event_id": "e1"})
    [pending] = EventOutbox.objects.all()
    with django_capture_on_commit_callbacks(execute=True):
        alert_events_evaluate(workspace_id=pending.workspace_id, event_ids=pending.event_ids, now=timezone.now())
    # when the sweep evaluates the row again
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_pending_sweep(now=pending.created_at + 2 * GRACE, grace=GRACE) == 1
    # then one alert was sent, and the row is gone
    assert [r.json["details"]["event_id"] for r in receiver.requests] == ["e1"]
    assert AlertDelivery.objects.count() == 1
    assert EventOutbox.objects.count() == 0


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
    assert (UsageEvent.objects.count(), EventOutbox.objects.count()) == (1, 0)


def test_without_eager_mode_the_evaluation_is_published_by_task_name_and_a_broker_error_never_fails_ingestion(
    ingest, customer, pipeline, receiver, monkeypatch
):
    # given a broker that refuses every message, and Celery not in eager mode
    published = []

    def broker_down(name, *args, **kwargs):
        published.append((name, kwargs.get("args")))
        raise ConnectionError("broker unreachable")

    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(celery_app, "send_task", broker_down)
    # when
    result = ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 3, "event_id": "e1"})
    # then the events are stored, the outbox row waits for the sweep, and the message named the task
    [outbox] = EventOutbox.objects.all()
    assert result["accepted"] == 1
    assert published == [("usage.events_committed", [outbox.pk])]
    assert outbox.event_ids == list(UsageEvent.objects.values_list("pk", flat=True))
    assert receiver.requests == []


def test_the_subscription_follows_the_enabled_event_driven_pipelines(workspace, receiver):
    # given
    destinations = [{"type": "webhook", "url": receiver.url(), "secret": SECRET}]
    dormant = pipeline_create(
        workspace=workspace, name="Dormant", trigger={"type": "dormant"}, destinations=destinations
    )
    subscribed_for_dormant = EventSubscription.objects.filter(workspace=workspace).exists()
    events = pipeline_create(workspace=workspace, name="Events", trigger={"type": "event"}, destinations=destinations)
    subscribed_for_events = EventSubscription.objects.filter(workspace=workspace).exists()
    # when the event-driven pipeline is disabled, enabled again, then deleted
    pipeline_update(pipeline=events, enabled=False)
    after_disable = EventSubscription.objects.filter(workspace=workspace).exists()
    pipeline_update(pipeline=events, enabled=True)
    after_enable = EventSubscription.objects.filter(workspace=workspace).exists()
    pipeline_delete(pipeline=events)
    # then
    assert (subscribed_for_dormant, subscribed_for_events) == (False, True)
    assert (after_disable, after_enable) == (False, True)
    assert EventSubscription.objects.filter(workspace=workspace).exists() is False
    assert list(workspace.alert_pipelines.values_list("pk", flat=True)) == [dormant.pk]
