"""Channels: the workspace's alert targets over REST (secrets never shown back), shared by pipelines with one rate
budget, and refused with a clear message when wrong (nothing stored)."""

from datetime import timedelta

import pytest

from alerts.delivery import alert_delivery_attempt, alert_summary_create, deliveries_create
from alerts.models import AlertChannel, AlertDelivery, AlertPipeline, AlertRateWindow
from alerts.services import pipeline_create
from tests.conftest import FROZEN_NOW

SECRET = "whsec-channel-0123456789wxyz"
TOKEN = "123456789:AAHfakeTokenForTests_0123456789abcd"
SLACK_HOOK = "https://h.example.com/s"


def test_create_channel_answers_201_with_secrets_masked(api):
    # when
    hook = api.post(
        "/api/v1/channels",
        {"name": "Ops hook", "type": "webhook", "url": "https://hooks.example.com/u", "secret": SECRET},
        format="json",
    )
    tg = api.post(
        "/api/v1/channels",
        {"name": "Sales chat", "type": "telegram", "token": TOKEN, "chat_id": "-100123", "mentions": True},
        format="json",
    )
    pg = api.post(
        "/api/v1/channels",
        {
            "name": "Warehouse",
            "type": "postgres",
            "url": "postgresql://dw_writer:pw-Secret1@db.example.com/dw",
            "table": "a.t",
        },
        format="json",
    )
    # then
    assert (hook.status_code, tg.status_code, pg.status_code) == (201, 201, 201)
    assert {k: v for k, v in hook.json().items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "Ops hook",
        "type": "webhook",
        "url": "https://hooks.example.com/u",
        "to": None,
        "secret": "••••wxyz",
        "token": None,
        "chat_id": None,
        "table": None,
        "mentions": False,
        "rate_limit_per_minute": 120,
        "pipelines": [],
    }
    assert (tg.json()["token"], tg.json()["chat_id"], tg.json()["rate_limit_per_minute"]) == ("••••abcd", "-100123", 20)
    assert (pg.json()["url"], pg.json()["table"]) == ("postgresql://••••@db.example.com/dw", "a.t")
    body = hook.content + tg.content + pg.content
    assert SECRET.encode() not in body and TOKEN.encode() not in body
    assert b"pw-Secret1" not in body and b"dw_writer" not in body
    assert AlertChannel.objects.get(name="Sales chat").token == TOKEN


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"type": "slack", "url": "https://h.example.com"}, "name", "name is required"),
        ({"name": "x", "type": "sms"}, "channel.type", "channel.type must be one of slack, discord, webhook"),
        ({"name": "x", "type": "telegram", "chat_id": "-1"}, "channel.token", "channel.token is required"),
        ({"name": "x", "type": "telegram", "token": TOKEN, "chat_id": "my chat"}, "channel.chat_id", "chat id"),
        ({"name": "x", "type": "postgres", "url": "postgresql://h/db", "table": "x; drop"}, "channel.table", "table"),
        ({"name": "x", "type": "postgres", "url": "mysql://h/db", "table": "t"}, "channel.url", "postgresql://"),
        ({"name": "x", "type": "slack", "url": "https://h.example.com", "token": TOKEN}, "channel.token", "not used"),
        ({"name": "x", "type": "webhook", "url": "https://h.example.com", "secret": "short"}, "channel.secret", "16"),
        ({"name": "x", "type": "email", "to": "nope"}, "channel.to", "'nope' is not an e-mail address"),
        ({"name": "x", "type": "slack", "url": "https://h.example.com", "colour": 1}, "colour", "Unknown field"),
    ],
)
def test_bad_channels_are_refused_and_nothing_is_stored(refused, body, field, message):
    refused("/api/v1/channels", body, field, message)


def test_one_target_is_one_channel(api):
    # given
    api.post("/api/v1/channels", {"name": "A", "type": "slack", "url": "https://h.example.com/x"}, format="json")
    # when
    again = api.post(
        "/api/v1/channels", {"name": "B", "type": "slack", "url": "https://h.example.com/x"}, format="json"
    )
    same_name = api.post(
        "/api/v1/channels", {"name": "A", "type": "slack", "url": "https://h.example.com/y"}, format="json"
    )
    # then
    assert again.status_code == 409 and "Channel 'A'" in again.json()["error"]["message"]
    assert same_name.status_code == 409 and same_name.json()["error"]["field"] == "name"
    assert list(AlertChannel.objects.values_list("name", flat=True)) == ["A"]


