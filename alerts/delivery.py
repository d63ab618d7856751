"""Delivery: create delivery rows, attempt one send (rate limit, pacing, retries with backoff, 429 Retry-After),
and coalesce what a channel's rate limit holds back into one summary message per window. The budget is the
channel's, whatever the number of pipelines posting to it."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction

from core.redis_breaker import task_publish

from .destinations import destination_send
from .models import AlertChannel, AlertDelivery, AlertPipeline, AlertPipelineChannel, AlertRateWindow
from .pacing import channel_pace, send_slot_reserve

logger = logging.getLogger(__name__)

Status = AlertDelivery.Status
Kind = AlertDelivery.Kind
# A pending delivery whose attempt was due this long ago lost its task (broker down, worker killed):
# re-enqueue.
STALE_AFTER = timedelta(minutes=5)
SUMMARY_LIST_MAX = 20
# A paced send whose slot is this close is sent now (a countdown may fire a few milliseconds early).
PACE_TOLERANCE_SECONDS = 0.05


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt did, and what the task adapter must schedule next."""

    status: str  # sent | failed | retry | paced | coalesced | skipped
    retry_in: float | None = None
    summary_in: float | None = None
    channel_id: int | None = None


def backoff_seconds(*, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff after the `attempt`-th failure, plus up to 25 % jitter, never above the maximum."""
    base = settings.UPTAKE_ALERT_BACKOFF_BASE_SECONDS * (2 ** max(0, attempt - 1))
    ceiling = settings.UPTAKE_ALERT_BACKOFF_MAX_SECONDS
    return min(ceiling, min(base, ceiling) * (1 + 0.25 * rng()))


def window_start_of(now: datetime) -> datetime:
    """Start of the fixed rate-limit window that contains `now` (UTC, aligned on the epoch)."""
    seconds = settings.UPTAKE_ALERT_RATE_WINDOW_SECONDS
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def deliveries_enqueue(delivery_ids: Iterable[int]) -> None:
    """Queue the send task of each delivery. Never raises: a delivery the broker did not take stays pending
    and the periodic sweep (`alert_deliveries_due`) queues it again."""
    from .tasks import alert_delivery_send_task

    for delivery_id in delivery_ids:
        if not task_publish(alert_delivery_send_task, args=[delivery_id]):
            logger.info("alert delivery %s not queued; the sweep will queue it again", delivery_id)


def deliveries_create(
    *, pipeline: AlertPipeline, payload: dict, dedupe_key: str, now: datetime, kind: str = Kind.ALERT
) -> list[AlertDelivery]:
    """One pending delivery per channel of the pipeline, sent after commit. With a `dedupe_key`, a channel
    that already has that key from this pipeline gets nothing new (evaluation is safe to retry)."""
    created: list[AlertDelivery] = []
    with transaction.atomic():
        for channel_id in pipeline_channel_ids(pipeline):
            values = {
                "workspace_id": pipeline.workspace_id,
                "pipeline": pipeline,
                "kind": kind,
                "payload": payload,
                "created_at": now,
                "next_attempt_at": now,
            }
            if dedupe_key:
                delivery, new = AlertDelivery.objects.get_or_create(
                    pipeline=pipeline, channel_id=channel_id, dedupe_key=dedupe_key, defaults=values
                )
                if not new:
                    continue
            else:
                delivery = AlertDelivery.objects.create(channel_id=channel_id, **values)
            created.append(delivery)
        ids = [d.pk for d in created]
        if ids:
            transaction.on_commit(lambda: deliveries_enqueue(ids))
    return created


def pipeline_channel_ids(pipeline: AlertPipeline) -> list[int]:
    """The ids of the pipeline's channels, in its order (prefetched `channel_links` are used when present)."""
    cache = getattr(pipeline, "_prefetched_objects_cache", {})
    if "channel_links" in cache:
        return [link.channel_id for link in cache["channel_links"]]
    return list(
        AlertPipelineChannel.objects.filter(pipeline=pipeline)
        .order_by("position", "id")
        .values_list("channel_id", flat=True)
    )


def _take_rate_slot(*, delivery: AlertDelivery, channel: AlertChannel, now: datetime) -> AttemptOutcome | None:
    """Count this message in the channel's current window; over the limit, hold it for the summary."""
    start = window_start_of(now)
    AlertRateWindow.objects.get_or_create(channel=channel, window_start=start)
    window = AlertRateWindow.objects.select_for_update().get(channel=channel, window_start=start)
    if delivery.kind != Kind.SUMMARY and window.sent >= channel.rate_limit_per_minute:
        window.held += 1
        window.save(update_fields=["held"])
        opens_at = start + timedelta(seconds=settings.UPTAKE_ALERT_RATE_WINDOW_SECONDS)
        delivery.status = Status.COALESCED
        delivery.next_attempt_at = opens_at
        delivery.last_error = f"rate limit of {channel.rate_limit_per_minute}/window reached; held for the summary"
        delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
        # The first message held in a window schedules the summary for when the next window opens.
        summary_in = (opens_at - now).total_seconds() if window.held == 1 else None
        return AttemptOutcome("coalesced", summary_in=summary_in, channel_id=channel.pk)
    # A summary always goes out (at most one per window) but still counts against the window.
    window.sent += 1
    window.save(update_fields=["sent"])
    return None


def _wait_for_slot(*, delivery: AlertDelivery, channel: AlertChannel, now: datetime) -> AttemptOutcome | None:
    """On a paced channel, reserve the delivery's send slot (once per attempt); a slot still ahead puts the
    attempt off until then without counting it."""
    pace = channel_pace(channel)
    if pace is None:
        return None
    if delivery.send_after is None:
        delivery.send_after = send_slot_reserve(channel=channel, pace=pace, now=now)
    wait = (delivery.send_after - now).total_seconds()
    if wait <= PACE_TOLERANCE_SECONDS:
        return None
    delivery.next_attempt_at = delivery.send_after
    delivery.save(update_fields=["send_after", "next_attempt_at"])
    return AttemptOutcome("paced", retry_in=wait)


def alert_delivery_attempt(*, delivery_id: int, now: datetime) -> AttemptOutcome:
    """Make one attempt at a pending delivery and record the outcome in the delivery log."""
    with transaction.atomic():
        delivery = (
            AlertDelivery.objects.select_for_update(of=("self",))
            .select_related("channel")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != Status.PENDING:
            return AttemptOutcome("skipped")
        channel = delivery.channel
        # The first attempt counts in the channel's budget (once: a paced delivery already holds a slot).
        if delivery.attempts == 0 and delivery.send_after is None:
            held = _take_rate_slot(delivery=delivery, channel=channel, now=now)
            if held is not None:
                return held
        paced = _wait_for_slot(delivery=delivery, channel=channel, now=now)
        if paced is not None:
            return paced
        delivery.attempts += 1
        # Left as "due now" while in flight: if the worker dies mid-send, the sweep finds it after
        # STALE_AFTER.
        delivery.next_attempt_at = now
        delivery.save(update_fields=["attempts", "next_attempt_at", "send_after"])
    # The HTTP call runs outside any transaction: no lock is held while a slow destination answers.
    result = destination_send(channel=channel, payload=delivery.payload, now=now, delivery_id=delivery.pk)
    max_attempts = settings.UPTAKE_ALERT_MAX_ATTEMPTS
    if result.ok:
        AlertDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING).update(
            status=Status.SENT,
            sent_at=now,
            response_code=result.response_code,
            last_error="",
            next_attempt_at=None,
        )
        return AttemptOutcome("sent")
    if result.retryable and delivery.attempts < max_attempts:
        delay = result.retry_after if result.retry_after is not None else backoff_seconds(attempt=delivery.attempts)
        delay = min(delay, settings.UPTAKE_ALERT_BACKOFF_MAX_SECONDS)
        AlertDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING).update(
            next_attempt_at=now + timedelta(seconds=delay),
            send_after=None,  # the next attempt reserves a slot of its own
            response_code=result.response_code,
            last_error=f"attempt {delivery.attempts}: {result.error}"[:2000],
        )
        return AttemptOutcome("retry", retry_in=delay)
    reason = "gave up" if result.retryable else "not retried"
    AlertDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING).update(
        status=Status.FAILED,
        response_code=result.response_code,
        next_attempt_at=None,
        last_error=f"attempt {delivery.attempts} ({reason}): {result.error}"[:2000],
    )
    return AttemptOutcome("failed")


