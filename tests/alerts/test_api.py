import re

import pytest
from django.contrib.auth import get_user_model

from alerts.models import AlertChannel, AlertDelivery, AlertPipeline, AlertPipelineChannel

SECRET = "whsec-api-0123456789wxyz"


def _body(**overrides) -> dict:
    body = {
        "name": "Big exports",
        "enabled": True,
        "trigger": {
            "type": "event",
            "features": ["export.pdf"],
            "plans": ["pro"],
            "min_quantity": 10,
            "expected_later": True,
        },
        "destinations": [
            {"type": "discord", "url": "https://discord.com/api/webhooks/1/token-ABCD"},
            {"type": "webhook", "url": "https://hooks.example.com/uptake", "secret": SECRET},
            {"type": "email", "to": "cs@example.com"},
        ],
    }
    body.update(overrides)
    return body


def test_create_pipeline_masks_secrets_and_applies_defaults(api):
    # when
    response = api.post("/api/v1/pipelines", _body(), format="json")
    # then
    assert response.status_code == 201
    data = response.json()
    assert data["name"] == "Big exports" and data["enabled"] is True
    assert data["trigger"] == {
        "type": "event",
        "features": ["export.pdf"],
        "plans": ["pro"],
        "min_quantity": 10,
        "expected_later": True,
    }
    assert [
        {k: d[k] for k in ("type", "url", "to", "secret", "mentions", "rate_limit_per_minute")}
        for d in data["destinations"]
    ] == [
        {
            "type": "discord",
            "url": "https://discord.com/••••ABCD",
            "to": None,
            "secret": None,
            "mentions": False,
            "rate_limit_per_minute": 30,
        },
        {
            "type": "webhook",
            "url": "https://hooks.example.com/uptake",
            "to": None,
            "secret": "••••wxyz",
            "mentions": False,
            "rate_limit_per_minute": 120,
        },
        {
            "type": "email",
            "url": None,
            "to": ["cs@example.com"],
            "secret": None,
            "mentions": False,
            "rate_limit_per_minute": 30,
        },
    ]
    assert SECRET not in response.content.decode()
    assert AlertChannel.objects.get(type="webhook").secret == SECRET


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"trigger": {"type": "sometimes"}}, "trigger.type", "trigger.type must be one of event, threshold"),
        (
            {"trigger": {"type": "event", "percent": 5}},
            "trigger.percent",
            "trigger.percent is not used by 'event'",
        ),
        (
            {"trigger": {"type": "usage_drop"}},
            "trigger.percent",
            "trigger.percent is required for 'usage_drop'",
        ),
        (
            {"trigger": {"type": "dormant", "days": 0}},
            "trigger.days",
            "trigger.days must be between 1 and 365",
        ),
        ({"trigger": {"type": "event", "min_quantity": "ten"}}, "trigger.min_quantity", "must be an integer"),
        ({"destinations": []}, "destinations", "at least one destination is required"),
        (
            {"destinations": [{"type": "webhook", "url": "https://x.example.com", "secret": "short"}]},
            "destinations[0].secret",
            "secret is required for webhook channels",
        ),
        (
            {"destinations": [{"type": "slack", "url": "ftp://x"}]},
            "destinations[0].url",
            "must be an http(s) URL",
        ),
        (
            {"destinations": [{"type": "email", "to": "not-an-address"}]},
            "destinations[0].to",
            "'not-an-address' is not an e-mail address",
        ),
        (
            {"destinations": [{"type": "pager", "url": "https://x.example.com"}]},
            "destinations[0].type",
            "destinations[0].type must be one of slack, discord, webhook, email",
        ),
        ({"name": ""}, "name", "name is required"),
        (
            {"trigger": {"type": "event", "features": [f"f{i}" for i in range(101)]}},
            "trigger.features",
            "trigger.features has 101 entries; at most 100.",
        ),
        (
            {"trigger": {"type": "event", "plans": ["free"] * 5000}},
            "trigger.plans",
            "trigger.plans has 5000 entries; at most 100.",
        ),
        ({"colour": "red"}, "colour", "Unknown field 'colour'"),
    ],
)
def test_create_pipeline_refuses_bad_input_and_stores_nothing(refused, change, field, message):
    refused("/api/v1/pipelines", _body(**change), field, message)


def test_duplicate_name_is_a_conflict(api):
    # given
    api.post("/api/v1/pipelines", _body(), format="json")
    # when
    response = api.post("/api/v1/pipelines", _body(), format="json")
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "duplicate_name",
        "field": "name",
        "message": "A pipeline named 'Big exports' already exists in this workspace.",
    }
    assert AlertPipeline.objects.count() == 1


def test_put_with_masked_secret_keeps_the_stored_one(api):
    # given
    created = api.post("/api/v1/pipelines", _body(), format="json").json()
    destinations = [{k: v for k, v in d.items() if v is not None} for d in created["destinations"]]
    # when: the client sends back what it read, with a new name
    response = api.put(
        f"/api/v1/pipelines/{created['id']}",
        {"name": "Renamed", "trigger": created["trigger"], "destinations": destinations},
        format="json",
    )
    # then
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"
    assert AlertChannel.objects.get(type="webhook").secret == SECRET
    assert AlertChannel.objects.get(type="discord").url == "https://discord.com/api/webhooks/1/token-ABCD"
    assert [d["id"] for d in response.json()["destinations"]] == [d["id"] for d in created["destinations"]]