def test_put_keeps_masked_secrets_and_delete_is_refused_while_in_use(api):
    # given a channel used by a pipeline
    channel = api.post(
        "/api/v1/channels",
        {"name": "Hook", "type": "webhook", "url": "https://h.example.com", "secret": SECRET},
        format="json",
    ).json()
    pipeline = api.post(
        "/api/v1/pipelines", {"name": "P", "trigger": {"type": "event"}, "channels": [channel["id"]]}, format="json"
    ).json()
    # when the channel is PUT back as shown (secret masked) with a new rate limit
    shown = {k: channel[k] for k in ("name", "type", "url", "secret")}
    put = api.put(f"/api/v1/channels/{channel['id']}", {**shown, "rate_limit_per_minute": 7}, format="json")
    refused = api.delete(f"/api/v1/channels/{channel['id']}")
    # then the secret is kept, and the delete names the pipeline using it
    assert put.status_code == 200 and put.json()["rate_limit_per_minute"] == 7
    assert AlertChannel.objects.get().secret == SECRET
    assert pipeline["channels"] == [channel["id"]] and api.get(f"/api/v1/channels/{channel['id']}").json()[
        "pipelines"
    ] == [pipeline["id"]]
    assert refused.status_code == 409 and "'P'" in refused.json()["error"]["message"]
    assert AlertChannel.objects.count() == 1
    # when the pipeline is gone, the channel can go
    api.delete(f"/api/v1/pipelines/{pipeline['id']}")
    assert api.delete(f"/api/v1/channels/{channel['id']}").status_code == 204
    assert AlertChannel.objects.count() == 0
    assert api.get(f"/api/v1/channels/{channel['id']}").status_code == 404


def test_pipelines_refuse_unknown_or_foreign_channels(api, other_workspace, make_client):
    # given a channel of another workspace
    foreign = (
        make_client(other_workspace)
        .post("/api/v1/channels", {"name": "F", "type": "slack", "url": "https://f.example.com"}, format="json")
        .json()
    )
    # when
    response = api.post(
        "/api/v1/pipelines", {"name": "P", "trigger": {"type": "event"}, "channels": [foreign["id"]]}, format="json"
    )
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert {k: error[k] for k in ("code", "field", "message")} == {
        "code": "not_found",
        "field": "channels[0]",
        "message": f"channels[0]: no channel {foreign['id']} in this workspace.",
    }
    assert AlertPipeline.objects.count() == 0


def test_inline_destinations_create_channels_and_reuse_them(api):
    # given a pipeline describing a Slack destination inline
    def create(name: str) -> dict:
        body = {"name": name, "trigger": {"type": "event"}, "destinations": [{"type": "slack", "url": SLACK_HOOK}]}
        return api.post("/api/v1/pipelines", body, format="json").json()

    first = create("A")
    # when a second pipeline describes the same target
    second = create("B")
    # then both post to the one channel of that target
    [channel] = AlertChannel.objects.all()
    assert first["channels"] == second["channels"] == [channel.pk]
    assert channel.name == "Slack https://h.example.com/••••om/s"
    assert sorted(p.name for p in channel.pipelines.all()) == ["A", "B"]


def test_channel_test_message_reaches_the_receiver(api, receiver, eager, django_capture_on_commit_callbacks):
    # given
    channel = api.post(
        "/api/v1/channels", {"name": "Ops", "type": "slack", "url": receiver.url()}, format="json"
    ).json()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/channels/{channel['id']}/test")
    # then
    assert response.status_code == 202
    assert (response.json()["kind"], response.json()["channel_id"], response.json()["pipeline_id"]) == (
        "test",
        channel["id"],
        None,
    )
    [request] = receiver.requests
    assert request.json["blocks"][0]["text"]["text"] == "Test message to 'Ops'"
    assert list(AlertDelivery.objects.values_list("kind", "status")) == [("test", "sent")]


def _alert(n: int, pipeline: str) -> dict:
    return {
        "event": "export",
        "title": f"{pipeline} {n}",
        "text": "t",
        "pipeline": {"id": 1, "name": pipeline},
        "account": {"id": "acc-1", "name": "Initech"},
        "feature": None,
        "details": {},
        "occurred_at": FROZEN_NOW.isoformat(),
    }