def _summary_payload(*, channel: AlertChannel, held: list[AlertDelivery], now: datetime) -> dict:
    events = Counter(d.payload.get("event", "alert") for d in held)
    pipelines = sorted({(d.payload.get("pipeline") or {}).get("name") or "test" for d in held})
    lines = []
    for d in held[:SUMMARY_LIST_MAX]:
        account = (d.payload.get("account") or {}).get("name") or (d.payload.get("account") or {}).get("id")
        lines.append(f"• {d.payload.get('title', 'alert')}" + (f" — {account}" if account else ""))
    if len(held) > SUMMARY_LIST_MAX:
        lines.append(f"… and {len(held) - SUMMARY_LIST_MAX} more (see the delivery log)")
    return {
        "event": "alerts.summary",
        "title": f"{len(held)} alert{'s' if len(held) != 1 else ''} held back by the rate limit",
        "text": (
            f"This channel takes {channel.rate_limit_per_minute} messages per "
            f"{settings.UPTAKE_ALERT_RATE_WINDOW_SECONDS} s; these arrived over the limit:\n" + "\n".join(lines)
        ),
        "pipeline": None,
        "account": None,
        "feature": None,
        "details": {
            "alerts": len(held),
            "events": dict(sorted(events.items())),
            "pipelines": pipelines,
            "first_alert_at": held[0].created_at.isoformat(),
            "last_alert_at": held[-1].created_at.isoformat(),
            "delivery_ids": [d.pk for d in held],
        },
        "occurred_at": now.isoformat(),
    }


