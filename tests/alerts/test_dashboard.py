"""Alert pipeline pages of the dashboard through Django's test client: login and staff, the session's
workspace, 404 across workspaces, read-only viewers and managers, the form calling the REST API's services
(errors next to their fields, nothing stored), enable/disable, delete, test message and delivery log."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.services import membership_set
from alerts.models import AlertChannel, AlertDelivery, AlertPipeline, AlertPipelineChannel
from alerts.services import pipeline_create, pipeline_test_send
from tests.alerts.conftest import dashboard_form

SECRET = "whsec-dashboard-0123456789"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/abcdefghijklmnop"
SLACK = [{"type": "slack", "url": SLACK_URL}]


@pytest.fixture
def pipeline(workspace):
    return pipeline_create(
        workspace=workspace,
        name="Upsell",
        trigger={"type": "event", "features": ["export"], "min_quantity": 5, "expected_later": True},
        destinations=[{"type": "slack", "url": SLACK_URL}],
    )


@pytest.fixture
def foreign(other_workspace):
    return pipeline_create(
        workspace=other_workspace,
        name="Globex secret pipeline",
        trigger={"type": "dormant", "days": 30},
        destinations=[{"type": "email", "to": "cs@globex.com"}],
    )


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(workspace, staff_of) -> Client:
    return _client(staff_of(workspace, "admin"))


def _pipelines(workspace) -> list[tuple]:
    return list(AlertPipeline.objects.filter(workspace=workspace).values_list("name", "enabled", "trigger_type"))


# ---------------------------------------------------------------------------
# Access
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/alerts/", "/alerts/new/", "/alerts/1/", "/alerts/1/edit/"])
def test_anonymous_users_are_sent_to_login(db, path):
    # when
    response = Client().get(path)
    # then
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_non_staff_members_are_refused(workspace, pipeline):
    # given a member without staff status
    user = get_user_model().objects.create_user(username="dave", password="pw-dave-123")
    membership_set(workspace=workspace, user=user, role="owner")
    # when
    response = _client(user).get("/alerts/")
    # then
    assert response.status_code == 403


def test_list_shows_the_session_workspace_only(admin_client, pipeline, foreign):
    # when
    response = admin_client.get("/alerts/")
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "Upsell" in html and "Globex secret pipeline" not in html
    assert [row["pipeline"].name for row in response.context["pipelines"]] == ["Upsell"]
    # the Slack URL's token is masked
    assert "abcdefghijklmnop" not in html and "hooks.slack.com/••••mnop" in html
    assert 'href="/alerts/new/"' in html and 'href="/alerts/"' in html


def test_list_follows_the_dashboard_workspace_switcher(workspace, other_workspace, staff_of, pipeline, foreign):
    # given carol is a member of both workspaces and switches to globex on the dashboard
    staff_of(workspace, "admin")
    client = _client(staff_of(other_workspace, "viewer"))
    assert client.post("/switch-workspace/", {"workspace": "globex"}).status_code == 302
    # when
    response = client.get("/alerts/")
    # then
    assert [row["pipeline"].name for row in response.context["pipelines"]] == ["Globex secret pipeline"]
    assert response.context["can_edit"] is False
    assert client.get(f"/alerts/{pipeline.pk}/").status_code == 404


@pytest.mark.parametrize(
    "method,suffix",
    [
        ("get", "/"),
        ("get", "/edit/"),
        ("post", "/edit/"),
        ("post", "/toggle/"),
        ("post", "/test/"),
        ("get", "/delete/"),
        ("post", "/delete/"),
    ],
)
def test_another_workspaces_pipeline_is_not_found(admin_client, foreign, method, suffix):
    # when
    response = getattr(admin_client, method)(f"/alerts/{foreign.pk}{suffix}")
    # then: 404, and nothing changed
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert (foreign.name, foreign.enabled) == ("Globex secret pipeline", True)
    assert AlertDelivery.objects.count() == 0


@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_viewers_and_managers_read_but_cannot_change(workspace, staff_of, pipeline, role):
    # given
    client = _client(staff_of(workspace, role))
    # when they read
    listing = client.get("/alerts/")
    detail = client.get(f"/alerts/{pipeline.pk}/")
    # then: pages without edit controls
    assert listing.status_code == 200 and detail.status_code == 200
    assert "new-pipeline" not in listing.content.decode()
    assert "send-test" not in detail.content.decode() and "toggle-pipeline" not in detail.content.decode()
    assert "delete-pipeline" not in detail.content.decode()
    # when they try to change anything
    responses = [
        client.get("/alerts/new/"),
        client.post("/alerts/new/", dashboard_form(destinations=[{"type": "slack", "url": SLACK_URL}])),
        client.get(f"/alerts/{pipeline.pk}/edit/"),
        client.post(f"/alerts/{pipeline.pk}/edit/", dashboard_form(name="Renamed", destinations=[])),
        client.post(f"/alerts/{pipeline.pk}/toggle/"),
        client.post(f"/alerts/{pipeline.pk}/test/"),
        client.get(f"/alerts/{pipeline.pk}/delete/"),
        client.post(f"/alerts/{pipeline.pk}/delete/"),
    ]
    # then: refused, nothing stored or sent
    assert [r.status_code for r in responses] == [403] * 8
    assert _pipelines(workspace) == [("Upsell", True, "event")]
    assert AlertDelivery.objects.count() == 0


def test_superusers_edit_every_workspace(other_workspace, foreign):
    # given a superuser with no membership
    root = get_user_model().objects.create_superuser(username="root", password="pw-root-123", email="r@x.io")
    client = _client(root)
    client.post("/switch-workspace/", {"workspace": "globex"})
    # when
    response = client.post(f"/alerts/{foreign.pk}/toggle/")
    # then
    assert response.status_code == 302
    foreign.refresh_from_db()
    assert foreign.enabled is False


# ---------------------------------------------------------------------------
# Create and edit
# ---------------------------------------------------------------------------


def test_admin_creates_a_pipeline_through_thedashboard_form(workspace, admin_client, api):
    # when
    response = admin_client.post(
        "/alerts/new/",
        dashboard_form(
            name="Near limits",
            trigger_type="threshold",
            unseen_features="export, reports",
            expected_later="on",
            percent="80, 100",
            destinations=[
                {"type": "webhook", "url": "https://example.com/hook", "secret": SECRET},
                {"type": "email", "to": "cs@acme.com, boss@acme.com"},
                {
                    "type": "discord",
                    "url": "https://discord.com/api/webhooks/1/tok",
                    "mentions": True,
                    "rate_limit_per_minute": "10",
                },
                {"type": "", "url": "", "to": ""},  # a blank row is skipped
            ],
        ),
    )
    # then: stored, shown, and the same as the REST API sees it
    [pipeline] = AlertPipeline.objects.filter(workspace=workspace)
    assert response.status_code == 302 and response["Location"] == f"/alerts/{pipeline.pk}/"
    body = api.get(f"/api/v1/pipelines/{pipeline.pk}").json()
    assert (body["name"], body["enabled"]) == ("Near limits", True)
    assert body["trigger"] == {
        "type": "threshold",
        "features": ["export", "reports"],
        "expected_later": True,
        "percent": [80, 100],
    }
    assert [
        (d["type"], d["url"], d["to"], d["mentions"], d["rate_limit_per_minute"]) for d in body["destinations"]
    ] == [
        ("webhook", "https://example.com/hook", None, False, 120),
        ("email", None, ["cs@acme.com", "boss@acme.com"], False, 30),
        ("discord", "https://discord.com/••••/tok", None, True, 10),
    ]
    assert AlertChannel.objects.get(type="webhook").secret == SECRET
    detail = admin_client.get(response["Location"]).content.decode()
    assert "Near limits" in detail and SECRET not in detail and "••••6789" in detail


@pytest.mark.parametrize(
    "fields,destinations,where,message",
    [
        (
            {"name": ""},
            SLACK,
            ("form", "name"),
            "Give the pipeline a name.",
        ),
        (
            {"trigger_type": ""},
            SLACK,
            ("form", "trigger_type"),
            "Choose what should trigger the pipeline.",
        ),
        (
            {"plans": "pro, "},
            SLACK,
            ("form", "plans"),
            "trigger.plans[1] must not be empty.",
        ),
        (
            {"min_quantity": "lots"},
            SLACK,
            ("form", "min_quantity"),
            "trigger.min_quantity must be an integer between 1 and 1000000000.",
        ),
        (
            {"trigger_type": "usage_drop"},
            SLACK,
            ("form", "percent"),
            "trigger.percent is required for 'usage_drop': alert when usage dropped by at least this percent.",
        ),
        (
            {},
            [],
            ("form", "__all__"),
            "destinations: at least one destination is required (or channels: ids of the workspace's channels).",
        ),
        (
            {},
            [
                {"type": "slack", "url": SLACK_URL},
                {"type": "webhook", "url": "https://e.com/h", "secret": "short"},
            ],
            ("row", 1, "secret"),
            "destinations[1].secret is required for webhook channels: 16 to 200 characters, "
            "used to sign each body with HMAC-SHA256.",
        ),
        (
            {},
            [{"type": "email", "to": "not-an-address"}],
            ("row", 0, "to"),
            "destinations[0].to: 'not-an-address' is not an e-mail address.",
        ),
    ],
)
def test_form_errors_are_shown_next_to_their_field_and_nothing_is_stored(
    workspace, admin_client, fields, destinations, where, message
):
    # when
    response = admin_client.post("/alerts/new/", dashboard_form(destinations=destinations, **fields))
    # then
    assert response.status_code == 400
    if where[0] == "form":
        assert response.context["form"].errors == {where[1]: [message]}
    else:
        assert response.context["formset"].forms[where[1]].errors == {where[2]: [message]}
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert AlertPipeline.objects.count() == 0 and AlertChannel.objects.count() == 0


def test_duplicate_name_is_refused_next_to_the_name(workspace, admin_client, pipeline):
    # when
    response = admin_client.post(
        "/alerts/new/", dashboard_form(name="Upsell", destinations=[{"type": "slack", "url": SLACK_URL}])
    )
    # then
    assert response.status_code == 400
    assert response.context["form"].errors == {"name": ["A pipeline named 'Upsell' already exists in this workspace."]}
    assert AlertPipeline.objects.count() == 1 and AlertChannel.objects.count() == 1


def test_edit_form_shows_masked_values_and_keeps_them(workspace, admin_client, pipeline):
    # given
    [slack] = pipeline.channels.all()
    page = admin_client.get(f"/alerts/{pipeline.pk}/edit/")
    [row, *_blank] = page.context["formset"].forms
    assert row.initial["url"] == "https://hooks.slack.com/••••mnop"
    assert page.context["form"].initial["min_quantity"] == 5
    # when the masked URL comes back as it was shown, with a new name, trigger and a second destination
    response = admin_client.post(
        f"/alerts/{pipeline.pk}/edit/",
        dashboard_form(
            name="Upsell (big)",
            unseen_features="export",
            expected_later="on",
            min_quantity="50",
            destinations=[
                {"id": str(slack.pk), "type": "slack", "url": row.initial["url"]},
                {"type": "webhook", "url": "https://example.com/h", "secret": SECRET},
            ],
        ),
    )
    # then
    assert response.status_code == 302
    pipeline.refresh_from_db()
    assert (pipeline.name, pipeline.trigger_config) == (
        "Upsell (big)",
        {"features": ["export"], "min_quantity": 50, "expected_later": True},
    )
    stored = list(pipeline.channels.order_by("id").values_list("pk", "type", "url", "secret"))
    assert stored == [
        (slack.pk, "slack", SLACK_URL, ""),
        (stored[1][0], "webhook", "https://example.com/h", SECRET),
    ]

    # when the webhook row is saved again with a blank secret, and the slack row removed
    response = admin_client.post(
        f"/alerts/{pipeline.pk}/edit/",
        dashboard_form(
            name="Upsell (big)",
            unseen_features="export",
            expected_later="on",
            min_quantity="50",
            destinations=[
                {"id": str(slack.pk), "type": "slack", "url": row.initial["url"], "DELETE": True},
                {"id": str(stored[1][0]), "type": "webhook", "url": "https://example.com/h", "secret": ""},
            ],
        ),
    )
    # then: the secret is kept, the slack destination is gone
    assert response.status_code == 302
    assert list(pipeline.channels.values_list("type", "secret")) == [("webhook", SECRET)]


def test_failed_edit_changes_nothing(workspace, admin_client, pipeline):
    # when the name is fine but a destination is not
    response = admin_client.post(
        f"/alerts/{pipeline.pk}/edit/",
        dashboard_form(
            name="Renamed", destinations=[{"type": "webhook", "url": "ftp://example.com", "secret": SECRET}]
        ),
    )
    # then
    assert response.status_code == 400
    assert response.context["formset"].forms[0].errors == {
        "url": ["destinations[0].url must be an http(s) URL; got 'ftp://example.com'."]
    }
    pipeline.refresh_from_db()
    assert pipeline.name == "Upsell"
    assert list(pipeline.channels.values_list("type", "url")) == [("slack", SLACK_URL)]


# ---------------------------------------------------------------------------
# Enable/disable, test message, delivery log
# ---------------------------------------------------------------------------


def test_delete_asks_first_then_removes_the_pipeline_its_destinations_and_log(admin_client, pipeline, foreign):
    # given a delivery in the pipeline's log (queued; its sending would run after a commit this test never makes)
    pipeline_test_send(pipeline=pipeline)
    assert AlertDelivery.objects.filter(pipeline=pipeline).count() == 1
    # when the confirmation page is opened
    confirm = admin_client.get(f"/alerts/{pipeline.pk}/delete/")
    # then it says what will go, and nothing is deleted yet
    assert confirm.status_code == 200
    assert re.search(
        r'id="delete-summary">This deletes the pipeline and its delivery log \(1 message\); its 1 channel stays in the '
        r"workspace",
        confirm.content.decode(),
    )
    assert 'id="delete-pipeline"' in admin_client.get(f"/alerts/{pipeline.pk}/").content.decode()
    assert AlertPipeline.objects.filter(pk=pipeline.pk).exists()
    # when it is confirmed
    deleted = admin_client.post(f"/alerts/{pipeline.pk}/delete/")
    # then the pipeline, its destinations and its log are gone; the other workspace's pipeline is untouched
    assert (deleted.status_code, deleted["Location"]) == (302, "/alerts/")
    assert list(AlertPipeline.objects.values_list("name", flat=True)) == ["Globex secret pipeline"]
    assert AlertPipelineChannel.objects.filter(pipeline_id=pipeline.pk).count() == 0
    assert AlertDelivery.objects.count() == 0
    assert admin_client.get(f"/alerts/{pipeline.pk}/").status_code == 404


def test_delivery_log_pages_back_to_the_first_message(admin_client, pipeline, monkeypatch):
    # given 5 messages in the log and pages of 2
    from alerts import views

    monkeypatch.setattr(views, "DELIVERY_LOG_LIMIT", 2)
    ids = [pipeline_test_send(pipeline=pipeline)[0].pk for _ in range(5)]

    def page(query: str = "") -> tuple[list[int], str | None]:
        html = admin_client.get(f"/alerts/{pipeline.pk}/{query}").content.decode()
        older = re.search(r'href="\?before=(\d+)" id="older-log"', html)
        return [int(i) for i in re.findall(r'data-delivery="(\d+)"', html)], older and older.group(1)

    # when the log is paged backwards, then each page holds the next older messages, and the last has no link
    assert page() == ([ids[4], ids[3]], str(ids[3]))
    assert page(f"?before={ids[3]}") == ([ids[2], ids[1]], str(ids[1]))
    assert page(f"?before={ids[1]}") == ([ids[0]], None)
    assert page("?before=junk") == ([ids[4], ids[3]], str(ids[3]))


def test_toggle_disables_and_enables(admin_client, pipeline):
    # when
    first = admin_client.post(f"/alerts/{pipeline.pk}/toggle/")
    pipeline.refresh_from_db()
    disabled = pipeline.enabled
    admin_client.post(f"/alerts/{pipeline.pk}/toggle/")
    pipeline.refresh_from_db()
    # then
    assert first.status_code == 302 and first["Location"] == f"/alerts/{pipeline.pk}/"
    assert (disabled, pipeline.enabled) == (False, True)
    assert admin_client.get(f"/alerts/{pipeline.pk}/toggle/").status_code == 405


def test_send_test_message_reaches_the_receiver_and_the_log(
    workspace, admin_client, receiver, eager, django_capture_on_commit_callbacks
):
    # given
    pipeline = pipeline_create(
        workspace=workspace,
        name="Hooks",
        trigger={"type": "event"},
        destinations=[{"type": "webhook", "url": receiver.url("/t"), "secret": SECRET}],
    )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/alerts/{pipeline.pk}/test/")
    log = admin_client.get(f"/alerts/{pipeline.pk}/")
    # then
    assert response.status_code == 302
    [request] = receiver.requests
    assert (request.path, request.json["title"]) == ("/t", "Test message from 'Hooks'")
    [delivery] = log.context["deliveries"]
    assert (delivery.kind, delivery.status, delivery.attempts, delivery.response_code) == (
        "test",
        "sent",
        1,
        200,
    )
    assert f'data-delivery="{delivery.pk}" data-status="sent"' in log.content.decode()


@pytest.mark.parametrize("before", ["99999999999999999999", "9" * 5000, "²", "-1"])
def test_a_delivery_log_cursor_that_is_no_bigint_id_shows_the_newest_page(admin_client, pipeline, before):
    # when the log is asked for messages before an id past bigint, too long to read, or not ASCII digits
    response = admin_client.get(f"/alerts/{pipeline.pk}/", {"before": before})
    # then the newest page is shown
    assert response.status_code == 200 and response.context["log_before"] is None


def test_a_number_too_long_to_read_in_the_form_is_refused_by_name(workspace, admin_client):
    # when the minimum quantity has 5,000 digits
    response = admin_client.post(
        "/alerts/new/", dashboard_form(min_quantity="9" * 5000, destinations=[{"type": "slack", "url": SLACK_URL}])
    )
    # then the form says the range, and nothing is stored
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors == {"min_quantity": ["trigger.min_quantity must be an integer between 1 and 1000000000."]}
    assert AlertPipeline.objects.count() == 0 and AlertChannel.objects.count() == 0


# ---------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------


def test_admin_creates_a_channel_sends_a_test_and_cannot_delete_it_while_used(
    workspace, admin_client, receiver, eager, django_capture_on_commit_callbacks
):
    # when a channel is created through its form
    response = admin_client.post(
        "/alerts/channels/new/",
        {"name": "Ops", "type": "slack", "url": receiver.url(), "rate_limit_per_minute": "5"},
    )
    # then
    channel = AlertChannel.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"/alerts/channels/{channel.pk}/")
    assert (channel.name, channel.type, channel.url, channel.rate_limit_per_minute) == (
        "Ops",
        "slack",
        receiver.url(),
        5,
    )
    # when a test message is sent from its page
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/alerts/channels/{channel.pk}/test/")
    page = admin_client.get(f"/alerts/channels/{channel.pk}/").content.decode()
    # then it reached the receiver and shows in the channel's log
    assert [r.json["blocks"][0]["text"]["text"] for r in receiver.requests] == ["Test message to 'Ops'"]
    assert 'data-status="sent"' in page
    # when a pipeline ticks the channel, then deleting the channel is refused with the pipeline's name
    admin_client.post("/alerts/new/", dashboard_form(name="Uses ops", channels=[str(channel.pk)]))
    refused = admin_client.post(f"/alerts/channels/{channel.pk}/delete/")
    assert refused.status_code == 409
    assert "used by the pipeline(s) &#x27;Uses ops&#x27;" in refused.content.decode()
    assert AlertChannel.objects.count() == 1
    assert list(AlertPipeline.objects.get().channels.values_list("pk", flat=True)) == [channel.pk]


def test_channel_form_refusals_are_shown_next_to_the_field(workspace, admin_client):
    # when
    response = admin_client.post("/alerts/channels/new/", {"name": "Chat", "type": "telegram", "chat_id": "-100"})
    # then
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["token"]
    assert "the bot token BotFather gave" in response.context["form"].errors["token"][0]
    assert AlertChannel.objects.count() == 0


# ---------------------------------------------------------------------------
# The pipeline form a manager uses: words, catalog picker, filter builder, template preview
# ---------------------------------------------------------------------------


def test_an_empty_submit_answers_in_words_and_stores_nothing(workspace, admin_client):
    # when
    response = admin_client.post("/alerts/new/", dashboard_form(name="", trigger_type=""))
    # then
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "name": ["Give the pipeline a name."],
        "trigger_type": ["Choose what should trigger the pipeline."],
    }
    assert "got None" not in response.content.decode()
    assert AlertPipeline.objects.count() == 0


def test_features_come_from_the_catalog_and_unknown_keys_need_the_not_seen_yet_choice(workspace, admin_client, product):
    # given
    from catalog.services import feature_create

    feature_create(workspace=workspace, key="export", name="Export", product=product)
    page = admin_client.get("/alerts/new/")
    assert page.context["form"].fields["features"].choices == [("export", "Export (export)")]
    destinations = [{"type": "slack", "url": SLACK_URL}]
    # when a mistyped key is typed without the choice
    refused = admin_client.post(
        "/alerts/new/", dashboard_form(features=["export"], unseen_features="exprot", destinations=destinations)
    )
    # then it is refused next to the input, naming the key
    assert refused.status_code == 400
    [message] = refused.context["form"].errors["unseen_features"]
    assert message.startswith("trigger.features: no feature 'exprot' in the catalog.")
    assert AlertPipeline.objects.count() == 0
    # when the key is kept on purpose
    kept = admin_client.post(
        "/alerts/new/",
        dashboard_form(
            features=["export"], unseen_features="ai.summary", expected_later="on", destinations=destinations
        ),
    )
    assert kept.status_code == 302
    assert AlertPipeline.objects.get().trigger_config == {"features": ["export", "ai.summary"], "expected_later": True}


def _conditions(*rows: dict) -> dict:
    data = {"cond-TOTAL_FORMS": str(len(rows)), "cond-INITIAL_FORMS": "0"}
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"cond-{index}-{key}"] = value
    return data


def test_the_filter_builder_saves_conditions_without_json_and_names_the_bad_row(workspace, admin_client):
    destinations = [{"type": "slack", "url": SLACK_URL}]
    # when a condition row is wrong
    refused = admin_client.post(
        "/alerts/new/",
        {
            **dashboard_form(destinations=destinations),
            **_conditions(
                {"field": "account.plan", "op": "in", "value": "free, starter"},
                {"field": "event.quantity", "op": "gt", "value": "ten"},
            ),
        },
    )
    # then the message is on that row's value, and nothing is stored
    assert refused.status_code == 400
    assert refused.context["conditions"].forms[1].errors == {
        "value": ["filter.conditions[1].value: 'gt' needs a number; got 'ten'."]
    }
    assert AlertPipeline.objects.count() == 0
    # when the rows are right (a property picked by name, a blank row skipped)
    saved = admin_client.post(
        "/alerts/new/",
        {
            **dashboard_form(destinations=destinations, filter_match="any"),
            **_conditions(
                {"field": "account.plan", "op": "in", "value": "free, starter"},
                {"field": "event.properties.", "name": "format", "op": "eq", "value": "csv"},
                {"field": "", "op": "", "value": ""},
            ),
        },
    )
    # then
    assert saved.status_code == 302
    pipeline = AlertPipeline.objects.get()
    assert pipeline.filter == {
        "match": "any",
        "conditions": [
            {"field": "account.plan", "op": "in", "value": ["free", "starter"]},
            {"field": "event.properties.format", "op": "eq", "value": "csv"},
        ],
    }
    # and the edit form shows them as rows again
    edit = admin_client.get(f"/alerts/{pipeline.pk}/edit/")
    assert [f.initial for f in edit.context["conditions"].forms[:2]] == [
        {"field": "account.plan", "name": "", "op": "in", "value": "free, starter", "expected_later": False},
        {"field": "event.properties.", "name": "format", "op": "eq", "value": "csv", "expected_later": False},
    ]


def test_template_preview_renders_the_latest_matching_event(workspace, admin_client, ingest, customer):
    # given
    ingest(
        {"account_id": "acc-1", "feature_id": "export", "quantity": 2, "properties": {"format": "csv"}},
        {"account_id": "acc-1", "feature_id": "import", "quantity": 1},
    )
    # when
    page = admin_client.get(
        "/alerts/preview/",
        {
            "features": ["export"],
            "template_title": "$event.name by $account.name",
            "template_body": "<b>$event.format</b> $event.missing",
        },
    )
    bad = admin_client.get("/alerts/preview/", {"template_title": "$account.colour"})
    # then
    html = page.content.decode()
    assert '<strong id="preview-title">export by Initech</strong>' in html
    assert '<span id="preview-body">&lt;b&gt;csv&lt;/b&gt; </span>' in html
    assert "template.title: $account.colour is not a placeholder" in bad.content.decode()


def test_the_preview_picks_the_latest_event_the_form_would_alert_on(workspace, admin_client, ingest, customer):
    # given a big csv export, then a small csv export and a big pdf export (the latest)
    ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 9, "properties": {"format": "csv"}})
    ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 1, "properties": {"format": "csv"}})
    ingest({"account_id": "acc-1", "feature_id": "export", "quantity": 8, "properties": {"format": "pdf"}})
    form = dashboard_form(
        trigger_type="event",
        features=["export"],
        min_quantity="5",
        template_title="$event.format × $event.quantity",
        template_body="",
    ) | {
        "cond-TOTAL_FORMS": "1",
        "cond-0-field": "event.properties.",
        "cond-0-name": "format",
        "cond-0-op": "eq",
        "cond-0-value": "csv",
    }
    # when the whole form is sent to the preview (as its button does), with the filter and without it
    filtered = admin_client.get("/alerts/preview/", form).content.decode()
    unfiltered = admin_client.get("/alerts/preview/", form | {"cond-TOTAL_FORMS": "0"}).content.decode()
    half_done = admin_client.get("/alerts/preview/", form | {"min_quantity": "lots"}).content.decode()
    # then the preview uses the latest event that passes the trigger and the filter
    assert '<strong id="preview-title">csv × 9</strong>' in filtered and "preview-note" not in filtered
    assert '<strong id="preview-title">pdf × 8</strong>' in unfiltered
    # and while a setting is not valid yet, the preview takes the chosen features alone, and says why
    assert '<strong id="preview-title">pdf × 8</strong>' in half_done
    assert "Not applied yet: trigger.min_quantity must be an integer between 1 and 1000000000." in half_done


def test_the_form_switches_fields_by_trigger_with_a_static_script(workspace, admin_client):
    # when
    html = admin_client.get("/alerts/new/").content.decode()
    # then: settings carry the trigger types that read them, and the script is a file (no inline script for CSP)
    assert 'name="days"' in html and 'data-triggers="dormant usage_drop"' in html
    assert 'data-trigger-select="1"' in html
    assert re.search(r'<script src="/static/alerts/pipeline_form\.js[^"]*" defer></script>', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
