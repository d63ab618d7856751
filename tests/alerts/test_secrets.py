"""Channel secrets are never shown back in full: a PostgreSQL connection URL (user name and password alike), bot
tokens and webhook secrets, in the REST answers, the admin, the dashboard, the delivery log and the logs, all
through one rule (alerts.destinations.mask_url)."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.services import membership_set
from alerts.delivery import alert_delivery_attempt
from alerts.destinations import mask_url, mask_url_in
from alerts.models import AlertChannel, AlertDelivery
from tests.conftest import FROZEN_NOW

USER, PASSWORD = "dw_writer", "pw-Secret-77"
TOKEN = "123456789:AAHfakeTokenForTests_0123456789abcd"
HOOK_SECRET = "whsec-secrets-0123456789wxyz"
SECRETS = (USER, PASSWORD, TOKEN, HOOK_SECRET)


def _clean(text: str) -> list[str]:
    """The secrets that `text` shows (none, when all is well)."""
    return [s for s in SECRETS if s in text]


@pytest.fixture
def pg_url() -> str:
    """A connection URL to the machine's PostgreSQL as a role that does not exist: the server answers, and its
    refusal names the role."""
    db = settings.DATABASES["default"]
    return f"postgresql://{USER}:{PASSWORD}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def channels(api, pg_url) -> dict:
    """A PostgreSQL, a Telegram and a webhook channel, and a pipeline posting to the three (made over REST)."""
    bodies = {
        "pg": {"name": "Warehouse", "type": "postgres", "url": pg_url, "table": "uptake_alerts"},
        "tg": {"name": "Chat", "type": "telegram", "token": TOKEN, "chat_id": "-100123"},
        "hook": {"name": "Hook", "type": "webhook", "url": "https://hooks.example.com/u", "secret": HOOK_SECRET},
    }
    made = {key: api.post("/api/v1/channels", body, format="json") for key, body in bodies.items()}
    assert {key: r.status_code for key, r in made.items()} == {"pg": 201, "tg": 201, "hook": 201}
    ids = [r.json()["id"] for r in made.values()]
    pipeline = api.post(
        "/api/v1/pipelines", {"name": "Everything", "trigger": {"type": "event"}, "channels": ids}, format="json"
    )
    assert pipeline.status_code == 201
    return {"pipeline": pipeline.json()["id"], **{key: r.json() for key, r in made.items()}}


def _user_client(workspace, username: str, role: str, superuser: bool = False) -> Client:
    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.com", is_staff=True, is_superuser=superuser
    )
    membership_set(workspace=workspace, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_the_postgres_url_shows_neither_user_nor_password_in_rest_answers(api, channels):
    # when
    pipeline = channels["pipeline"]
    answers = {
        path: api.get(path)
        for path in (
            "/api/v1/channels",
            f"/api/v1/channels/{channels['pg']['id']}",
            "/api/v1/pipelines",
            f"/api/v1/pipelines/{pipeline}",
        )
    }
    # then every answer masks the credentials, and the stored URL is whole
    assert {path: r.status_code for path, r in answers.items()} == dict.fromkeys(answers, 200)
    assert {path: _clean(r.content.decode()) for path, r in answers.items()} == dict.fromkeys(answers, [])
    db = settings.DATABASES["default"]
    shown = f"postgresql://••••@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    assert channels["pg"]["url"] == shown
    assert [d["url"] for d in answers[f"/api/v1/pipelines/{pipeline}"].json()["destinations"]] == [
        shown,
        None,
        "https://hooks.example.com/u",
    ]
    assert (channels["tg"]["token"], channels["hook"]["secret"]) == ("••••abcd", "••••wxyz")
    assert AlertChannel.objects.get(name="Warehouse").url.startswith(f"postgresql://{USER}:{PASSWORD}@")


def test_admin_and_dashboard_pages_mask_every_secret(workspace, channels):
    # given an admin of the workspace, a superuser and a viewer
    editor = _user_client(workspace, "erin", "admin")
    superuser = _user_client(workspace, "root", "viewer", superuser=True)
    viewer = _user_client(workspace, "vic", "viewer")
    pg, pipeline = channels["pg"]["id"], channels["pipeline"]
    admin_pages = [
        "/admin/alerts/alertchannel/",
        f"/admin/alerts/alertchannel/{pg}/change/",
        f"/admin/alerts/alertpipeline/{pipeline}/change/",
    ]
    dashboard_pages = [
        "/alerts/",
        "/alerts/channels/",
        f"/alerts/channels/{pg}/",
        f"/alerts/{pipeline}/",
    ]
    edit_pages = [f"/alerts/channels/{pg}/edit/", f"/alerts/{pipeline}/edit/"]
    # when every page is opened by each of them (editing pages by the editor only)
    answers = {
        (who, path): client.get(path)
        for who, client in (("editor", editor), ("superuser", superuser), ("viewer", viewer))
        for path in admin_pages + dashboard_pages
    }
    answers |= {("editor", path): editor.get(path) for path in edit_pages}
    # then each page answers and shows no secret, the masked URL where it shows one
    assert {key: r.status_code for key, r in answers.items()} == dict.fromkeys(answers, 200)
    assert {key: _clean(r.content.decode()) for key, r in answers.items()} == dict.fromkeys(answers, [])
    for key in [("editor", f"/admin/alerts/alertchannel/{pg}/change/"), ("editor", f"/alerts/channels/{pg}/edit/")]:
        assert 'value="postgresql://••••@' in answers[key].content.decode(), key
    assert "postgresql://••••@" in answers[("viewer", f"/admin/alerts/alertchannel/{pg}/change/")].content.decode()


def test_the_admin_form_sent_back_as_shown_keeps_the_stored_url(workspace, channels, pg_url):
    # given the channel's admin page, as an editor sees it
    editor = _user_client(workspace, "erin", "admin")
    channel = AlertChannel.objects.get(name="Warehouse")
    shown = mask_url(pg_url, path=False)
    form = {
        "workspace": workspace.pk,
        "name": "Warehouse (renamed)",
        "type": "postgres",
        "url": shown,
        "table": "uptake_alerts",
        "rate_limit_per_minute": "600",
    }
    # when it is saved with the URL as shown
    saved = editor.post(f"/admin/alerts/alertchannel/{channel.pk}/change/", form)
    # then
    assert saved.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.url) == ("Warehouse (renamed)", pg_url)


def test_a_refused_connection_is_logged_without_user_or_password(api, workspace, channels, alert_settings, caplog):
    # given a delivery to the PostgreSQL channel, whose server refuses the role
    channel = AlertChannel.objects.get(name="Warehouse")
    delivery = AlertDelivery.objects.create(
        workspace=workspace, channel=channel, kind="test", payload={"title": "Hello"}, created_at=FROZEN_NOW
    )
    # when
    with caplog.at_level(logging.DEBUG):
        outcome = alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    # then the attempt is retried, and its error says what happened without the credentials
    delivery.refresh_from_db()
    assert outcome.status == "retry"
    assert delivery.last_error.startswith("attempt 1: connection failed: ")
    assert 'role "••••" does not exist' in delivery.last_error
    assert (_clean(delivery.last_error), _clean(caplog.text)) == ([], [])
    # and the delivery log shows it so, over REST, on the dashboard and in the admin
    editor = _user_client(workspace, "erin", "admin")
    superuser = _user_client(workspace, "root", "viewer", superuser=True)
    logs = [
        editor.get(f"/alerts/{channels['pipeline']}/"),
        editor.get(f"/alerts/channels/{channel.pk}/"),
        superuser.get(f"/admin/alerts/alertdelivery/{delivery.pk}/change/"),
        api.get(f"/api/v1/pipelines/{channels['pipeline']}/deliveries"),
    ]
    assert [r.status_code for r in logs] == [200] * 4
    assert 'role "••••" does not exist' in logs[1].content.decode().replace("&quot;", '"')
    assert [_clean(r.content.decode()) for r in logs] == [[]] * 4


def test_a_url_edited_around_its_masked_credentials_keeps_them(api, channels, pg_url):
    # given the URL as the API shows it
    channel_id = channels["pg"]["id"]
    shown = channels["pg"]["url"]
    # when the host and database change while the credentials stay masked
    moved = api.put(
        f"/api/v1/channels/{channel_id}",
        {"name": "Warehouse", "type": "postgres", "url": "postgresql://••••@db2.example.com/dw2", "table": "t"},
        format="json",
    )
    # then the stored credentials are kept for the new host
    assert moved.status_code == 200, moved.json()
    assert moved.json()["url"] == "postgresql://••••@db2.example.com/dw2"
    assert AlertChannel.objects.get(pk=channel_id).url == f"postgresql://{USER}:{PASSWORD}@db2.example.com/dw2"
    # when a masked part cannot be restored (a new user name before a masked password), then it is refused
    refused = api.put(
        f"/api/v1/channels/{channel_id}",
        {"name": "Warehouse", "type": "postgres", "url": "postgresql://other:••••@db3.example.com/dw", "table": "t"},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "masked_value"
    assert refused.json()["error"]["field"] == "channel.url"
    assert AlertChannel.objects.get(pk=channel_id).url == f"postgresql://{USER}:{PASSWORD}@db2.example.com/dw2"
    assert shown != moved.json()["url"]


def test_a_masked_value_is_no_secret_for_a_new_channel(api):
    # when a new channel is sent a value as the API shows masked ones
    response = api.post(
        "/api/v1/channels",
        {"name": "Hook", "type": "webhook", "url": "https://hooks.example.com/u", "secret": "••••wxyz"},
        format="json",
    )
    # then it is refused, naming the field, and nothing is stored
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "channel.secret"
    assert "still holds a masked part" in response.json()["error"]["message"]
    assert AlertChannel.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "path", "shown"),
    [
        ("postgresql://app:pw@db.example.com:5432/dw", False, "postgresql://••••@db.example.com:5432/dw"),
        ("postgresql://app@db.example.com/dw", False, "postgresql://••••@db.example.com/dw"),
        ("postgresql://db.example.com/dw", False, "postgresql://db.example.com/dw"),
        ("https://u:p@discord.com/api/webhooks/1/tok-XYZW", True, "https://••••@discord.com/••••XYZW"),
        ("https://discord.com/api/webhooks/123/tok-XYZW", True, "https://discord.com/••••XYZW"),
        ("https://user:pw@example.com", True, "https://••••@example.com"),
        ("https://hooks.example.com/u?a=1", False, "https://hooks.example.com/u?a=1"),
    ],
)
def test_mask_url_hides_the_whole_user_part(url, path, shown):
    assert mask_url(url, path=path) == shown


def test_mask_url_in_masks_the_url_and_its_credentials_in_a_message():
    url = "postgresql://app_user:s3cr%40t@db.example.com/dw"
    message = f'connection to {url} failed: password authentication failed for user "app_user" (s3cr@t)'
    assert mask_url_in(message, url) == (
        'connection to postgresql://••••@db.example.com/dw failed: password authentication failed for user "••••" '
        "(••••)"
    )


def test_a_telegram_send_logs_no_token_even_at_debug_level(workspace, bot_api, alert_settings, caplog):
    # given a Telegram channel and a message to it
    channel = AlertChannel.objects.create(
        workspace=workspace, name="TG", type="telegram", token=TOKEN, chat_id="4242", target_key="tg"
    )
    delivery = AlertDelivery.objects.create(
        workspace=workspace, channel=channel, kind="test", payload={"title": "Hello"}, created_at=FROZEN_NOW
    )
    # when it is sent with every logger at DEBUG
    with caplog.at_level(logging.DEBUG):
        outcome = alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    # then the Bot API got it at the token's path, and no log line shows the token
    assert outcome.status == "sent" and bot_api.requests[0].path == f"/bot{TOKEN}/sendMessage"
    assert _clean(caplog.text) == []


def test_an_error_echoing_a_webhook_url_token_is_logged_masked(workspace, receiver, alert_settings):
    # given a Slack channel (its URL's path is its token) whose server echoes the path in a 500
    path = "/services/T000/B000/hook-Token-XYZW"
    receiver.respond((500, {}, f"no hook at {receiver.url(path)} ({path})"))
    channel = AlertChannel.objects.create(
        workspace=workspace, name="Slack", type="slack", url=receiver.url(path), target_key="s"
    )
    delivery = AlertDelivery.objects.create(
        workspace=workspace, channel=channel, kind="test", payload={"title": "Hello"}, created_at=FROZEN_NOW
    )
    # when
    outcome = alert_delivery_attempt(delivery_id=delivery.pk, now=FROZEN_NOW)
    # then the attempt is retried, and the log keeps the answer with the token masked
    delivery.refresh_from_db()
    assert outcome.status == "retry"
    assert delivery.last_error == f"attempt 1: HTTP 500: no hook at http://127.0.0.1:{receiver.port}/••••XYZW (••••)"
