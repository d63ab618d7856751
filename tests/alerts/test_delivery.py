from datetime import timedelta

import pytest
from django.core import mail

from alerts.delivery import (
    alert_delivery_attempt,
    alert_summary_create,
    backoff_seconds,
    deliveries_create,
)
from alerts.destinations import webhook_verify
from alerts.models import AlertDelivery, AlertRateWindow
from alerts.services import pipeline_create
from alerts.tasks import alert_delivery_send_task
from tests.conftest import FROZEN_NOW

SECRET = "whsec-test-0123456789"


def _alert(n: int = 1) -> dict:
    return {
        "event": "export",
        "title": f"Alert {n}",
        "text": f"alert number {n}",
        "pipeline": {"id": 1, "name": "p"},
        "account": {"id": "acc-1", "name": "Initech", "plan": "free", "owner": None, "domain": "initech.com"},
        "feature": {"id": "export", "name": "Export"},
        "details": {"n": n},
        "occurred_at": FROZEN_NOW.isoformat(),
    }


def _pipeline(workspace, destination: dict, name: str = "Exports"):
    return pipeline_create(workspace=workspace, name=name, trigger={"type": "event"}, destinations=[destination])


@pytest.mark.django_db(transaction=True)
def test_webhook_delivery_is_signed_and_logged_as_sent(workspace, eager, receiver, alert_settings):
    # given
    pipeline = _pipeline(workspace, {"type": "webhook", "url": receiver.url(), "secret": SECRET})
    # when: created in a transaction; the send task runs after commit
    [delivery] = deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="k1", now=FROZEN_NOW)
    # then
    [request] = receiver.requests
    assert request.json == _alert()
    assert webhook_verify(
        secret=SECRET,
        timestamp=request.headers["X-Uptake-Timestamp"],
        body=request.body,
        signature=request.headers["X-Uptake-Signature"],
        now=int(request.headers["X-Uptake-Timestamp"]),
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.last_error) == (
        "sent",
        1,
        200,
        "",
    )
    assert delivery.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_same_dedupe_key_creates_nothing_new(workspace, eager, receiver, alert_settings):
    # given
    pipeline = _pipeline(workspace, {"type": "slack", "url": receiver.url()})
    deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="event:1", now=FROZEN_NOW)
    # when
    again = deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="event:1", now=FROZEN_NOW)
    # then
    assert again == []
    assert AlertDelivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_retries_after_500_then_succeeds(workspace, eager, receiver, alert_settings):
    # given: the receiver fails twice
    receiver.respond((500, {}, "boom"), (503, {}, "down"))
    pipeline = _pipeline(workspace, {"type": "discord", "url": receiver.url()})
    # when
    [delivery] = deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="", now=FROZEN_NOW)
    # then
    assert len(receiver.requests) == 3
    assert receiver.requests[0].body == receiver.requests[2].body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 3, 200)
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # exponential: 50 ms, then 100 ms (plus jitter)


@pytest.mark.django_db(transaction=True)
def test_429_retry_after_is_honoured(workspace, eager, receiver, alert_settings):
    # given
    receiver.respond((429, {"Retry-After": "1"}, '{"retry_after": 1}'))
    pipeline = _pipeline(workspace, {"type": "discord", "url": receiver.url()})
    # when
    [delivery] = deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="", now=FROZEN_NOW)
    # then
    first, second = receiver.requests
    assert second.at - first.at >= 1.0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 2, 200)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("responses", "attempts", "code", "error"),
    [
        ([(404, {}, "Unknown Webhook")], 1, 404, "attempt 1 (not retried): HTTP 404: Unknown Webhook"),
        ([(500, {}, "boom")] * 10, 4, 500, "attempt 4 (gave up): HTTP 500: boom"),
    ],
)
def test_a_4xx_fails_at_once_and_5xx_after_the_last_attempt(
    workspace, eager, receiver, alert_settings, responses, attempts, code, error
):
    # given
    receiver.respond(*responses)
    pipeline = _pipeline(workspace, {"type": "webhook", "url": receiver.url(), "secret": SECRET})
    # when
    [delivery] = deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="", now=FROZEN_NOW)
    # then
    assert len(receiver.requests) == attempts
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.last_error) == (
        "failed",
        attempts,
        code,
        error,
    )


