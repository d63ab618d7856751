"""The events outbox: how stored events reach their subscribers (today: alert pipelines) after COMMIT.

Ingestion writes an `EventOutbox` row in the events' transaction when the workspace has an `EventSubscription`,
then publishes the row's id after COMMIT as a Celery message by task name (`EVENTS_COMMITTED_TASK`), so usage
imports no subscriber. Publishing never raises into ingestion: a lost message leaves the row, which the
subscriber's sweep processes after a grace period. Subscribers keep `EventSubscription` up to date.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import current_app

from core.redis_breaker import task_publish

from .models import EventOutbox, EventSubscription

logger = logging.getLogger(__name__)

# The task a subscriber registers under this name receives the id of one outbox row.
EVENTS_COMMITTED_TASK = "usage.events_committed"


def events_outbox_add(*, workspace_id: int, event_ids: list[int], now: datetime) -> int:
    """Write the outbox row for stored events, in the caller's (the events') transaction; returns its id."""
    return EventOutbox.objects.create(workspace_id=workspace_id, event_ids=event_ids, created_at=now).pk


def events_outbox_publish(*, outbox_id: int) -> None:
    """Publish an outbox row to its subscriber (call inside `transaction.on_commit`). Never raises: a broker
    error is logged and the row waits for the subscriber's sweep."""
    app = current_app
    if not app.conf.task_always_eager:
        # Skipped at once while Redis is known to be down (core/redis_breaker.py): ingestion never waits on it.
        if not task_publish(EVENTS_COMMITTED_TASK, args=[outbox_id]):
            logger.info("events outbox row %s not published; the subscriber's sweep will process it", outbox_id)
        return
    try:
        # send_task ignores eager mode (debugging, tests): run the task registered under the name in-process.
        if EVENTS_COMMITTED_TASK not in app.tasks:
            app.loader.import_default_modules()
        app.tasks[EVENTS_COMMITTED_TASK].apply_async(args=[outbox_id])
    except Exception:  # noqa: BLE001 - subscribers must never fail or slow ingestion
        logger.exception("could not publish events outbox row %s; the subscriber's sweep will process it", outbox_id)


def event_subscription_set(*, workspace_id: int, subscribed: bool, now: datetime) -> None:
    """Say whether the workspace's stored events must go through the outbox (called by subscribers' services)."""
    if subscribed:
        EventSubscription.objects.update_or_create(workspace_id=workspace_id, defaults={"updated_at": now})
    else:
        EventSubscription.objects.filter(workspace_id=workspace_id).delete()
