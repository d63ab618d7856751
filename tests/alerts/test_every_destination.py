"""A matching event reaches each kind of destination once (real receivers: an HTTP receiver on 127.0.0.1 for
Slack, Discord, webhooks and a fake Telegram Bot API, Django's mail outbox, the machine's PostgreSQL in a
database of its own), and without a template every one of them titles it with the bare event name and shows
the payload as its fields."""

from __future__ import annotations

import html

from django.core import mail

from alerts.models import AlertDelivery
from alerts.services import pipeline_create
from alerts.tasks import alert_delivery_send_task
from alerts.triggers import alert_events_evaluate
from tests.alerts.conftest import sink_rows
from tests.conftest import FROZEN_NOW
from usage.models import UsageEvent

TOKEN = "123456789:AAHfakeTokenForTests_0123456789abcd"
SECRET = "whsec-everywhere-0123456789"


def test_a_matching_event_reaches_each_destination_once_titled_with_the_event_name(
    ingest, workspace, customer, receiver, sink_url, eager, settings
):
    # given a pipeline without template posting to one destination of each type
    settings.UPTAKE_TELEGRAM_API_BASE = receiver.url("/tg")
    pipeline_create(
        workspace=workspace,
        name="Everywhere",
        trigger={"type": "event", "features": ["report-exported"], "expected_later": True},
        destinations=[
            {"type": "slack", "url": receiver.url("/slack")},
            {"type": "discord", "url": receiver.url("/discord")},
            {"type": "webhook", "url": receiver.url("/hook"), "secret": SECRET},
            {"type": "telegram", "token": TOKEN, "chat_id": "4242"},
            {"type": "email", "to": "cs@example.com"},
            {"type": "postgres", "url": sink_url, "table": "alerts"},
        ],
    )
    # when a matching event (sent under its display name) and one of another feature are ingested
    ingest(
        {
            "account_id": "acc-1",
            "feature_id": "Report Exported",
            "quantity": 2,
            "event_id": "ev-1",
            "properties": {"format": "pdf", "pages": 12, "source": {"app": "web"}},
        },
        {"account_id": "acc-1", "feature_id": "import"},
    )
    # and the evaluation and every send task run again (a retried task, a message delivered twice)
    event = UsageEvent.objects.get(event_id="ev-1")
    assert alert_events_evaluate(workspace_id=workspace.pk, event_ids=[event.pk], now=FROZEN_NOW) == []
    statuses = [alert_delivery_send_task.apply(args=[d.pk]).get() for d in AlertDelivery.objects.all()]
    # then each destination got the alert once
    assert statuses == ["skipped"] * 6
    assert sorted(r.path for r in receiver.requests) == ["/discord", "/hook", "/slack", f"/tg/bot{TOKEN}/sendMessage"]
    assert len(mail.outbox) == 1 and len(sink_rows(sink_url, "alerts")) == 1
    assert sorted(AlertDelivery.objects.values_list("status", "attempts")) == [("sent", 1)] * 6
    sent = {r.path.split("/")[1]: r.json for r in receiver.requests}
    # and each titles it with the bare event name
    [email] = mail.outbox
    [row] = sink_rows(sink_url, "alerts")
    titles = {
        "slack": sent["slack"]["blocks"][0]["text"]["text"],
        "discord": sent["discord"]["embeds"][0]["title"],
        "webhook": sent["hook"]["title"],
        "telegram": sent["tg"]["text"].splitlines()[0],
        "email": email.subject,
        "postgres": row[11],
    }
    assert titles == {
        "slack": "report-exported",
        "discord": "report-exported",
        "webhook": "report-exported",
        "telegram": "<b>report-exported</b>",
        "email": "report-exported",
        "postgres": "report-exported",
    }
    # and shows the payload as its fields, each event property a field of its own (by name, nested ones dotted)
    fields = [
        ("Account", "Initech (acc-1)"),
        ("Plan", "free"),
        ("Owner", "carol@example.com"),
        ("Domain", "initech.com"),
        ("Feature", "Report Exported (report-exported)"),
        ("Quantity", "2"),
        ("Occurred at", event.occurred_at.isoformat()),
        ("Event id", "ev-1"),
        ("format", "pdf"),
        ("pages", "12"),
        ("source.app", "web"),
    ]
    assert [(f["name"], f["value"]) for f in sent["discord"]["embeds"][0]["fields"]] == fields
    slack_fields = [f["text"] for block in sent["slack"]["blocks"][2:-1] for f in block["fields"]]
    assert slack_fields == [f"*{name}*\n{value}" for name, value in fields]
    lines = [f"{name}: {value}" for name, value in fields]
    assert html.unescape(sent["tg"]["text"]).splitlines()[2:] == lines
    assert "\n".join(lines) in email.body
    assert sent["hook"]["details"]["properties"] == {"format": "pdf", "pages": 12, "source": {"app": "web"}}
    assert sent["hook"]["account"] == {
        "id": "acc-1",
        "name": "Initech",
        "plan": "free",
        "owner": "carol@example.com",
        "domain": "initech.com",
    }
