"""Celery adapters for alerts: read the clock, call the service, schedule what it asks for. No ORM logic
here."""

from __future__ import annotations

import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from core.redis_breaker import task_publish
from usage.outbox import EVENTS_COMMITTED_TASK

from .delivery import alert_deliveries_due, alert_delivery_attempt, alert_summaries_due, alert_summary_create
from .rollup_triggers import alerts_evaluate_rollup_triggers
from .triggers import alert_events_evaluate, alert_pending_evaluate, alerts_pending_sweep

# Eager mode (debugging, tests) has no broker to hold a countdown: wait in-process, at most this long.
EAGER_MAX_WAIT_SECONDS = 120.0


def _later(task, *, args: list, countdown: float) -> None:
    if task.app.conf.task_always_eager:
        time.sleep(min(max(countdown, 0.0), EAGER_MAX_WAIT_SECONDS))
        task.apply(args=args)
        return
    # Not queued (broker down): the delivery stays pending and the alerts sweep queues it again.
    task_publish(task, args=args, countdown=countdown)


@shared_task(name=EVENTS_COMMITTED_TASK, acks_late=True)
def alert_pending_evaluate_task(pending_id: int) -> int:
    """Evaluate event-driven pipelines for the events of one outbox row written by ingestion (usage/outbox.py
    publishes it by this name)."""
    return len(alert_pending_evaluate(pending_id=pending_id, now=timezone.now()))


# Kept under its old name for messages queued before the outbox existed.
@shared_task(name="usage.alerts.evaluate_events", acks_late=True)
def alert_events_evaluate_task(workspace_id: int, event_ids: list[int]) -> int:
    """Evaluate event-driven pipelines for these events (messages queued before the outbox existed)."""
    return len(alert_events_evaluate(workspace_id=workspace_id, event_ids=event_ids, now=timezone.now()))


@shared_task(name="alerts.send_delivery", acks_late=True)
def alert_delivery_send_task(delivery_id: int) -> str:
    """One attempt at a delivery; schedules the retry (backoff or Retry-After), the paced send (Telegram) or the
    rate-limit summary."""
    outcome = alert_delivery_attempt(delivery_id=delivery_id, now=timezone.now())
    if outcome.retry_in is not None:
        _later(alert_delivery_send_task, args=[delivery_id], countdown=outcome.retry_in)
    if outcome.summary_in is not None:
        _later(alert_summary_send_task, args=[outcome.channel_id], countdown=outcome.summary_in)
    return outcome.status


@shared_task(name="alerts.send_summary", acks_late=True)
def alert_summary_send_task(channel_id: int) -> int | None:
    """Coalesce a channel's rate-limited alerts into one summary message."""
    summary = alert_summary_create(channel_id=channel_id, now=timezone.now())
    return summary.pk if summary else None


@shared_task(name="alerts.sweep", acks_late=True)
def alert_sweep_task() -> dict:
    """Beat, every minute: summaries whose window opened, deliveries whose task was lost, and ingested events
    whose evaluation task was lost (the outbox)."""
    now = timezone.now()
    return {
        "summaries": len(alert_summaries_due(now=now)),
        "requeued": len(alert_deliveries_due(now=now)),
        "evaluated": alerts_pending_sweep(
            now=now, grace=timedelta(seconds=settings.UPTAKE_ALERT_PENDING_GRACE_SECONDS)
        ),
    }


@shared_task(name="alerts.evaluate_rollup_triggers", acks_late=True)
def alerts_evaluate_rollup_triggers_task() -> dict:
    """Beat: dormant and usage-drop alert pipelines from the rollups; idempotent (one alert per window)."""
    report = alerts_evaluate_rollup_triggers(now=timezone.now())
    return {
        "workspaces": report.workspaces,
        "dormant": report.dormant_deliveries,
        "usage_drop": report.usage_drop_deliveries,
    }
