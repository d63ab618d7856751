"""Alert destinations cannot reach inside: refused at save time (REST, dashboard form, admin) and again at every
send (a failed, non-retried delivery that names the refusal), connections go to the address that was checked,
redirects are not followed. The address policy is on here (tests/conftest.py lifts it for the loopback
receivers)."""

import socket

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from alerts.delivery import deliveries_create
from alerts.models import AlertChannel, AlertDelivery, AlertPipeline
from alerts.services import pipeline_create
from core.outbound import OutboundRefused, address_refusal, outbound_target
from tests.alerts.conftest import dashboard_form
from tests.conftest import FROZEN_NOW

SECRET = "whsec-outbound-0123456789"


@pytest.fixture
def policy_on(settings):
    settings.UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS = False
    settings.UPTAKE_ALERTS_ALLOWED_HOSTS = []
    return settings


@pytest.fixture
def resolve_as(monkeypatch):
    """Point host names at chosen addresses through the system resolver (socket.getaddrinfo); records the names
    asked for. A list of addresses is handed out one per lookup (the last one repeats), like a rebinding DNS; no
    address means the name does not resolve."""
    real = socket.getaddrinfo
    names: dict[str, list[str]] = {}
    asked: list[str] = []

    def fake(host, port, *args, **kwargs):
        if host in names:
            asked.append(host)
            answers = names[host]
            if not answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            address = answers.pop(0) if len(answers) > 1 else answers[0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)

    def point(host: str, *addresses: str) -> list[str]:
        names[host] = list(addresses)
        return asked

    return point


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.9.9.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fc00::1", "a unique-local address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("::ffff:127.0.0.1", "an IPv6 form of a loopback address"),
        ("::ffff:169.254.169.254", "an IPv6 form of a cloud metadata address"),
        ("64:ff9b::a00:1", "an IPv6 form of a private address"),
        ("2002:7f00:1::1", "an IPv6 form of a loopback address"),
        ("240.0.0.1", "a reserved address"),
        ("93.184.215.14", None),
        ("2606:4700::6810:84e5", None),
    ],
)
def test_address_policy(address, reason):
    assert address_refusal(address) == reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:5432/", "127.0.0.1 is a loopback address"),
        ("http://localhost:6379/", "localhost (127.0.0.1) is a loopback address"),
        ("http://[::1]:8080/hook", "::1 is a loopback address"),
        ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
        ("http://[::ffff:7f00:1]/", "::ffff:7f00:1 (::ffff:127.0.0.1) is an IPv6 form of a loopback address"),
        ("http://2130706433/", "2130706433 (127.0.0.1) is a loopback address"),
        ("http://user:pw@hooks.example.com/x", "the URL must not contain credentials (user:password@)"),
        ("ftp://hooks.example.com/x", "only http and https URLs are allowed, not ftp"),
    ],
)
def test_outbound_target_refuses_inside_addresses(policy_on, url, reason):
    with pytest.raises(OutboundRefused) as refused:
        outbound_target(url)
    assert refused.value.reason.startswith(reason)


def test_a_name_resolving_to_loopback_is_refused(policy_on, resolve_as):
    # given: a public-looking name that resolves to 127.0.0.1 (and one with a public and a private address)
    resolve_as("hooks.example.com", "127.0.0.1")
    resolve_as("mixed.example.com", "10.0.0.1")
    # then
    with pytest.raises(OutboundRefused) as refused:
        outbound_target("https://hooks.example.com/uptake")
    assert refused.value.reason.startswith("hooks.example.com (127.0.0.1) is a loopback address; alert destinations")
    with pytest.raises(OutboundRefused):
        outbound_target("https://mixed.example.com/uptake")


def test_settings_lift_the_address_checks_but_not_scheme_or_credentials(policy_on, resolve_as):
    resolve_as("receiver.internal.example", "10.0.0.7")
    # allow-list: that name only (and its subdomains with a leading dot)
    policy_on.UPTAKE_ALERTS_ALLOWED_HOSTS = [".internal.example"]
    assert outbound_target("http://receiver.internal.example:8080/h?x=1").address == "10.0.0.7"
    with pytest.raises(OutboundRefused):
        outbound_target("http://10.0.0.7/")
    # every private network
    policy_on.UPTAKE_ALERTS_ALLOWED_HOSTS = []
    policy_on.UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS = True
    target = outbound_target("http://10.0.0.7:81/a/b?c=d")
    assert (target.address, target.port, target.path, target.host_header) == ("10.0.0.7", 81, "/a/b?c=d", "10.0.0.7:81")
    for url in ("http://u:p@10.0.0.7/", "ftp://10.0.0.7/", "file:///etc/passwd", "gopher://10.0.0.7/"):
        with pytest.raises(OutboundRefused):
            outbound_target(url)


# ---------------------------------------------------------------------------
# Save time: REST, dashboard form, admin
# ---------------------------------------------------------------------------


