"""Telegram (a fake Bot API on 127.0.0.1) and PostgreSQL (the machine's server, in a database of its own)
destinations, end to end from an ingested event."""

from __future__ import annotations

import html
import socket

import psycopg

from alerts.delivery import alert_delivery_attempt
from alerts.models import AlertChannel, AlertDelivery
from alerts.services import pipeline_create
from alerts.telegram import CUT_MARKER, TELEGRAM_MAX_TEXT, telegram_body, telegram_length
from tests.alerts.conftest import sink_rows
from tests.conftest import FROZEN_NOW

TOKEN = "123456789:AAHfakeTokenForTests_0123456789abcd"
CHAT = "-1001234567890"


def _telegram_pipeline(workspace, *, mentions: bool = False, name: str = "Exports to Telegram"):
    return pipeline_create(
        workspace=workspace,
        name=name,
        trigger={"type": "event", "features": ["export"], "expected_later": True},
        destinations=[{"type": "telegram", "token": TOKEN, "chat_id": CHAT, "mentions": mentions}],
    )


def test_a_matching_event_reaches_telegram_once_escaped(ingest, workspace, customer, bot_api, eager):
    # given an account whose name is markup
    customer.name = "<b>Initech</b> & @everyone"
    customer.save()
    _telegram_pipeline(workspace)
    # when a matching and a non-matching event are ingested, and the outbox row is evaluated again
    ingest(
        {"account_id": "acc-1", "feature_id": "export", "quantity": 3, "event_id": "e1"},
        {"account_id": "acc-1", "feature_id": "import", "quantity": 3},
    )
    # then one sendMessage call, to the bot's path, with the text escaped for the HTML parse mode
    [request] = bot_api.requests
    assert request.path == f"/bot{TOKEN}/sendMessage"
    body = request.json
    assert (body["chat_id"], body["parse_mode"], body["link_preview_options"]) == (CHAT, "HTML", {"is_disabled": True})
    title, text = body["text"].splitlines()[:2]
    assert title == "<b>export</b>"  # no template: the bare event name
    assert text == "&lt;b&gt;Initech&lt;/b&gt; &amp; @\u2060everyone used export (3)."
    assert html.unescape(body["text"]).count("<b>Initech</b>") == 2  # text, Account field
    assert list(AlertDelivery.objects.values_list("status", "attempts")) == [("sent", 1)]


def test_a_429_is_retried_after_the_retry_after_telegram_gives(workspace, bot_api, alert_settings):
    # given the Bot API answers 429 once
    bot_api.respond(
        (
            429,
            {"Content-Type": "application/json"},
            '{"ok":false,"error_code":429,'
            '"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}',
        )
    )
    channel = AlertChannel.objects.create(
        workspace=workspace, name="TG", type="telegram", token=TOKEN, chat_id=CHAT, target_key="tg"
    )
    delivery = AlertDelivery.objects.create(
        workspace=workspace, channel=channel, kind="test", payload={"title": "Hello"}, created_at=FROZEN_NOW
    )
    # when
    first = alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    second = alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    # then the retry waits what Telegram asked, and the second attempt is sent
    assert (first.status, first.retry_in, second.status) == ("retry", 3.0, "sent")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 2, 200)
    assert len(bot_api.requests) == 2


def test_the_token_never_reaches_the_delivery_log(workspace, settings, alert_settings):
    # given a Bot API base where nothing listens
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.UPTAKE_TELEGRAM_API_BASE = f"http://127.0.0.1:{port}"
    channel = AlertChannel.objects.create(
        workspace=workspace, name="TG", type="telegram", token=TOKEN, chat_id=CHAT, target_key="tg"
    )
    delivery = AlertDelivery.objects.create(
        workspace=workspace, channel=channel, kind="test", payload={"title": "Hello"}, created_at=FROZEN_NOW
    )
    # when
    outcome = alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    # then
    delivery.refresh_from_db()
    assert outcome.status == "retry"
    # the request goes to the checked address: the error names host and port, never the path with the token
    assert delivery.last_error.startswith("attempt 1: connection failed: NewConnectionError: ")
    assert TOKEN not in delivery.last_error


