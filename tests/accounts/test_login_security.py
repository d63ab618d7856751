"""Login throttling through the real admin login form (django-axes: a user + address pair locked after 10 failures,
explained on the page, unlocked by a command), and the browser-facing headers: the Content-Security-Policy and
`Cache-Control: private, no-store` on dashboard pages and CSV exports."""

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from accounts.models import Workspace
from accounts.services import membership_set

LOGIN = "/admin/login/?next=/"
RIGHT = {"username": "carol", "password": "pw-carol-123", "next": "/"}
WRONG = {**RIGHT, "password": "wrong-password"}


def _client(address: str = "203.0.113.7") -> Client:
    return Client(REMOTE_ADDR=address)


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_ten_failures_lock_the_user_from_that_address_and_the_page_says_why(staff_user):
    # given
    client = _client()
    # when: ten wrong passwords in a row
    answers = [client.post(LOGIN, WRONG) for _ in range(10)]
    # then: nine ordinary refusals, then the lockout page (429, explained, with Retry-After)
    assert [a.status_code for a in answers] == [200] * 9 + [429]
    html = answers[-1].content.decode()
    assert "Sign-in for “carol” from your address is locked for 15 minutes" in html
    assert "after 10 failed attempts in a row" in html
    assert "manage.py axes_reset_username carol" in html
    assert answers[-1]["Retry-After"] == "900"
    # and the right password is refused too while locked, without logging in
    locked = client.post(LOGIN, RIGHT)
    assert locked.status_code == 429 and not _logged_in(client)
    # but the same user from another address, and another user from this one, are not locked
    elsewhere = _client("198.51.100.9")
    assert elsewhere.post(LOGIN, RIGHT).status_code == 302 and _logged_in(elsewhere)


def test_the_unlock_command_lifts_the_lockout(staff_user):
    # given: carol locked out from one address
    client = _client()
    for _ in range(10):
        client.post(LOGIN, WRONG)
    assert client.post(LOGIN, RIGHT).status_code == 429
    # when
    call_command("axes_reset_username", "carol")
    # then
    answer = client.post(LOGIN, RIGHT)
    assert (answer.status_code, answer["Location"]) == (302, "/")
    assert _logged_in(client)


def test_a_success_before_the_limit_resets_the_count(staff_user):
    # given: nine failures, then a success
    client = _client()
    for _ in range(9):
        client.post(LOGIN, WRONG)
    assert client.post(LOGIN, RIGHT).status_code == 302
    # when: nine more failures from a fresh session
    again = _client()
    answers = [again.post(LOGIN, WRONG) for _ in range(9)]
    # then: none of them locks
    assert [a.status_code for a in answers] == [200] * 9


def test_a_username_past_any_column_is_an_ordinary_refusal_and_still_counts(staff_user):
    # given a username longer than the 255 characters axes stores (Django's form does not limit it: a 500)
    client = _client()
    # when
    answers = [client.post(LOGIN, {**WRONG, "username": "x" * 1000}) for _ in range(10)]
    # then nine refusals and the lockout, as for any username; counted under its first 150 characters
    assert [a.status_code for a in answers] == [200] * 9 + [429]
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["x" * 150]


def test_the_login_page_mentions_the_throttle(db):
    html = _client().get(LOGIN).content.decode()
    assert "Repeated failed logins lock sign-in for that user from your address for a while." in html


# ---------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------


@pytest.fixture
def member(workspace, staff_user) -> Client:
    membership_set(workspace=workspace, user=staff_user, role="admin")
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("path", ["/", "/alerts/", "/lists/dormant/", "/lists/dormant/export.csv", "/alerts/new/"])
def test_dashboard_pages_and_exports_are_private_and_never_stored(member, path):
    response = member.get(path)
    assert response.status_code == 200
    assert set(response["Cache-Control"].replace(" ", "").split(",")) == {"private", "no-store"}


def test_every_page_carries_the_content_security_policy(member):
    for path in ["/", "/alerts/", "/admin/", "/api/docs/"]:
        policy = member.get(path)["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'", path
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
        assert "unsafe-eval" not in policy
    # only the Redoc page, which shows the schema alone, allows its inline start-up script
    assert "'unsafe-inline'" in member.get("/api/redoc/")["Content-Security-Policy"].split("script-src")[1]


def test_no_workspace_page_is_private_too(staff_user):
    client = Client()
    client.force_login(staff_user)
    assert Workspace.objects.count() == 0
    response = client.get("/")
    assert response.status_code == 403 and "no-store" in response["Cache-Control"]
