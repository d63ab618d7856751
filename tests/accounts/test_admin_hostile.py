"""The admin's account and end-user forms refuse what the REST upserts refuse, on the form, never with a 500:
attributes that PostgreSQL cannot store (NUL, lone surrogates, non-finite numbers), JSON nested past
core.text.JSON_MAX_DEPTH or deep enough to break the decoder, attributes that are not an object, and external ids
that are not printable text."""

import pytest
from django.test import Client

from accounts.models import Account, EndUser
from tests.accounts.admin_forms import account_form


@pytest.fixture
def admin_client(workspace, staff_of) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(staff_of(workspace, "admin"))
    return client


def _errors(response) -> str:
    return response.content.decode()


ATTRIBUTES = [
    ('{"note": "a\\u0000b"}', "&#x27;attributes.note&#x27; contains the NUL character."),
    ('{"note": "\\ud800"}', "&#x27;attributes.note&#x27; contains an unpaired surrogate (invalid Unicode)."),
    ("[" * 65 + "]" * 65, "&#x27;attributes&#x27; nests JSON deeper than 64 levels."),
    ("[" * 50_000 + "]" * 50_000, "&#x27;attributes&#x27; nests JSON deeper than 64 levels."),
    ('{"n": 1e999}', "&#x27;attributes&#x27; holds a number jsonb cannot store (1e999)."),
    ('{"n": NaN}', "&#x27;attributes&#x27; holds a number jsonb cannot store (NaN)."),
    ("[1, 2]", "&#x27;attributes&#x27; must be a JSON object."),
    ('"text"', "&#x27;attributes&#x27; must be a JSON object."),
]


@pytest.mark.parametrize("attributes, message", ATTRIBUTES)
def test_account_attributes_postgresql_cannot_store_are_a_form_error(admin_client, workspace, attributes, message):
    # when
    response = admin_client.post("/admin/accounts/account/add/", account_form(workspace, attributes=attributes))
    # then
    assert response.status_code == 200
    assert message in _errors(response)
    assert Account.objects.count() == 0


@pytest.mark.parametrize("attributes, message", ATTRIBUTES)
def test_end_user_attributes_postgresql_cannot_store_are_a_form_error(admin_client, workspace, attributes, message):
    # given
    account = Account.objects.create(workspace=workspace, external_id="acct_1")
    form = {"account": str(account.pk), "external_id": "u_1", "email": "", "attributes": attributes}
    # when
    response = admin_client.post("/admin/accounts/enduser/add/", form)
    # then
    assert response.status_code == 200
    assert message in _errors(response)
    assert EndUser.objects.count() == 0


@pytest.mark.parametrize(
    "external_id, message",
    [
        ("a\nb", "&#x27;external_id&#x27; contains the control character U+000A; ids are printable text."),
        ("a\tb", "&#x27;external_id&#x27; contains the control character U+0009; ids are printable text."),
        ("a\x7fb", "&#x27;external_id&#x27; contains the control character U+007F; ids are printable text."),
    ],
)
def test_external_ids_with_control_characters_are_a_form_error(admin_client, workspace, external_id, message):
    # given
    account = Account.objects.create(workspace=workspace, external_id="acct_0")
    user_form = {"account": str(account.pk), "external_id": external_id, "email": "", "attributes": "{}"}
    # when
    account_response = admin_client.post(
        "/admin/accounts/account/add/", account_form(workspace, external_id=external_id)
    )
    user_response = admin_client.post("/admin/accounts/enduser/add/", user_form)
    # then
    assert account_response.status_code == user_response.status_code == 200
    assert message in _errors(account_response)
    assert message in _errors(user_response)
    assert list(Account.objects.values_list("external_id", flat=True)) == ["acct_0"]
    assert EndUser.objects.count() == 0


def test_valid_attributes_and_an_id_with_a_slash_are_saved(admin_client, workspace):
    # when
    response = admin_client.post(
        "/admin/accounts/account/add/", account_form(workspace, external_id="org/1", attributes='{"n": 1.5}')
    )
    # then
    assert response.status_code == 302
    assert list(Account.objects.values_list("external_id", "attributes")) == [("org/1", {"n": 1.5})]


def test_cleared_attributes_are_saved_as_the_empty_object(admin_client, workspace):
    # given
    account = Account.objects.create(workspace=workspace, external_id="acct_0")
    # when the attributes box is left empty (None reached the NOT NULL column: a 500)
    created = admin_client.post("/admin/accounts/account/add/", account_form(workspace, attributes=""))
    user = admin_client.post(
        "/admin/accounts/enduser/add/",
        {"account": str(account.pk), "external_id": "u_1", "email": "", "attributes": ""},
    )
    # then
    assert created.status_code == user.status_code == 302
    assert Account.objects.get(external_id="acct_1").attributes == {}
    assert EndUser.objects.get().attributes == {}


def test_a_database_refusal_on_the_account_form_is_a_form_error_not_a_500(admin_client, workspace):
    # given a rule only the database knows (the account form is no service form: the refused save was
    # retried and raised again)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE accounts_account ADD CONSTRAINT accounts_test_no_evil CHECK (name <> 'Evil')")
    # when
    response = admin_client.post("/admin/accounts/account/add/", account_form(workspace, name="Evil"))
    # then
    assert response.status_code == 200
    assert list(response.context["adminform"].form.non_field_errors()) == [
        'The database refused this change: new row for relation "accounts_account" violates check constraint '
        '"accounts_test_no_evil".'
    ]
    assert Account.objects.count() == 0
