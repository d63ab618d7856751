"""PUT /api/v1/accounts/{account_id} and PUT /api/v1/accounts/{account_id}/users/{user_id}: idempotent "
"upserts."""

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Account, EndUser

URL = "/api/v1/accounts/acct_1"


def test_put_creates_an_account_and_returns_it(api, workspace, staff_of):
    # given a staff member of the workspace
    staff_of(workspace, "manager")
    body = {
        "name": "Initech",
        "domain": "Initech.COM",
        "plan": "Pro",
        "owner_email": "CAROL@example.com",
        "status": "active",
        "attributes": {"seats": 40},
    }
    # when
    response = api.put(URL, body, format="json")
    # then
    assert response.status_code == 201
    data = response.json()
    assert {k: data[k] for k in ("id", "name", "domain", "plan", "owner_email", "status", "attributes")} == {
        "id": "acct_1",
        "name": "Initech",
        "domain": "initech.com",
        "plan": "Pro",
        "owner_email": "carol@example.com",
        "status": "active",
        "attributes": {"seats": 40},
    }
    account = Account.objects.get(workspace=workspace, external_id="acct_1")
    assert (account.name, account.owner.username) == ("Initech", "carol")


def test_put_is_idempotent_and_keeps_fields_left_out(api, workspace):
    # given
    api.put(URL, {"name": "Initech", "plan": "Pro"}, format="json")
    # when the same PUT is repeated, then a partial one
    again = api.put(URL, {"name": "Initech", "plan": "Pro"}, format="json")
    partial = api.put(URL, {"status": "churned"}, format="json")
    # then
    assert (again.status_code, partial.status_code) == (200, 200)
    assert Account.objects.filter(external_id="acct_1").count() == 1
    account = Account.objects.get(external_id="acct_1")
    assert (account.name, account.plan, account.status) == ("Initech", "Pro", "churned")


def test_put_updates_an_account_registered_by_ingestion(api, workspace):
    # given an account first seen in an event
    api.post("/api/v1/events", {"account_id": "acct_1", "feature_id": "f"}, format="json")
    # when
    response = api.put(URL, {"domain": "initech.com"}, format="json")
    # then
    assert response.status_code == 200
    assert response.json()["first_seen_at"] is not None
    assert Account.objects.get(external_id="acct_1").domain == "initech.com"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"name": "x", "colour": "red"}, "colour", "invalid"),
        ({"status": "paused"}, "status", "invalid_value"),
        ({"attributes": [1, 2]}, "attributes", "invalid_type"),
        ({"owner_email": "nobody@example.com"}, "owner_email", "unknown_owner"),
        ({"name": "n" * 201}, "name", "invalid_value"),
    ],
)
def test_put_refuses_bad_input_by_field_and_stores_nothing(api, workspace, body, field, code):
    # when
    response = api.put(URL, body, format="json")
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["field"], error["code"]) == (field, code)
    assert field in error["message"] or field == "owner_email"
    assert not Account.objects.exists()


def test_owner_email_of_a_staff_user_outside_the_workspace_is_refused(api, workspace, other_workspace, staff_of):
    # given carol is staff of another workspace only
    staff_of(other_workspace, "admin")
    # when
    response = api.put(URL, {"owner_email": "carol@example.com"}, format="json")
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_owner"
    assert "carol@example.com" in response.json()["error"]["message"]
    assert not Account.objects.exists()


def test_null_owner_email_clears_the_owner(api, workspace, staff_of):
    # given
    staff_of(workspace)
    api.put(URL, {"owner_email": "carol@example.com"}, format="json")
    # when
    response = api.put(URL, {"owner_email": None}, format="json")
    # then
    assert response.json()["owner_email"] is None
    assert Account.objects.get().owner_id is None


def test_put_needs_the_ingest_scope(workspace, make_client):
    # when
    response = make_client(workspace, "read").put(URL, {"name": "x"}, format="json")
    # then
    assert response.status_code == 403
    assert not Account.objects.exists()


def test_account_ids_are_per_workspace(api, workspace, other_workspace, make_client):
    # given
    make_client(other_workspace, "ingest").put(URL, {"name": "Globex's"}, format="json")
    # when
    api.put(URL, {"name": "Acme's"}, format="json")
    # then
    assert sorted(Account.objects.values_list("workspace__slug", "name")) == [
        ("acme", "Acme's"),
        ("globex", "Globex's"),
    ]


def test_put_end_user_creates_the_user_and_its_account(api, workspace):
    # when
    response = api.put(URL + "/users/u_1", {"email": "dana@initech.com", "attributes": {"role": "cfo"}}, format="json")
    # then
    assert response.status_code == 201
    data = response.json()
    assert {k: data[k] for k in ("id", "account_id", "email", "attributes")} == {
        "id": "u_1",
        "account_id": "acct_1",
        "email": "dana@initech.com",
        "attributes": {"role": "cfo"},
    }
    assert EndUser.objects.get().account.external_id == "acct_1"


def test_put_end_user_is_idempotent(api, workspace):
    # given
    api.put(URL + "/users/u_1", {"email": "dana@initech.com"}, format="json")
    # when
    response = api.put(URL + "/users/u_1", {"attributes": {"a": 1}}, format="json")
    # then
    assert response.status_code == 200
    user = EndUser.objects.get()
    assert (user.email, user.attributes) == ("dana@initech.com", {"a": 1})


@pytest.mark.parametrize(
    ("body", "field"),
    [({"email": "not-an-email"}, "email"), ({"name": "x"}, "name"), ({"attributes": "x"}, "attributes")],
)
def test_put_end_user_refuses_bad_input(api, workspace, body, field):
    # when
    response = api.put(URL + "/users/u_1", body, format="json")
    # then
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert not EndUser.objects.exists()
    assert not Account.objects.exists()


def test_staff_email_match_ignores_inactive_users(api, workspace, staff_of, staff_user):
    # given carol is a member but inactive
    staff_of(workspace)
    get_user_model().objects.filter(pk=staff_user.pk).update(is_active=False)
    # when
    response = api.put(URL, {"owner_email": "carol@example.com"}, format="json")
    # then
    assert response.status_code == 400
    assert not Account.objects.exists()