def alert_summary_create(*, channel_id: int, now: datetime) -> AlertDelivery | None:
    """Coalesce the channel's held alerts (of every pipeline) whose window has passed into one summary delivery
    (sent after commit). Idempotent: held alerts already in a summary are not taken again."""
    with transaction.atomic():
        channel = AlertChannel.objects.select_for_update().filter(pk=channel_id).first()
        if channel is None:
            return None
        held = list(
            AlertDelivery.objects.filter(
                channel=channel,
                status=Status.COALESCED,
                summary__isnull=True,
                next_attempt_at__lte=now,
            ).order_by("id")
        )
        if not held:
            return None
        summary = AlertDelivery.objects.create(
            workspace_id=channel.workspace_id,
            pipeline=None,
            channel=channel,
            kind=Kind.SUMMARY,
            payload=_summary_payload(channel=channel, held=held, now=now),
            created_at=now,
            next_attempt_at=now,
        )
        AlertDelivery.objects.filter(pk__in=[d.pk for d in held]).update(summary=summary)
        transaction.on_commit(lambda: deliveries_enqueue([summary.pk]))
    return summary


def alert_summaries_due(*, now: datetime) -> list[AlertDelivery]:
    """Send a summary for every channel with held alerts whose window has passed (the beat sweep)."""
    channel_ids = (
        AlertDelivery.objects.filter(status=Status.COALESCED, summary__isnull=True, next_attempt_at__lte=now)
        .values_list("channel_id", flat=True)
        .distinct()
    )
    summaries = [alert_summary_create(channel_id=c, now=now) for c in list(channel_ids)]
    return [s for s in summaries if s is not None]


def alert_deliveries_due(*, now: datetime) -> list[int]:
    """Queue again the pending deliveries whose task was lost (due more than STALE_AFTER ago)."""
    with transaction.atomic():
        ids = list(
            AlertDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lt=now - STALE_AFTER)
            .values_list("pk", flat=True)[:500]
        )
        AlertDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
        if ids:
            transaction.on_commit(lambda: deliveries_enqueue(ids))
    return ids