def _body(url: str) -> dict:
    return {
        "name": "Inside",
        "trigger": {"type": "event"},
        "destinations": [{"type": "webhook", "url": url, "secret": SECRET}],
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:5432/", "destinations[0].url is refused: 127.0.0.1 is a loopback address; alert"),
        ("http://localhost:6379/", "destinations[0].url is refused: localhost (127.0.0.1) is a loopback address"),
        ("http://[::1]:9000/", "destinations[0].url is refused: ::1 is a loopback address"),
        ("http://10.20.30.40/hook", "destinations[0].url is refused: 10.20.30.40 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "is refused: 169.254.169.254 is a cloud metadata address"),
        ("http://user:pw@hooks.example.com/x", "is refused: the URL must not contain credentials (user:password@)."),
        ("ftp://hooks.example.com/x", "destinations[0].url must be an http(s) URL; got 'ftp://hooks.example.com/x'."),
    ],
)
def test_rest_refuses_inside_destinations_and_stores_nothing(policy_on, api, url, message):
    # when
    response = api.post("/api/v1/pipelines", _body(url), format="json")
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "destinations[0].url"
    assert message in error["message"]
    assert AlertPipeline.objects.count() == 0 and AlertChannel.objects.count() == 0


def test_rest_refuses_a_name_resolving_to_loopback(policy_on, api, resolve_as):
    resolve_as("hooks.example.com", "127.0.0.1")
    response = api.post("/api/v1/pipelines", _body("https://hooks.example.com/uptake"), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "destination_refused"
    assert AlertPipeline.objects.count() == 0


def test_dashboard_form_refuses_inside_destinations(policy_on, workspace, staff_of):
    # given
    client = Client()
    client.force_login(staff_of(workspace, "admin"))
    data = dashboard_form(
        name="Inside", destinations=[{"type": "slack", "url": "http://169.254.169.254/latest/meta-data/"}]
    )
    # when
    response = client.post("/alerts/new/", data)
    # then
    assert response.status_code == 400
    [error] = response.context["formset"].forms[0].errors["url"]
    assert error.startswith("destinations[0].url is refused: 169.254.169.254 is a cloud metadata address")
    assert AlertPipeline.objects.count() == 0


def test_admin_refuses_inside_channels(policy_on, workspace, staff_of):
    # given an admin of the workspace in the channel admin
    client = Client()
    client.force_login(staff_of(workspace, "admin"))
    data = {
        "workspace": workspace.pk,
        "name": "Inside",
        "type": "webhook",
        "url": "http://127.0.0.1:5432/",
        "secret": SECRET,
        "rate_limit_per_minute": "120",
    }
    # when
    response = client.post("/admin/alerts/alertchannel/add/", data)
    # then the refusal is a form error on the URL, and nothing is stored
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["url"]
    assert error.startswith("channel.url is refused: 127.0.0.1 is a loopback address")
    assert AlertPipeline.objects.count() == 0 and AlertChannel.objects.count() == 0


# ---------------------------------------------------------------------------
# Send time
# ---------------------------------------------------------------------------


def _webhook_pipeline(workspace, url: str) -> AlertPipeline:
    return pipeline_create(
        workspace=workspace,
        name="Hook",
        trigger={"type": "event"},
        destinations=[{"type": "webhook", "url": url, "secret": SECRET}],
    )


TOKEN = "123456789:AAHfakeTokenForTests_0123456789abcd"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("destination", "secret"),
    [
        ({"type": "webhook", "secret": SECRET}, SECRET),
        ({"type": "telegram", "token": TOKEN, "chat_id": "-100123"}, TOKEN),
        ({"type": "postgres", "url": "postgresql://app:pw-Secret1@127.0.0.1:5432/dw", "table": "a"}, "pw-Secret1"),
    ],
)
def test_send_refuses_a_destination_saved_before_the_policy_and_does_not_retry(
    workspace, eager, receiver, settings, destination, secret
):
    # given: a destination on loopback (the receiver; for Telegram, the Bot API base) saved while private
    # networks were allowed, then the policy turned on
    settings.UPTAKE_TELEGRAM_API_BASE = receiver.url("")
    if destination["type"] == "webhook":
        destination = {**destination, "url": receiver.url()}
    pipeline = pipeline_create(workspace=workspace, name="P", trigger={"type": "event"}, destinations=[destination])
    settings.UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS = False
    # when: the test action queues a message (sent after commit)
    [delivery] = deliveries_create(
        pipeline=pipeline, payload={"event": "test"}, dedupe_key="", kind=AlertDelivery.Kind.TEST, now=FROZEN_NOW
    )
    # then: nothing reached the receiver; one attempt, failed, naming the refusal, no secret shown
    delivery.refresh_from_db()
    assert receiver.requests == []
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, None)
    assert delivery.last_error.startswith("attempt 1 (not retried): refused: 127.0.0.1 is a loopback address")
    assert secret not in delivery.last_error


