"""The account and end-user admin pages save through accounts.services (account_upsert, end_user_upsert), so the
admin applies the API's rules: ids trimmed and checked, domains lower-cased, the owner a staff member of the
account's workspace, an account without a domain taking its end user's e-mail domain. A refused value
re-renders the form with the message and saves nothing."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import Account, EndUser
from accounts.services import account_upsert, end_user_upsert, membership_set
from core.errors import Conflict, DomainError
from tests.accounts.admin_forms import account_form

pytestmark = pytest.mark.django_db

ACCOUNT_ADD = "/admin/accounts/account/add/"
USER_ADD = "/admin/accounts/enduser/add/"


@pytest.fixture
def admin_client(workspace, other_workspace, staff_of) -> Client:
    # An admin of both workspaces: the owner list offers the staff of both.
    carol = staff_of(workspace, "admin")
    membership_set(workspace=other_workspace, user=carol, role="admin")
    client = Client(raise_request_exception=False)
    client.force_login(carol)
    return client


@pytest.fixture
def dave(other_workspace):
    """A staff member of the other workspace only."""
    user = get_user_model().objects.create_user("dave", "dave@globex.example", "pw-dave-123", is_staff=True)
    membership_set(workspace=other_workspace, user=user, role="manager")
    return user


def _errors(response) -> dict[str, list[str]]:
    return {field: list(errors) for field, errors in response.context["adminform"].form.errors.items()}


OWNER_REFUSED = (
    "'dave' is not an active staff member of workspace 'acme': add them to the workspace first, or leave the "
    "owner empty."
)


def test_a_new_account_is_normalised_as_over_the_api(admin_client, workspace, staff_user):
    # when
    response = admin_client.post(
        ACCOUNT_ADD,
        account_form(workspace, external_id="  acct_1 ", name=" Acme ", domain=" ACME.Example ", owner=staff_user.pk),
    )
    # then
    assert response.status_code == 302
    assert list(Account.objects.values_list("external_id", "name", "domain", "owner__username")) == [
        ("acct_1", "Acme", "acme.example", "carol")
    ]


def test_an_owner_from_another_workspace_is_refused_on_the_new_account_form_and_nothing_is_saved(
    admin_client, workspace, dave
):
    # when
    response = admin_client.post(ACCOUNT_ADD, account_form(workspace, owner=dave.pk))
    # then
    assert response.status_code == 200
    assert _errors(response) == {"owner": [OWNER_REFUSED]}
    assert Account.objects.count() == 0


def test_an_owner_from_another_workspace_is_refused_on_the_change_form_and_the_account_stays(
    admin_client, workspace, staff_user, dave
):
    # given
    account, _ = account_upsert(workspace=workspace, external_id="acct_1", name="Acme", owner=staff_user)
    url = f"/admin/accounts/account/{account.pk}/change/"
    form = account_form(workspace, name="Renamed", domain="renamed.example", owner=dave.pk)
    del form["workspace"], form["external_id"]
    # when
    response = admin_client.post(url, form)
    # then
    assert response.status_code == 200
    assert _errors(response) == {"owner": [OWNER_REFUSED]}
    account.refresh_from_db()
    assert (account.name, account.domain, account.owner_id) == ("Acme", "", staff_user.pk)


def test_an_existing_account_id_is_refused_on_the_new_account_form(admin_client, workspace):
    # given
    account_upsert(workspace=workspace, external_id="acct_1", name="First")
    # when
    response = admin_client.post(ACCOUNT_ADD, account_form(workspace, name="Second"))
    # then
    assert response.status_code == 200
    assert _errors(response) == {"external_id": ["Another account has this external id."]}
    assert list(Account.objects.values_list("name", flat=True)) == ["First"]


def test_an_end_user_added_in_the_admin_gives_its_account_the_email_domain(admin_client, workspace):
    # given
    account, _ = account_upsert(workspace=workspace, external_id="acct_1")
    # when
    response = admin_client.post(
        USER_ADD, {"account": account.pk, "external_id": " u_1 ", "email": "jane@initech.example", "attributes": "{}"}
    )
    # then
    assert response.status_code == 302
    assert list(EndUser.objects.values_list("external_id", "email", "workspace_id")) == [
        ("u_1", "jane@initech.example", workspace.pk)
    ]
    account.refresh_from_db()
    assert account.domain == "initech.example"


def test_an_existing_end_user_id_is_refused_and_nothing_is_saved(admin_client, workspace):
    # given
    user, _ = end_user_upsert(workspace=workspace, account_external_id="acct_1", external_id="u_1", email="a@x.example")
    # when
    response = admin_client.post(
        USER_ADD, {"account": user.account_id, "external_id": "u_1", "email": "b@x.example", "attributes": "{}"}
    )
    # then
    assert response.status_code == 200
    assert _errors(response) == {"external_id": ["Another end user of this account has this id."]}
    assert list(EndUser.objects.values_list("email", flat=True)) == ["a@x.example"]


def test_end_users_edited_on_the_account_page_are_saved_through_the_service(admin_client, workspace):
    # given
    user, _ = end_user_upsert(workspace=workspace, account_external_id="acct_1", external_id="u_1")
    account = user.account
    form = account_form(
        workspace,
        **{
            "users-TOTAL_FORMS": "1",
            "users-INITIAL_FORMS": "1",
            "users-0-id": str(user.pk),
            "users-0-account": str(account.pk),
            "users-0-email": "jane@initech.example",
            "users-0-attributes": '{"role": "buyer"}',
        },
    )
    del form["workspace"], form["external_id"]
    # when
    response = admin_client.post(f"/admin/accounts/account/{account.pk}/change/", form)
    # then
    assert response.status_code == 302, _errors(response)
    user.refresh_from_db()
    account.refresh_from_db()
    assert (user.email, user.attributes, account.domain) == (
        "jane@initech.example",
        {"role": "buyer"},
        "initech.example",
    )


def test_create_only_refuses_an_existing_account_or_end_user_and_changes_nothing(workspace):
    # given
    end_user_upsert(workspace=workspace, account_external_id="acct_1", external_id="u_1", email="a@x.example")
    # when
    with pytest.raises(Conflict) as account_refused:
        account_upsert(workspace=workspace, external_id=" acct_1 ", name="Other", create_only=True)
    with pytest.raises(Conflict) as user_refused:
        end_user_upsert(
            workspace=workspace, account_external_id="acct_1", external_id="u_1", email="b@x.example", create_only=True
        )
    # then
    assert (account_refused.value.code, account_refused.value.field, account_refused.value.message) == (
        "account_exists",
        "account_id",
        "An account with id 'acct_1' already exists.",
    )
    assert (user_refused.value.code, user_refused.value.field) == ("user_exists", "user_id")
    assert list(Account.objects.values_list("name", flat=True)) == [""]
    assert list(EndUser.objects.values_list("email", flat=True)) == ["a@x.example"]


def test_an_owner_outside_the_workspace_is_refused_by_the_service_whatever_the_path(workspace, dave):
    # when
    with pytest.raises(DomainError) as as_user:
        account_upsert(workspace=workspace, external_id="acct_1", owner=dave)
    with pytest.raises(DomainError) as as_email:
        account_upsert(workspace=workspace, external_id="acct_1", owner_email="dave@globex.example")
    # then
    assert (as_user.value.code, as_user.value.field) == ("unknown_owner", "owner")
    assert (as_email.value.code, as_email.value.field) == ("unknown_owner", "owner_email")
    assert Account.objects.count() == 0