@pytest.mark.django_db(transaction=True)
def test_unreachable_destination_is_retried_then_failed(workspace, eager, alert_settings):
    # given: nothing listens on port 9 of 127.0.0.1
    alert_settings.UPTAKE_ALERT_MAX_ATTEMPTS = 2
    pipeline = _pipeline(workspace, {"type": "slack", "url": "http://127.0.0.1:9/hook"})
    # when
    [delivery] = deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="", now=FROZEN_NOW)
    # then
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 2, None)
    assert delivery.last_error.startswith("attempt 2 (gave up): connection failed: NewConnectionError")


def test_backoff_doubles_with_bounded_jitter(alert_settings):
    assert [backoff_seconds(attempt=a, rng=lambda: 0.0) for a in (1, 2, 3)] == [0.05, 0.1, 0.2]
    assert backoff_seconds(attempt=1, rng=lambda: 1.0) == 0.0625
    assert backoff_seconds(attempt=30, rng=lambda: 1.0) == 5.0


def test_rate_limit_coalesces_the_excess_into_one_summary(workspace, receiver, alert_settings):
    # given: a Discord destination that takes 3 messages a window
    pipeline = _pipeline(workspace, {"type": "discord", "url": receiver.url(), "rate_limit_per_minute": 3})
    deliveries = [
        deliveries_create(pipeline=pipeline, payload=_alert(n), dedupe_key=f"e{n}", now=FROZEN_NOW)[0]
        for n in range(1, 8)
    ]
    # when: all 7 are attempted within one window
    outcomes = [
        alert_delivery_attempt(delivery_id=d.pk, now=FROZEN_NOW + timedelta(seconds=0.1 * i))
        for i, d in enumerate(deliveries)
    ]
    # then: 3 sent, 4 held; only the first held one schedules the summary, for when the window opens
    assert [o.status for o in outcomes] == ["sent"] * 3 + ["coalesced"] * 4
    assert [o.summary_in for o in outcomes[3:]] == [pytest.approx(60 - 0.3), None, None, None]
    assert len(receiver.requests) == 3
    window = AlertRateWindow.objects.get()
    assert (window.sent, window.held) == (3, 4)
    # when: the summary runs before the window opens, nothing is due yet
    assert alert_summary_create(channel_id=deliveries[0].channel_id, now=FROZEN_NOW + timedelta(seconds=30)) is None
    # when: the window opens
    summary = alert_summary_create(channel_id=deliveries[0].channel_id, now=FROZEN_NOW + timedelta(seconds=60))
    assert alert_delivery_attempt(delivery_id=summary.pk, now=FROZEN_NOW + timedelta(seconds=60)).status == "sent"
    # then: one message lists the 4 held alerts, and each held delivery points at it
    assert len(receiver.requests) == 4
    embed = receiver.requests[-1].json["embeds"][0]
    assert embed["title"] == "4 alerts held back by the rate limit"
    assert embed["description"].splitlines()[1:] == [f"• Alert {n} — Initech" for n in (4, 5, 6, 7)]
    assert sorted(AlertDelivery.objects.filter(summary=summary).values_list("pk", flat=True)) == [
        d.pk for d in deliveries[3:]
    ]
    assert set(AlertDelivery.objects.filter(summary=summary).values_list("status", flat=True)) == {"coalesced"}
    # and a second run finds nothing more to summarise
    assert alert_summary_create(channel_id=deliveries[0].channel_id, now=FROZEN_NOW + timedelta(seconds=61)) is None


def test_email_destination_sends_through_django_mail(workspace, alert_settings):
    # given
    pipeline = _pipeline(workspace, {"type": "email", "to": "cs@example.com, lead@example.com"})
    [delivery] = deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="", now=FROZEN_NOW)
    # when
    outcome = alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    # then
    assert outcome.status == "sent"
    [message] = mail.outbox
    assert message.subject == "Alert 1"
    assert message.to == ["cs@example.com", "lead@example.com"]
    assert "Account: Initech (acc-1)\nPlan: free\nOwner: —\nDomain: initech.com" in message.body


def test_send_task_skips_a_delivery_already_sent(workspace, receiver, alert_settings):
    # given
    pipeline = _pipeline(workspace, {"type": "slack", "url": receiver.url()})
    [delivery] = deliveries_create(pipeline=pipeline, payload=_alert(), dedupe_key="", now=FROZEN_NOW)
    alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    # when: a duplicate task message arrives
    status = alert_delivery_send_task.apply(args=[delivery.pk]).get()
    # then
    assert status == "skipped"
    assert len(receiver.requests) == 1