@pytest.mark.django_db(transaction=True)
def test_redirects_are_not_followed(workspace, eager, receiver):
    # given: the receiver answers with a redirect to another loopback path
    pipeline = _webhook_pipeline(workspace, receiver.url("/hook"))
    receiver.respond((302, {"Location": receiver.url("/inside")}, "moved"))
    # when
    [delivery] = deliveries_create(pipeline=pipeline, payload={"event": "x"}, dedupe_key="", now=FROZEN_NOW)
    # then: one request, to /hook; failed, not retried
    delivery.refresh_from_db()
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, 302)
    assert delivery.last_error == "attempt 1 (not retried): HTTP 302: redirects are not followed"


@pytest.mark.django_db(transaction=True)
def test_connection_goes_to_the_checked_address(workspace, eager, receiver, policy_on, resolve_as):
    # given: an allow-listed name whose DNS answer changes after the first lookup (127.0.0.1, then 127.0.0.2,
    # where nothing listens): a client resolving again at connect time would miss the receiver
    policy_on.UPTAKE_ALERTS_ALLOWED_HOSTS = ["rebind.example.com"]
    pipeline = _webhook_pipeline(workspace, f"http://rebind.example.com:{receiver.port}/hook")
    asked = resolve_as("rebind.example.com", "127.0.0.1", "127.0.0.2")
    # when
    [delivery] = deliveries_create(pipeline=pipeline, payload={"event": "x"}, dedupe_key="", now=FROZEN_NOW)
    # then: one lookup, the connection to its answer, with the URL's host in the Host header
    delivery.refresh_from_db()
    assert asked == ["rebind.example.com"]
    [request] = receiver.requests
    assert request.headers["Host"] == f"rebind.example.com:{receiver.port}"
    assert delivery.status == "sent"


def test_admin_pipeline_pages_follow_membership_roles(workspace, staff_of):
    # given: a viewer (no Django model permissions at all) and a pipeline of the workspace
    pipeline = _webhook_pipeline(workspace, "https://hooks.example.com/uptake")
    client = Client()
    client.force_login(get_user_model().objects.get(pk=staff_of(workspace, "viewer").pk))
    # when / then: the viewer reads but cannot change or delete
    assert client.get("/admin/alerts/alertpipeline/").status_code == 200
    page = client.get(f"/admin/alerts/alertpipeline/{pipeline.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/alerts/alertpipeline/{pipeline.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AlertPipeline.objects.filter(pk=pipeline.pk).exists()
    # and an admin of the workspace edits
    admin = Client()
    admin.force_login(get_user_model().objects.get(pk=staff_of(workspace, "admin").pk))
    assert 'name="_save"' in admin.get(f"/admin/alerts/alertpipeline/{pipeline.pk}/change/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_host_that_does_not_resolve_at_send_time_is_retried(workspace, eager, alert_settings, resolve_as):
    # given: a name that does not resolve
    resolve_as("hooks.uptake.invalid")
    alert_settings.UPTAKE_ALERT_MAX_ATTEMPTS = 2
    pipeline = _webhook_pipeline(workspace, "https://hooks.uptake.invalid/x")
    # when
    [delivery] = deliveries_create(pipeline=pipeline, payload={"event": "x"}, dedupe_key="", now=FROZEN_NOW)
    # then: a network error, retried, then given up
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert (
        delivery.last_error == "attempt 2 (gave up): connection failed: the host hooks.uptake.invalid does not resolve"
    )


# ---------------------------------------------------------------------------
# Telegram and PostgreSQL channels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://app:pw-Secret1@127.0.0.1:5432/dw",
            "channel.url is refused: 127.0.0.1 is a loopback address; alert destinations must be public",
        ),
        (
            "postgresql://app:pw-Secret1@localhost/dw",
            "channel.url is refused: localhost (127.0.0.1) is a loopback address; alert destinations must be public",
        ),
        ("postgresql://app:pw-Secret1@10.1.2.3:6432/dw", "channel.url is refused: 10.1.2.3 is a private address"),
    ],
)
def test_rest_refuses_a_postgres_channel_on_an_inside_host(policy_on, api, url, message):
    # when
    response = api.post(
        "/api/v1/channels", {"name": "DW", "type": "postgres", "url": url, "table": "alerts"}, format="json"
    )
    # then: 400 naming the refusal, the password never echoed, nothing stored
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("destination_refused", "channel.url")
    assert error["message"].startswith(message)
    assert "pw-Secret1" not in response.content.decode()
    assert AlertChannel.objects.count() == 0


def test_a_postgres_connection_goes_to_the_checked_address(policy_on, resolve_as):
    # given: an allow-listed name resolving to 127.0.0.1, then to 127.0.0.2
    from alerts.postgres_sink import postgres_connect_kwargs

    policy_on.UPTAKE_ALERTS_ALLOWED_HOSTS = ["dw.example.com"]
    asked = resolve_as("dw.example.com", "127.0.0.1", "127.0.0.2")
    # when
    kwargs = postgres_connect_kwargs("postgresql://app:pw@dw.example.com:6543/dw")
    # then: one lookup, and hostaddr is its answer
    assert (asked, kwargs["hostaddr"]) == (["dw.example.com"], "127.0.0.1")
