"""PostgreSQL unreachable: dashboard and admin pages answer 503 with Retry-After and our static page (never
Django's 500 page, never cached); the API keeps its JSON 503. Real outages (tests/conftest.py
`database_unreachable()`), not mocks."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, RequestFactory

from accounts.models import Account
from config.outage import server_error
from tests.conftest import database_unreachable

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/", "/accounts/acme-corp/", "/admin/"]


@pytest.fixture
def logged_in(workspace, staff_of) -> Client:
    Account.objects.create(workspace=workspace, external_id="acme-corp", name="Acme Corp")
    client = Client()  # raises whatever a view raises that no handler answered
    client.force_login(staff_of(workspace, "admin"))
    return client


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]*)"', html)


@pytest.mark.parametrize("path", PAGES)
def test_a_page_answers_503_with_retry_after_and_a_static_page_when_the_database_is_unreachable(
    logged_in, settings, path
):
    # given: the page works while the database is there
    assert logged_in.get(path).status_code == 200
    # when
    with database_unreachable():
        response = logged_in.get(path)
    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.UPTAKE_RETRY_AFTER_SECONDS) == "5"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "Content-Security-Policy" in response
    html = response.content.decode()
    assert '<div class="empty-state" id="database-unavailable">' in html
    assert "Please try again in 5 seconds" in html
    assert _assets(html) == [
        "/static/admin/css/base.css",
        "/static/admin/css/responsive.css",
        "/static/dashboard/dashboard.css",
        "",  # the reload link
    ]
    # and the same page works again once the database is back
    assert logged_in.get(path).status_code == 200


def test_the_api_keeps_its_json_503(api, settings):
    # when
    with database_unreachable():
        response = api.get("/api/v1/products")
    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.UPTAKE_RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "database_unavailable"


def test_an_outage_raised_outside_a_view_gets_the_503_page_and_other_errors_djangos_500():
    # given
    request = RequestFactory().get("/")
    # when: handler500 answers while the error is being handled, as Django calls it
    with database_unreachable():
        try:
            connection.ensure_connection()
        except Exception:
            outage = server_error(request)
    try:
        raise ValueError("a bug")
    except ValueError:
        bug = server_error(request)
    # then
    assert (outage.status_code, outage["Retry-After"], outage["Cache-Control"]) == (503, "5", "no-store")
    assert b'id="database-unavailable"' in outage.content
    assert bug.status_code == 500
    assert b"database-unavailable" not in bug.content


def test_a_login_during_an_outage_gets_the_503_page_and_locks_nobody_out(db):
    # given
    get_user_model().objects.create_user("carol", password="pw-carol-123", is_staff=True)
    client = Client()
    # when
    with database_unreachable():
        response = client.post("/admin/login/", {"username": "carol", "password": "pw-carol-123"})
    # then
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert b'id="database-unavailable"' in response.content
    assert client.post("/admin/login/", {"username": "carol", "password": "pw-carol-123"}).status_code == 302