def test_two_pipelines_on_one_channel_share_one_budget_and_one_summary(workspace, receiver, alert_settings):
    # given two pipelines posting to one Discord channel that takes 3 messages a window
    channel = AlertChannel.objects.create(
        workspace=workspace, name="Ops", type="discord", url=receiver.url(), rate_limit_per_minute=3, target_key="k"
    )
    a = pipeline_create(workspace=workspace, name="A", trigger={"type": "event"}, channels=[channel.pk])
    b = pipeline_create(workspace=workspace, name="B", trigger={"type": "event"}, channels=[channel.pk])
    deliveries = []
    for n in range(1, 4):
        for pipeline in (a, b):
            deliveries += deliveries_create(
                pipeline=pipeline, payload=_alert(n, pipeline.name), dedupe_key=f"e{n}", now=FROZEN_NOW
            )
    # when all 6 are attempted within one window
    outcomes = [
        alert_delivery_attempt(delivery_id=d.pk, now=FROZEN_NOW + timedelta(seconds=0.1 * i))
        for i, d in enumerate(deliveries)
    ]
    # then the channel got 3, not 3 per pipeline, and the other 3 are held
    assert [o.status for o in outcomes] == ["sent"] * 3 + ["coalesced"] * 3
    assert len(receiver.requests) == 3
    assert list(AlertRateWindow.objects.values_list("channel_id", "sent", "held")) == [(channel.pk, 3, 3)]
    # when the window opens, one summary carries the excess of both pipelines
    summary = alert_summary_create(channel_id=channel.pk, now=FROZEN_NOW + timedelta(seconds=60))
    assert alert_delivery_attempt(delivery_id=summary.pk, now=FROZEN_NOW + timedelta(seconds=60)).status == "sent"
    assert len(receiver.requests) == 4
    embed = receiver.requests[-1].json["embeds"][0]
    assert embed["title"] == "3 alerts held back by the rate limit"
    assert embed["description"].splitlines()[1:] == ["• B 2 — Initech", "• A 3 — Initech", "• B 3 — Initech"]
    assert (summary.pipeline_id, summary.payload["details"]["pipelines"]) == (None, ["A", "B"])
    assert AlertDelivery.objects.filter(summary=summary).count() == 3


def test_channel_operations_are_in_the_openapi_schema_with_every_status(api):
    # when
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    # then
    expected = {
        ("/api/v1/channels", "get"): {"200", "401", "403", "429"},
        ("/api/v1/channels", "post"): {"201", "400", "401", "403", "409", "429"},
        ("/api/v1/channels/{channel_id}", "get"): {"200", "401", "403", "404", "429"},
        ("/api/v1/channels/{channel_id}", "put"): {"200", "400", "401", "403", "404", "409", "429"},
        ("/api/v1/channels/{channel_id}", "delete"): {"204", "401", "403", "404", "409", "429"},
        ("/api/v1/channels/{channel_id}/test", "post"): {"202", "401", "403", "404", "429"},
        ("/api/v1/pipelines", "post"): {"201", "400", "401", "403", "409", "429"},
    }
    # (config/schema.py adds the request cycle's errors, 400/406/415/503..., to every operation as well)
    documented = {key: set(paths[key[0]][key[1]]["responses"]) for key in expected}
    assert {key: expected[key] - documented[key] for key in expected} == {key: set() for key in expected}
    pipeline_input = schema["components"]["schemas"]["PipelineInputRequest"]["properties"]
    assert {"channels", "filter", "template", "destinations"} <= set(pipeline_input)


def test_the_admin_refuses_a_bad_channel_as_a_form_error_and_masks_the_token(client, workspace, staff_of):
    # given a superuser in the admin
    from django.contrib.auth import get_user_model

    user = staff_of(workspace)
    user.is_superuser = True
    user.save()
    client.force_login(get_user_model().objects.get(pk=user.pk))
    form = {
        "workspace": workspace.pk,
        "name": "Chat",
        "type": "telegram",
        "chat_id": "-100123",
        "rate_limit_per_minute": "20",
    }
    # when the bot token is missing, then the page answers with the rule, and nothing is stored
    refused = client.post("/admin/alerts/alertchannel/add/", form)
    assert refused.status_code == 200
    assert "the bot token BotFather gave" in refused.content.decode()
    assert AlertChannel.objects.count() == 0
    # when it is given, then the channel is stored and its page never shows the token
    saved = client.post("/admin/alerts/alertchannel/add/", {**form, "token": TOKEN})
    assert saved.status_code == 302
    channel = AlertChannel.objects.get()
    assert (channel.token, channel.chat_id) == (TOKEN, "-100123")
    page = client.get(f"/admin/alerts/alertchannel/{channel.pk}/change/").content.decode()
    assert TOKEN not in page and "••••abcd" in page


def test_the_admin_sends_a_test_message_per_channel(
    client, workspace, staff_of, receiver, eager, django_capture_on_commit_callbacks
):
    # given two channels, and an admin of the workspace in the channel admin
    channels = [
        AlertChannel.objects.create(
            workspace=workspace, name=name, type="slack", url=receiver.url(f"/{name}"), target_key=name
        )
        for name in ("ops", "sales")
    ]
    client.force_login(staff_of(workspace, "admin"))
    # when the action runs on both
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/alerts/alertchannel/",
            {"action": "send_test_message", "_selected_action": [c.pk for c in channels]},
        )
    # then each channel's target got its test message, logged as sent
    assert response.status_code == 302
    assert sorted((r.path, r.json["blocks"][0]["text"]["text"]) for r in receiver.requests) == [
        ("/ops", "Test message to 'ops'"),
        ("/sales", "Test message to 'sales'"),
    ]
    assert sorted(AlertDelivery.objects.values_list("channel__name", "kind", "status")) == [
        ("ops", "test", "sent"),
        ("sales", "test", "sent"),
    ]