def test_patch_disables_and_delete_removes(api):
    # given
    created = api.post("/api/v1/pipelines", _body(), format="json").json()
    # when
    patched = api.patch(f"/api/v1/pipelines/{created['id']}", {"enabled": False}, format="json")
    deleted = api.delete(f"/api/v1/pipelines/{created['id']}")
    # then
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert deleted.status_code == 204
    assert AlertPipeline.objects.count() == 0 and AlertPipelineChannel.objects.count() == 0
    # and the channels the pipeline described inline stay in the workspace for other pipelines
    assert sorted(AlertChannel.objects.values_list("type", flat=True)) == ["discord", "email", "webhook"]


def test_other_workspace_pipeline_is_404(api, other_workspace, make_client):
    # given
    created = api.post("/api/v1/pipelines", _body(), format="json").json()
    other = make_client(other_workspace)
    # when
    responses = [
        other.get(f"/api/v1/pipelines/{created['id']}"),
        other.patch(f"/api/v1/pipelines/{created['id']}", {"enabled": False}, format="json"),
        other.delete(f"/api/v1/pipelines/{created['id']}"),
        other.get(f"/api/v1/pipelines/{created['id']}/deliveries"),
    ]
    # then
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert other.get("/api/v1/pipelines").json()["results"] == []
    assert AlertPipeline.objects.get().enabled is True


def test_read_or_ingest_keys_are_refused(workspace, make_client):
    # given a channel, and a key without the admin scope
    channel = AlertChannel.objects.create(
        workspace=workspace, name="Ops", type="slack", url="https://h.example.com/s", target_key="k"
    )
    client = make_client(workspace, "read,ingest")
    # when
    answers = [
        client.post("/api/v1/pipelines", _body(), format="json"),
        client.get("/api/v1/channels"),
        client.post("/api/v1/channels", {"name": "New", "type": "email", "to": "a@example.com"}, format="json"),
        client.put(f"/api/v1/channels/{channel.pk}", {"name": "Renamed"}, format="json"),
        client.delete(f"/api/v1/channels/{channel.pk}"),
        client.post(f"/api/v1/channels/{channel.pk}/test"),
    ]
    # then
    assert [a.status_code for a in answers] == [403] * 6
    assert {a.json()["error"]["message"] for a in answers} == {"This API key lacks the 'admin' scope."}
    assert AlertPipeline.objects.count() == 0 and AlertDelivery.objects.count() == 0
    assert list(AlertChannel.objects.values_list("name", flat=True)) == ["Ops"]


def test_test_endpoint_queues_one_message_per_destination_and_lists_deliveries(api):
    # given
    created = api.post("/api/v1/pipelines", _body(), format="json").json()
    # when
    queued = api.post(f"/api/v1/pipelines/{created['id']}/test")
    log = api.get(f"/api/v1/pipelines/{created['id']}/deliveries")
    # then
    assert queued.status_code == 202
    assert [(d["kind"], d["status"], d["attempts"]) for d in queued.json()] == [("test", "pending", 0)] * 3
    assert log.json()["count"] == 3
    assert {d["payload"]["title"] for d in log.json()["results"]} == {"Test message from 'Big exports'"}
    assert AlertDelivery.objects.filter(kind="test").count() == 3


def test_pipelines_are_in_the_openapi_schema(api):
    # when
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    # then
    for path in (
        "/api/v1/pipelines",
        "/api/v1/pipelines/{pipeline_id}",
        "/api/v1/pipelines/{pipeline_id}/deliveries",
        "/api/v1/pipelines/{pipeline_id}/test",
    ):
        assert path in schema


def test_admin_action_sends_test_message(client, workspace, staff_of):
    # given
    from alerts.services import pipeline_create

    user = staff_of(workspace)
    user.is_superuser = True
    user.save()
    pipeline = pipeline_create(
        workspace=workspace,
        name="P",
        trigger={"type": "event"},
        destinations=[{"type": "webhook", "url": "https://h.example.com", "secret": SECRET}],
    )
    client.force_login(get_user_model().objects.get(pk=user.pk))
    # when
    response = client.post(
        "/admin/alerts/alertpipeline/", {"action": "send_test_message", "_selected_action": [pipeline.pk]}
    )
    # then
    assert response.status_code == 302
    assert list(AlertDelivery.objects.values_list("kind", "status")) == [("test", "pending")]
    # and the channel's change page never shows the secret field's value
    channel = pipeline.channels.get()
    page = client.get(f"/admin/alerts/alertchannel/{channel.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    [secret_input] = re.findall(r'<input[^>]*name="secret"[^>]*>', html)
    assert SECRET not in html and 'type="password"' in secret_input and "value=" not in secret_input
