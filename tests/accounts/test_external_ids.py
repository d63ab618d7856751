"""Account and end-user external ids as customers have them (`org/1`, `acct:42`, `a b`, `jane@example.com`,
any script), end to end: ingestion, the REST upserts with percent-encoded path segments, the entitlement
check, the account's entitlements and analytics, the dashboard's links and pages, and the CSV export."""

import csv
import io
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone

from accounts.ids import external_id_reverse
from accounts.models import Account, EndUser
from analytics.services import rollup_pending

# Ids holding a route's own words after a slash ("x/entitlements", "a/users/b") are exact only where the server
# passes the raw path on (tests/config/test_http.py runs them through gunicorn).
IDS = ["org/1", "acct:42", "a b", "jane@example.com", "Zürich 株式会社", "50%off", "?#&=", "org/1/"]


@pytest.fixture
def dashboard(workspace, staff_of) -> Client:
    user = staff_of(workspace, "manager")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("external_id", IDS)
def test_an_id_works_end_to_end(api, workspace, dashboard, external_id):
    segment = quote(external_id, safe="")
    # given an event for the account and its user, sent with the ids as they are
    ingest = api.post(
        "/api/v1/events", {"account_id": external_id, "user_id": external_id, "feature_id": "reports"}, format="json"
    )
    assert ingest.json() == {"accepted": 1, "duplicates": 0, "ignored": 0, "rejected": [], "warnings": []}
    # when the account and the user are upserted with percent-encoded path segments
    account = api.put(f"/api/v1/accounts/{segment}", {"name": "Acme", "plan": "free"}, format="json")
    user = api.put(f"/api/v1/accounts/{segment}/users/{segment}", {"email": "j@example.com"}, format="json")
    # then both reach the rows ingestion registered
    assert (account.status_code, account.json()["id"], account.json()["name"]) == (200, external_id, "Acme")
    assert (user.status_code, user.json()["id"], user.json()["account_id"]) == (200, external_id, external_id)
    assert list(Account.objects.values_list("external_id", "name", "plan")) == [(external_id, "Acme", "free")]
    assert list(EndUser.objects.values_list("external_id", "email")) == [(external_id, "j@example.com")]
    # and the check, the account's entitlements and its analytics find the account
    check = api.get("/api/v1/entitlements/check", {"account_id": external_id, "feature_id": "reports"})
    entitlements = api.get(f"/api/v1/accounts/{segment}/entitlements")
    daily = api.get(f"/api/v1/accounts/{segment}/analytics/daily")
    assert check.status_code == 200 and check.json()["reason"] != "unknown_account"
    assert entitlements.status_code == 200 and entitlements.json()["account_id"] == external_id
    assert daily.status_code == 200
    # and the dashboard links to the account's page, which opens
    rollup_pending(now=timezone.now() + timedelta(seconds=1))
    href = f"/accounts/{segment}/"
    assert external_id_reverse("dashboard:account", external_id=external_id) == href
    overview = dashboard.get("/")
    feature = dashboard.get("/features/reports/")
    assert overview.status_code == 200 and f'href="{href}?from=' in overview.content.decode()
    assert feature.status_code == 200 and f'href="{href}"' in feature.content.decode()
    page = dashboard.get(href)
    assert page.status_code == 200 and page.context["account"].external_id == external_id
    # and the CSV export carries the id as it is
    export = dashboard.get("/lists/free-unentitled/export.csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[1:] == [[external_id, "Acme", "free", "", "reports", "1"]], rows


def test_without_the_raw_path_an_unencoded_reading_is_used(api, workspace):
    # given a server that passes on only the decoded path (the test client, runserver)
    # when an account id holding "/users/" is sent encoded
    response = api.put(f"/api/v1/accounts/{quote('a/users/b', safe='')}", {"email": "b@example.com"}, format="json")
    # then the decoded path reads as the user b of the account a (gunicorn passes the raw path: exact there)
    assert response.status_code == 201 and (response.json()["account_id"], response.json()["id"]) == ("a", "b")


@pytest.mark.parametrize(
    ("path", "account_id", "user_id"),
    [
        ("/api/v1/accounts/a/users/b/c", "a", "b/c"),
        ("/api/v1/accounts/a/users/b/users/c", "a/users/b", "c"),
        ("/api/v1/accounts/org%2F1/users/team%2F7", "org/1", "team/7"),
        ("/api/v1/accounts/50%25/users/%25", "50%", "%"),
    ],
)
def test_without_the_raw_path_the_longest_account_id_is_read(api, workspace, path, account_id, user_id):
    # when the test client (decoded path only) upserts a user
    response = api.put(path, {}, format="json")
    # then the account id is everything before the last "/users/"
    assert response.status_code == 201
    assert (response.json()["account_id"], response.json()["id"]) == (account_id, user_id)
    assert list(EndUser.objects.values_list("account__external_id", "external_id")) == [(account_id, user_id)]


def test_with_the_raw_path_an_encoded_slash_stays_in_the_id(api, workspace):
    # given the raw path gunicorn passes on as RAW_URI
    path = f"/api/v1/accounts/{quote('a/users/b', safe='')}"
    # when
    response = api.put(path, {"name": "AUB"}, format="json", RAW_URI=path)
    # then it is the account a/users/b
    assert response.status_code == 201 and response.json()["id"] == "a/users/b"
    assert list(Account.objects.values_list("external_id", flat=True)) == ["a/users/b"]
    assert EndUser.objects.count() == 0


def test_a_raw_path_that_is_not_utf8_is_refused(api, workspace):
    # given bytes that are not UTF-8, which Django leaves percent-encoded in the path (as it shows `%25FF`)
    path = "/api/v1/accounts/%FF"
    # when
    response = api.put(path, {}, format="json", RAW_URI=path)
    # then it names no account (it was the account `%FF`, the same as `/accounts/%25FF`)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_path"
    assert Account.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (
            "/api/v1/accounts/a%07b",
            {
                "code": "control_characters_not_allowed",
                "message": "The path contains the control character U+0007; no id or key holds one.",
            },
        ),
        (
            "/api/v1/accounts/a%C2%85b",
            {
                "code": "invalid_id",
                "message": "'account_id' contains the control character U+0085; ids are printable text.",
                "field": "account_id",
            },
        ),
        (
            "/api/v1/accounts/a/users/u%C2%9Fv",
            {
                "code": "invalid_id",
                "message": "'user_id' contains the control character U+009F; ids are printable text.",
                "field": "user_id",
            },
        ),
    ],
)
def test_an_upsert_of_an_id_with_a_control_character_is_400_and_stores_nothing(api, path, error):
    # when
    response = api.put(path, {}, format="json")
    # then
    assert response.status_code == 400
    assert response.json() == {"error": error, "errors": [error]}
    assert Account.objects.count() == 0 and EndUser.objects.count() == 0
