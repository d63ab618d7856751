"""The official Segment (`segment-analytics-python`) and RudderStack (`rudder-sdk-python`, gzip on by default)
clients, unchanged, pointed at a live Uptake server: what they send lands in the database, a replay stores
nothing new, an oversize message is refused as Segment refuses it, and a database outage makes them retry
without losing anything."""

import logging
import threading

import pytest
from django.db import connection, connections
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient
from segment.analytics.request import APIError
from segment.analytics.request import post as segment_post

from accounts.models import Account, EndUser
from tests.conftest import database_unreachable
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def host(live_server) -> str:
    # The live server answers each request in a thread of its own: with persistent connections each would
    # leave its session open past the test (and the test database could not be dropped).
    settings_dict = connections["default"].settings_dict
    max_age = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = 0
    yield live_server.url + "/api/segment"
    settings_dict["CONN_MAX_AGE"] = max_age


@pytest.fixture
def key(workspace, make_key) -> str:
    return make_key(workspace, "ingest")[1]


def _send(client, *, user: str, group: str, message_id: str) -> None:
    client.group(user_id=user, group_id=group, traits={"name": f"{group} Inc.", "plan": "pro", "seats": 12})
    client.identify(user_id=user, traits={"email": f"{user}@example.com", "role": "admin"})
    client.track(
        user_id=user,
        event="Project Created",
        properties={"quantity": 2, "template": "kanban"},
        context={"groupId": group},
        message_id=message_id,
    )
    client.flush()


def _assert_stored(*, user: str, group: str, message_id: str) -> None:
    account = Account.objects.get(external_id=group)
    assert (account.name, account.plan, account.attributes) == (f"{group} Inc.", "pro", {"seats": 12})
    end_user = EndUser.objects.get(account=account, external_id=user)
    assert (end_user.email, end_user.attributes) == (f"{user}@example.com", {"role": "admin"})
    event = UsageEvent.objects.select_related("feature").get(event_id=message_id)
    assert (event.account_id, event.end_user_id, event.quantity, event.properties) == (
        account.pk,
        end_user.pk,
        2,
        {"template": "kanban"},
    )
    assert (event.feature.key, event.feature.name) == ("project-created", "Project Created")


def test_the_segment_client_sends_group_identify_and_track(host, key):
    # given
    errors: list = []
    client = SegmentClient(key, host=host, on_error=lambda error, batch: errors.append(error))
    # when
    _send(client, user="u_1", group="acct_1", message_id="seg-1")
    # then
    assert errors == []
    _assert_stored(user="u_1", group="acct_1", message_id="seg-1")


def test_the_rudderstack_client_sends_gzipped_batches(host, key):
    # given
    errors: list = []
    client = RudderClient(key, host=host, on_error=lambda error, batch: errors.append(error))
    assert client.gzip is True
    # when
    _send(client, user="u_2", group="acct_2", message_id="rudder-1")
    # then
    assert errors == []
    _assert_stored(user="u_2", group="acct_2", message_id="rudder-1")


def test_a_replay_by_message_id_stores_nothing_new(host, key):
    # given
    client = SegmentClient(key, host=host)
    _send(client, user="u_1", group="acct_1", message_id="seg-1")
    counts = (UsageEvent.objects.count(), Account.objects.count(), EndUser.objects.count())
    # when
    _send(client, user="u_1", group="acct_1", message_id="seg-1")
    # then
    assert counts == (1, 1, 1)
    assert (UsageEvent.objects.count(), Account.objects.count(), EndUser.objects.count()) == counts


def test_a_message_over_32_kb_is_refused_as_segment_refuses_it(host, key):
    # given
    big = {"type": "track", "userId": "u", "event": "Big", "properties": {"blob": "x" * (33 * 1024)}}
    # when: the client refuses it before sending, and the server refuses it when sent anyway
    with pytest.raises(RuntimeError, match="Message exceeds %skb limit"):
        SegmentClient(key, host=host).track(user_id="u", event="Big", properties=big["properties"])
    with pytest.raises(APIError) as refused:
        segment_post(key, host, batch=[{**big, "messageId": "big-1", "context": {"groupId": "a"}}])
    # then: a 400, which the clients do not retry
    assert (refused.value.status, refused.value.code) == (400, "message_too_large")
    assert refused.value.message.startswith("Message at index 0 is ")
    assert UsageEvent.objects.count() == 0


class _Responses(logging.Handler):
    """Counts the 503 answers Django logs (django.request logs every 5xx response)."""

    def __init__(self) -> None:
        super().__init__()
        self.unavailable = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "status_code", None) == 503:
            self.unavailable.set()


@pytest.mark.parametrize("client_class", [SegmentClient, RudderClient], ids=["segment", "rudderstack"])
def test_a_stopped_database_makes_the_clients_retry_and_nothing_is_lost(host, key, settings, client_class):
    # given: the server's connections are cut and new ones go nowhere; the 503 says retry after 1 s
    settings.UPTAKE_RETRY_AFTER_SECONDS = 1
    settings.UPTAKE_API_KEY_CACHE_SECONDS = 0
    errors: list = []
    client = client_class(key, host=host, on_error=lambda error, batch: errors.append(error))
    responses = _Responses()
    logger = logging.getLogger("django.request")
    logger.addHandler(responses)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with database_unreachable():
            client.group(user_id="u_3", group_id="acct_3", traits={"name": "acct_3 Inc."})
            client.track(user_id="u_3", event="Report Exported", context={"groupId": "acct_3"}, message_id="out-1")
            # when: the server has answered 503 at least once, the database comes back
            assert responses.unavailable.wait(30)
        client.flush()
    finally:
        logger.removeHandler(responses)
    # then: the retry stored everything, once
    assert errors == []
    event = UsageEvent.objects.select_related("account", "feature").get()
    assert (event.event_id, event.account.external_id, event.account.name, event.feature.key) == (
        "out-1",
        "acct_3",
        "acct_3 Inc.",
        "report-exported",
    )
