"""Request plumbing against a real gunicorn (config.http): chunked bodies are read with the size limit, and
percent-encoded ids in paths reach the view exactly (`org%2F1` is `org/1`, `a%2Fusers%2Fb` is one account)."""

import io
import json
from urllib.parse import quote

import pytest
from django.conf import settings

from accounts.models import Account, EndUser
from usage.models import UsageEvent

from ..live_gunicorn import raw_request

pytestmark = pytest.mark.django_db(transaction=True)


def _headers(raw_key: str) -> dict:
    return {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json", "Host": "127.0.0.1"}


def test_a_chunked_events_body_is_read_whole(gunicorn_port, workspace, make_key):
    # given a batch of two events sent chunked, without Content-Length
    _, raw = make_key(workspace, "ingest")
    body = json.dumps({"events": [{"account_id": "org/1", "feature_id": "f"}, {"account_id": "b", "feature_id": "f"}]})
    chunks = [body[:10].encode(), body[10:].encode()]
    # when it is sent to gunicorn
    status, _, answer = raw_request(gunicorn_port, "POST", "/api/v1/events", headers=_headers(raw), body=chunks)
    # then both events are stored, as with a Content-Length
    assert status == 200, answer
    assert json.loads(answer) == {"accepted": 2, "duplicates": 0, "ignored": 0, "rejected": [], "warnings": []}
    assert sorted(UsageEvent.objects.values_list("account__external_id", flat=True)) == ["b", "org/1"]


def test_a_chunked_body_over_the_limit_is_refused_and_nothing_is_stored(gunicorn_port, workspace, make_key):
    # given a chunked body one byte over the request limit
    _, raw = make_key(workspace, "ingest")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    chunk = b" " * 65536
    chunks = [chunk] * (limit // len(chunk)) + [b" " * (limit % len(chunk) + 1)]
    # when
    status, headers, answer = raw_request(gunicorn_port, "POST", "/api/v1/events", headers=_headers(raw), body=chunks)
    # then 413 names the limit, and nothing is stored
    assert status == 413
    assert json.loads(answer)["error"] == {
        "code": "body_too_large",
        "message": f"The body is over the limit of {limit} bytes per request.",
    }
    assert UsageEvent.objects.count() == 0


def test_a_chunked_body_is_refused_with_411_when_the_server_does_not_say_where_it_ends(db, workspace):
    # given a chunked request as runserver (wsgiref) hands it over: no Content-Length, input not terminated
    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/events",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b'a\r\n{"x": 1}\r\n0\r\n\r\n'),
    }
    started = []
    # when
    body = b"".join(application(environ, lambda status, headers: started.append((status, dict(headers)))))
    # then 411 says what to send instead, and nothing reached the view
    assert started[0][0] == "411 Length Required"
    assert json.loads(body)["error"] == {
        "code": "length_required",
        "message": "This server needs a Content-Length header; send the body with one instead of chunked.",
    }
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("account_id", "user_id"),
    [
        ("org/1", "jane@example.com"),
        ("a/users/b", "c/users/d"),
        ("x/entitlements", "50%off"),
        ("Zürich 株式会社", "a b"),
    ],
)
def test_percent_encoded_ids_reach_the_account_and_user_as_sent(
    gunicorn_port, workspace, make_key, account_id, user_id
):
    # given ids with slashes, route words, percent signs and non-ASCII text, each sent as one encoded segment
    _, raw = make_key(workspace, "ingest,read")
    account_path = f"/api/v1/accounts/{quote(account_id, safe='')}"
    user_path = f"{account_path}/users/{quote(user_id, safe='')}"
    # when the account and its user are upserted and read back through gunicorn
    put_account = raw_request(gunicorn_port, "PUT", account_path, headers=_headers(raw), body=b'{"name": "N"}')
    put_user = raw_request(gunicorn_port, "PUT", user_path, headers=_headers(raw), body=b'{"email": "j@example.com"}')
    entitlements = raw_request(gunicorn_port, "GET", f"{account_path}/entitlements", headers=_headers(raw))
    # then each reached exactly the ids sent
    assert put_account[0] == 201 and json.loads(put_account[2])["id"] == account_id
    assert put_user[0] == 201 and json.loads(put_user[2])["id"] == user_id
    assert json.loads(put_user[2])["account_id"] == account_id
    assert entitlements[0] == 200 and json.loads(entitlements[2]) == {"account_id": account_id, "entitlements": []}
    assert list(Account.objects.values_list("external_id", "name")) == [(account_id, "N")]
    assert list(EndUser.objects.values_list("account__external_id", "external_id", "email")) == [
        (account_id, user_id, "j@example.com")
    ]


def test_unencoded_slashes_are_structure(gunicorn_port, workspace, make_key):
    # given a path whose slashes are not encoded
    _, raw = make_key(workspace, "ingest")
    # when
    status, _, answer = raw_request(
        gunicorn_port, "PUT", "/api/v1/accounts/a/users/b", headers=_headers(raw), body=b'{"email": "b@example.com"}'
    )
    # then it is the end user b of the account a
    assert status == 201, answer
    assert list(EndUser.objects.values_list("account__external_id", "external_id")) == [("a", "b")]


def test_a_path_whose_bytes_are_not_utf8_is_400_and_a_literal_percent_is_an_id(gunicorn_port, workspace, make_key):
    # given
    _, raw = make_key(workspace, "ingest")
    # when `%ff` (not UTF-8) and `%25FF` (the text `%FF`) are upserted: both were the account `%FF`
    broken = raw_request(gunicorn_port, "PUT", "/api/v1/accounts/%ff", headers=_headers(raw), body=b'{"name": "B"}')
    literal = raw_request(gunicorn_port, "PUT", "/api/v1/accounts/%25FF", headers=_headers(raw), body=b'{"name": "L"}')
    # then
    assert broken[0] == 400 and json.loads(broken[2])["error"]["code"] == "invalid_path"
    assert literal[0] == 201
    assert list(Account.objects.values_list("external_id", "name")) == [("%FF", "L")]