def test_long_messages_are_cut_with_a_marker_and_mentions_stay_off_unless_opted_in():
    # given
    lines = ["x" * 100 + " <&> @here"] * 100
    # when
    off = telegram_body(chat_id=CHAT, title="T @all", lines=lines)
    on = telegram_body(chat_id=CHAT, title="T @all", lines=lines, mentions=True)
    # then
    visible = html.unescape(off["text"].replace("<b>", "").replace("</b>", ""))
    assert telegram_length(visible) <= TELEGRAM_MAX_TEXT
    assert visible.endswith(CUT_MARKER)
    assert "@\u2060here" in visible and "@here" not in visible
    assert on["text"].startswith("<b>T @all</b>\n") and "@here" in on["text"]


# ------------------------------------------------------------------------------------------------------------
# PostgreSQL
# ------------------------------------------------------------------------------------------------------------


def test_every_matching_event_streams_into_the_users_table_once(ingest, workspace, customer, sink_url, eager):
    # given a schema of the user's, and an event pipeline without filter to a table that does not exist yet
    with psycopg.connect(sink_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA uptake")
    pipeline_create(
        workspace=workspace,
        name="Warehouse",
        trigger={"type": "event"},
        destinations=[{"type": "postgres", "url": sink_url, "table": "uptake.alerts"}],
    )
    # when
    ingest(
        {"account_id": "acc-1", "feature_id": "export", "quantity": 3, "timestamp": "2026-11-18T11:00:00Z"},
        {"account_id": "acc-1", "feature_id": "import", "quantity": 2, "timestamp": "2026-11-18T11:30:00Z"},
    )
    # then the table was created with the documented schema and holds one row per event
    ids = list(AlertDelivery.objects.order_by("pk").values_list("pk", flat=True))
    rows = sink_rows(sink_url)
    assert [r[:10] for r in rows] == [
        (ids[0], "Warehouse", "event", "export", "acc-1", "Initech", "free", "carol@example.com", "export", 3),
        (ids[1], "Warehouse", "event", "import", "acc-1", "Initech", "free", "carol@example.com", "import", 2),
    ]
    assert [r[10].isoformat() for r in rows] == ["2026-11-18T11:00:00+00:00", "2026-11-18T11:30:00+00:00"]
    assert [r[11:] for r in rows] == [("export", True), ("import", True)]
    with psycopg.connect(sink_url) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'uptake' AND table_name = 'alerts' ORDER BY ordinal_position"
        ).fetchall()
    assert columns == [
        ("delivery_id", "bigint"),
        ("pipeline", "text"),
        ("trigger", "text"),
        ("event", "text"),
        ("account_id", "text"),
        ("account_name", "text"),
        ("plan", "text"),
        ("owner", "text"),
        ("feature", "text"),
        ("quantity", "bigint"),
        ("occurred_at", "timestamp with time zone"),
        ("payload", "jsonb"),
        ("created_at", "timestamp with time zone"),
    ]
    # when the send task of the first delivery runs again (a retry after a lost acknowledgement)
    AlertDelivery.objects.filter(pk=ids[0]).update(status="pending", sent_at=None)
    assert alert_delivery_attempt(delivery_id=ids[0], now=FROZEN_NOW).status == "sent"
    # then no second row
    assert [r[0] for r in sink_rows(sink_url)] == ids


def test_an_unreachable_database_is_retried_with_backoff_and_the_password_is_masked(workspace, alert_settings):
    # given a PostgreSQL channel whose server is down (nothing listens on the port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://app:sink-Password1@127.0.0.1:{port}/dw"
    channel = AlertChannel.objects.create(
        workspace=workspace, name="DW", type="postgres", url=url, table="alerts", target_key="pg"
    )
    delivery = AlertDelivery.objects.create(
        workspace=workspace, channel=channel, kind="test", payload={"title": "Hello"}, created_at=FROZEN_NOW
    )
    # when
    outcome = alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    # then retried after a backoff, like an HTTP destination
    delivery.refresh_from_db()
    assert outcome.status == "retry" and 0.05 <= outcome.retry_in <= 0.0625
    assert delivery.status == "pending" and delivery.last_error.startswith("attempt 1: connection failed")
    assert "sink-Password1" not in delivery.last_error
