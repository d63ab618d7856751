"""Pacing: the sends to a channel whose service limits their pace (Telegram: about one a second in a chat, 20 a
minute in a group) are spread out instead of being refused there. Each attempt reserves the next free send
slot of its target and the send task waits for that slot in the broker (a Celery countdown), never in a web
request; nothing is dropped and nothing is sent twice.

State lives in PostgreSQL: a reservation is the delivery's own `send_after`, so a target's recent sends are its
deliveries' slots (index `alerts_alertdelivery_slot_idx`), and reservations of one target are serialised by a
transaction-level advisory lock. Channels of one bot token and chat in several workspaces share the pace (their
`target_key` is the same). The rate budget of the channel (alerts.delivery) still decides what is sent at all;
pacing only decides when.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from .models import AlertChannel, AlertDelivery
from .telegram import Pace, telegram_pace

# pg_advisory_xact_lock(class, key): one lock per target while a slot is reserved.
_PACE_LOCK_CLASS = 0x70616365  # "pace"


def channel_pace(channel: AlertChannel) -> Pace | None:
    """The pace the channel's service allows, or None when only the rate budget applies."""
    if channel.type == AlertChannel.Type.TELEGRAM:
        return telegram_pace(channel.chat_id)
    return None


def send_slot_reserve(*, channel: AlertChannel, pace: Pace, now: datetime) -> datetime:
    """The earliest send slot of the channel's target at or after `now` that keeps to `pace`: `gap` after the
    latest slot, and at most `per_window` slots in any `window`. Call inside the transaction that stores the slot
    (the lock is held until it commits)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_PACE_LOCK_CLASS, channel.target_key])
    recent = list(
        AlertDelivery.objects.filter(
            channel__type=channel.type,
            channel__target_key=channel.target_key,
            send_after__isnull=False,
            send_after__gt=now - pace.window,
        )
        .order_by("-send_after")
        .values_list("send_after", flat=True)[: pace.per_window or 1]
    )
    slot = now
    if recent:
        slot = max(slot, recent[0] + pace.gap)
    if pace.per_window is not None and len(recent) >= pace.per_window:
        slot = max(slot, recent[pace.per_window - 1] + pace.window)
    return slot
