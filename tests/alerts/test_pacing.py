"""Telegram's limits kept by pacing (alerts/pacing.py): about one message a second in a chat and 20 a minute in a
group, each send waiting for its slot in the broker (here: eager mode), nothing lost, nothing sent twice; the
channel's budget cannot promise a chat more than Telegram accepts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum

from alerts.delivery import alert_delivery_attempt
from alerts.models import AlertChannel, AlertDelivery, AlertRateWindow
from alerts.services import pipeline_create
from alerts.tasks import alert_delivery_send_task
from alerts.telegram import TELEGRAM_CHAT_GAP
from tests.conftest import FROZEN_NOW

TOKEN = "123456789:AAHfakeTokenForTests_0123456789abcd"
GROUP = "-1001234567890"
PRIVATE = "424242"


def _channel(workspace, chat_id: str, **extra) -> AlertChannel:
    return AlertChannel.objects.create(
        workspace=workspace, name=f"Chat {chat_id}", type="telegram", token=TOKEN, chat_id=chat_id,
        target_key=f"tg-{chat_id}", **extra,
    )  # fmt: skip


def _deliveries(workspace, channel: AlertChannel, count: int) -> list[AlertDelivery]:
    return [
        AlertDelivery.objects.create(
            workspace=workspace, channel=channel, kind="test", payload={"title": f"m{n}"}, created_at=FROZEN_NOW
        )
        for n in range(count)
    ]


def test_quick_events_to_one_chat_arrive_a_second_apart_none_lost_none_doubled(
    ingest, workspace, customer, bot_api, eager
):
    # given a pipeline posting every event to one private chat
    pipeline_create(
        workspace=workspace,
        name="Every event",
        trigger={"type": "event"},
        destinations=[{"type": "telegram", "token": TOKEN, "chat_id": PRIVATE}],
    )
    # when three events arrive in one request
    ingest(*({"account_id": "acc-1", "feature_id": "export", "event_id": f"e{n}"} for n in range(3)))
    # then the fake Bot API got three messages, one for each event, at least a second apart
    assert len(bot_api.requests) == 3
    gaps = [later.at - earlier.at for earlier, later in zip(bot_api.requests, bot_api.requests[1:], strict=False)]
    assert min(gaps) >= 0.95, gaps
    deliveries = list(AlertDelivery.objects.order_by("id"))
    assert [(d.status, d.attempts) for d in deliveries] == [("sent", 1)] * 3
    slots = [d.send_after for d in deliveries]
    assert [(b - a).total_seconds() >= 1 for a, b in zip(slots, slots[1:], strict=False)] == [True, True]
    # and one budget slot each, never taken again by the paced attempts
    assert AlertRateWindow.objects.aggregate(sent=Sum("sent"), held=Sum("held")) == {"sent": 3, "held": 0}
    # when a send task message is delivered twice, then nothing is sent again
    assert [alert_delivery_send_task.apply(args=[d.pk]).get() for d in deliveries] == ["skipped"] * 3
    assert len(bot_api.requests) == 3


GAP = TELEGRAM_CHAT_GAP.total_seconds()  # a second, and a tenth in hand


@pytest.mark.parametrize(("chat_id", "wait"), [(GROUP, 50.0), (PRIVATE, 20 * GAP - 10)])
def test_a_group_gets_at_most_20_messages_in_any_minute_a_private_chat_one_a_second(
    workspace, bot_api, alert_settings, chat_id, wait
):
    # given 20 messages to the chat at 12:00:50, the last 10 seconds of a budget window
    channel = _channel(workspace, chat_id, rate_limit_per_minute=20)
    at = FROZEN_NOW + timedelta(seconds=50)
    burst = [alert_delivery_attempt(delivery_id=d.pk, now=at) for d in _deliveries(workspace, channel, 20)]
    # then the first goes at once and the others wait for their turn, a second (and a tenth) apart
    assert [o.status for o in burst] == ["sent"] + ["paced"] * 19
    assert [o.retry_in for o in burst[1:]] == pytest.approx([n * GAP for n in range(1, 20)])
    # when one more comes at 12:01:00, in the next budget window
    [late] = _deliveries(workspace, channel, 1)
    outcome = alert_delivery_attempt(delivery_id=late.pk, now=FROZEN_NOW + timedelta(seconds=60))
    # then a group makes it wait until a minute after the first of the 20 (12:01:50); a private chat a
    # second after the last (12:01:12)
    assert (outcome.status, outcome.retry_in) == ("paced", pytest.approx(wait))
    late.refresh_from_db()
    assert (late.status, late.attempts) == ("pending", 0)
    assert (late.send_after - at).total_seconds() == pytest.approx(wait + 10)
    # when its slot comes, then it is sent, and counted once in the budget
    assert alert_delivery_attempt(delivery_id=late.pk, now=late.send_after).status == "sent"
    assert list(AlertRateWindow.objects.order_by("window_start").values_list("sent", "held")) == [(20, 0), (1, 0)]
    assert len(bot_api.requests) == 2


def test_a_retry_after_a_429_waits_what_telegram_asked_then_takes_a_free_slot(workspace, bot_api, alert_settings):
    # given the Bot API answers 429 (retry after 3 s) once
    bot_api.respond((429, {}, '{"ok":false,"error_code":429,"parameters":{"retry_after":3}}'))
    channel = _channel(workspace, PRIVATE)
    first, second = _deliveries(workspace, channel, 2)
    # when the first is refused, a second message goes out 2.5 s later, and the first is tried again at 3 s
    outcomes = [
        alert_delivery_attempt(delivery_id=first.pk, now=FROZEN_NOW),
        alert_delivery_attempt(delivery_id=second.pk, now=FROZEN_NOW + timedelta(seconds=2.5)),
        alert_delivery_attempt(delivery_id=first.pk, now=FROZEN_NOW + timedelta(seconds=3)),
        alert_delivery_attempt(delivery_id=first.pk, now=FROZEN_NOW + timedelta(seconds=2.5) + TELEGRAM_CHAT_GAP),
    ]
    # then the retry waits what Telegram asked, and then a second (and a tenth) after the message sent meanwhile
    assert [(o.status, o.retry_in) for o in outcomes] == [
        ("retry", 3.0),
        ("sent", None),
        ("paced", pytest.approx(2.5 + GAP - 3)),
        ("sent", None),
    ]
    first.refresh_from_db()
    assert (first.status, first.attempts, first.send_after) == (
        "sent",
        2,
        FROZEN_NOW + timedelta(seconds=2.5) + TELEGRAM_CHAT_GAP,
    )
    assert len(bot_api.requests) == 3


@pytest.mark.parametrize(
    ("chat_id", "limit", "status", "shown"),
    [
        (GROUP, None, 201, 20),
        (GROUP, 20, 201, 20),
        (GROUP, 21, 400, "Telegram accepts at most 20 messages a minute in a group or channel; got 21."),
        ("@uptake_news", 30, 400, "Telegram accepts at most 20 messages a minute in a group or channel; got 30."),
        (PRIVATE, 60, 201, 60),
        (PRIVATE, 61, 400, "Telegram accepts at most 60 messages a minute in a private chat; got 61."),
    ],
)
def test_a_telegram_budget_cannot_exceed_what_the_chat_accepts(api, refused, chat_id, limit, status, shown):
    # when
    body = {"name": "Chat", "type": "telegram", "token": TOKEN, "chat_id": chat_id}
    body |= {} if limit is None else {"rate_limit_per_minute": limit}
    # then
    if status == 400:
        refused("/api/v1/channels", body, "channel.rate_limit_per_minute", f"channel.rate_limit_per_minute: {shown}")
    else:
        assert api.post("/api/v1/channels", body, format="json").json()["rate_limit_per_minute"] == shown
