"""Hostile and malformed bodies on /api/v1/channels and /api/v1/pipelines: always a 400 whose message names the
problem, never a 5xx, and nothing stored or changed."""

from __future__ import annotations

import pytest

from alerts.models import AlertChannel, AlertPipeline, AlertPipelineChannel

TOKEN = "123456789:AAHfakeTokenForTests_0123456789abcd"
SLACK = {"type": "slack", "url": "https://hooks.example.com/s"}


def _refused(response, field: str | None, message: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error.get("field"), message in error["message"]) == (field, True), error


BAD_CHANNELS = [
    ([], None, "JSON object"),
    ("text", None, "JSON object"),
    ({"name": "x", "type": None}, "channel.type", "channel.type must be one of"),
    ({"name": "x", "type": ["slack"]}, "channel.type", "channel.type must be one of"),
    ({"name": 7, **SLACK}, "channel.name", "non-empty string"),
    ({"name": " ", **SLACK}, "channel.name", "non-empty string"),
    ({"name": "x" * 201, **SLACK}, "channel.name", "longer than 200"),
    ({"name": "x", "type": "slack", "url": 12}, "channel.url", "must be a string"),
    ({"name": "x", "type": "slack", "url": "https://h.example.com/" + "a" * 2000}, "channel.url", "longer than 2000"),
    ({"name": "x", "type": "slack", "url": "javascript:alert(1)"}, "channel.url", "http(s) URL"),
    ({"name": "x", "type": "slack", "url": "https://u:p@h.example.com/"}, "channel.url", "credentials"),
    ({"name": "x", "type": "telegram", "token": 5, "chat_id": "1"}, "channel.token", "bot token"),
    ({"name": "x", "type": "telegram", "token": TOKEN, "chat_id": ["1"]}, "channel.chat_id", "chat id"),
    ({"name": "x", "type": "telegram", "token": TOKEN, "chat_id": True}, "channel.chat_id", "chat id"),
    ({"name": "x", "type": "postgres", "url": "postgresql://[::1/db", "table": "t"}, "channel.url", "connection URL"),
    ({"name": "x", "type": "postgres", "url": "postgresql://h:99999/db", "table": "t"}, "channel.url", "connection"),
    ({"name": "x", "type": "postgres", "url": "postgresql://h/db?host=evil", "table": "t"}, "channel.url", "query"),
    ({"name": "x", "type": "postgres", "url": "postgresql://h/db", "table": 3}, "channel.table", "must be a string"),
    ({"name": "x", "type": "postgres", "url": "postgresql://h/db", "table": "a.b.c"}, "channel.table", "table name"),
    ({"name": "x", "type": "email", "to": ["a@example.com", 4]}, "channel.to", "one or more addresses"),
    ({"name": "x", "type": "email", "to": {"a": 1}}, "channel.to", "one or more addresses"),
    ({"name": "x", **SLACK, "mentions": "yes"}, "channel.mentions", "true or false"),
    ({"name": "x", **SLACK, "rate_limit_per_minute": "10"}, "channel.rate_limit_per_minute", "integer"),
    ({"name": "x", **SLACK, "rate_limit_per_minute": 0}, "channel.rate_limit_per_minute", "between 1 and 10000"),
    ({"name": "x", **SLACK, "rate_limit_per_minute": 10**30}, "channel.rate_limit_per_minute", "between 1"),
    ({"name": "x", **SLACK, "rate_limit_per_minute": None}, "channel.rate_limit_per_minute", "integer"),
    ({"name": "x", **SLACK, "id": 3}, "id", "Unknown field"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_CHANNELS)
def test_bad_channel_bodies_are_refused_by_name_on_create_and_update(api, body, field, message):
    # when created, then
    _refused(api.post("/api/v1/channels", body, format="json"), field, message)
    assert AlertChannel.objects.count() == 0
    # when an existing channel is replaced with it
    channel = api.post("/api/v1/channels", {"name": "Ops", **SLACK}, format="json").json()
    before = list(AlertChannel.objects.values())
    replaced = api.put(f"/api/v1/channels/{channel['id']}", body, format="json")
    # then (a body without a name keeps the stored one on update, so some bodies may differ only in that)
    assert replaced.status_code == 400, replaced.content
    assert list(AlertChannel.objects.values()) == before


def _p(**extra) -> dict:
    """A pipeline body that is fine but for `extra`."""
    return {"name": "P", "trigger": {"type": "event"}, "destinations": [SLACK], **extra}


BAD_PIPELINES = [
    ([1, 2], None, "JSON object"),
    (_p(trigger="event"), "trigger", "trigger must be an object"),
    (_p(trigger={"type": 3}), "trigger.type", "must be one of"),
    (_p(trigger={"type": "event", "min_quantity": 1.5}), "trigger.min_quantity", "integer"),
    (_p(destinations=None, channels="1"), "channels", "list of channel ids"),
    (_p(destinations=None, channels=[True]), "channels", "list of channel ids"),
    (_p(destinations=None, channels=[10**30]), "channels[0]", "no channel"),
    (_p(destinations=None, channels=[]), "channels", "at least one channel"),
    (_p(destinations={"type": "slack"}), "destinations", "must be a list"),
    (_p(destinations=["slack"]), "destinations[0]", "must be an object"),
    (_p(destinations=[{**SLACK, "id": "x"}]), "destinations[0].id", "not a channel"),
    (_p(destinations=[SLACK] * 11), "channels", "at most 10"),
    (_p(filter=[]), "filter", "must be an object"),
    (
        _p(filter={"conditions": [{"field": "event.properties.a", "op": "gt", "value": [1]}]}),
        "filter.conditions[0].value",
        "'gt' compares event.properties.a with one value",
    ),
    (
        _p(filter={"conditions": [{"field": "x" * 5000, "op": "eq", "value": 1}]}),
        "filter.conditions[0].field",
        "is not a filter field",
    ),
    (_p(template="hi"), "template", "must be an object"),
    (_p(template={"title": 5}), "template.title", "must be text"),
    (_p(template={"body": "$" * 3001}), "template.body", "longer than 3000"),
    (_p(enabled="yes"), "enabled", "true or false"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_PIPELINES)
def test_bad_pipeline_bodies_are_refused_by_name_on_create_and_update(api, body, field, message):
    # when created, then
    _refused(api.post("/api/v1/pipelines", body, format="json"), field, message)
    assert (AlertPipeline.objects.count(), AlertChannel.objects.count()) == (0, 0)
    # when an existing pipeline is replaced or patched with it
    pipeline = api.post(
        "/api/v1/pipelines", {"name": "Kept", "trigger": {"type": "event"}, "destinations": [SLACK]}, format="json"
    ).json()
    before = [
        list(model.objects.order_by("pk").values()) for model in (AlertPipeline, AlertChannel, AlertPipelineChannel)
    ]
    answers = [
        api.put(f"/api/v1/pipelines/{pipeline['id']}", body, format="json"),
        api.patch(f"/api/v1/pipelines/{pipeline['id']}", body, format="json"),
    ]
    # then both are refused and nothing changed
    assert [a.status_code for a in answers] == [400, 400], [a.content for a in answers]
    after = [
        list(model.objects.order_by("pk").values()) for model in (AlertPipeline, AlertChannel, AlertPipelineChannel)
    ]
    assert after == before
