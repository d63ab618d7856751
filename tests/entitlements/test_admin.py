import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from catalog.services import feature_archive, product_create
from entitlements.models import ItemEntitlement, Subscription, SubscriptionEntitlement
from entitlements.selectors import effective_entitlement

from .factories import QUANTITY_LEVELS, account, feature, plan, subscribe

pytestmark = pytest.mark.django_db


def test_admin_shows_item_entitlements_subscriptions_and_effective_entitlements(client, workspace, product):
    # given
    sso = feature(workspace, product, "sso")
    acct = account(workspace, "acme-corp")
    pro = plan(workspace, "pro", {sso: "true"})
    sub = subscribe(workspace, acct, "sub-1", [pro])
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin_user)
    # when
    item_page = client.get(f"/admin/catalog/item/{pro.pk}/change/")
    account_page = client.get(f"/admin/accounts/account/{acct.pk}/change/")
    subscription_page = client.get(f"/admin/entitlements/subscription/{sub.pk}/change/")
    # then
    assert item_page.status_code == 200
    assert "Item entitlement" in item_page.content.decode()
    assert account_page.status_code == 200
    assert "<code>sso</code>: true" in account_page.content.decode()
    assert subscription_page.status_code == 200


def _inline(prefix: str = "overrides", rows: list[dict] | None = None, initial: int = 0) -> dict:
    rows = rows or []
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
    return data


@pytest.fixture
def admin_client(client, workspace, staff_of):
    client.force_login(staff_of(workspace, "admin"))
    return client


def _inline_prefix(admin_client) -> str:
    page = admin_client.get("/admin/entitlements/subscription/add/").content.decode()
    import re

    return re.search(r'name="([\w-]+)-TOTAL_FORMS"', page).group(1)


def _subscription_with_override_added(admin_client, workspace, product, *, external_id: str, value: str):
    """Plan `pro` grants 10 of the quantity feature `seats`; the admin adds subscription `external_id` of
    acme-corp to pro with an override of `value` seats. (response, account, seats)."""
    seats = feature(workspace, product, "seats", type="quantity", levels=QUANTITY_LEVELS)
    acct = account(workspace, "acme-corp")
    pro = plan(workspace, "pro", {seats: "10"})
    prefix = _inline_prefix(admin_client)
    response = admin_client.post(
        "/admin/entitlements/subscription/add/",
        {
            "external_id": external_id,
            "account": acct.pk,
            "status": "active",
            "items": [pro.pk],
            **_inline(prefix, [{"feature": seats.pk, "value": value, "expires_at_0": "", "expires_at_1": ""}]),
        },
    )
    return response, acct, seats


def test_admin_creates_a_subscription_with_an_override_through_the_services(admin_client, workspace, product):
    # given plan pro with 10 seats / when the admin adds a subscription overriding them with 100
    response, acct, seats = _subscription_with_override_added(
        admin_client, workspace, product, external_id="sub-42", value="100"
    )
    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription = Subscription.objects.get(workspace=workspace, external_id="sub-42")
    assert list(subscription.items.values_list("key", flat=True)) == ["pro"]
    assert list(SubscriptionEntitlement.objects.filter(subscription=subscription).values_list("value", flat=True)) == [
        "100"
    ]
    assert effective_entitlement(account_id=acct.pk, feature=seats, now=timezone.now()).value == "100"


def test_admin_refuses_an_override_value_outside_the_levels_and_stores_nothing(admin_client, workspace, product):
    # given plan pro with 10 seats / when the admin adds a subscription overriding them with 55 (no such level)
    response, _, _ = _subscription_with_override_added(
        admin_client, workspace, product, external_id="sub-43", value="55"
    )
    # then
    assert response.status_code == 200
    assert "55" in response.content.decode() and "errornote" in response.content.decode()
    assert Subscription.objects.filter(workspace=workspace).count() == 0
    assert SubscriptionEntitlement.objects.count() == 0


def test_admin_does_not_offer_or_accept_another_workspaces_items(admin_client, workspace, other_workspace, product):
    # given
    acct = account(workspace, "acme-corp")
    foreign = plan(other_workspace, "globex-pro", {})
    prefix = _inline_prefix(admin_client)
    # when
    page = admin_client.get("/admin/entitlements/subscription/add/").content.decode()
    response = admin_client.post(
        "/admin/entitlements/subscription/add/",
        {"external_id": "sub-44", "account": acct.pk, "status": "active", "items": [foreign.pk], **_inline(prefix)},
    )
    # then
    assert "globex-pro" not in page
    assert response.status_code == 200
    assert Subscription.objects.count() == 0


# ---------------------------------------------------------------------------------------------------------
# Refusals are form errors, never a 500
# ---------------------------------------------------------------------------------------------------------

ITEM_ENTITLEMENT_ADD = "/admin/entitlements/itementitlement/add/"


def _form_errors(response) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {field: list(errors) for field, errors in form.errors.items()}


def test_an_item_entitlement_outside_the_features_levels_is_a_form_error_and_nothing_is_stored(
    admin_client, workspace, product
):
    # given
    seats = feature(workspace, product, "seats", type="quantity", levels=QUANTITY_LEVELS)
    pro = plan(workspace, "pro", {})
    # when
    response = admin_client.post(ITEM_ENTITLEMENT_ADD, {"item": pro.pk, "feature": seats.pk, "value": "55"})
    # then
    assert response.status_code == 200
    assert _form_errors(response) == {
        "value": ["'value' of quantity feature 'seats' must be one of its levels (10, 100, unlimited), not 55."]
    }
    assert ItemEntitlement.objects.count() == 0


def test_an_item_entitlement_to_an_archived_feature_is_a_form_error_and_nothing_is_stored(
    admin_client, workspace, product
):
    # given
    sso = feature_archive(feature=feature(workspace, product, "sso"))
    pro = plan(workspace, "pro", {})
    # when
    response = admin_client.post(ITEM_ENTITLEMENT_ADD, {"item": pro.pk, "feature": sso.pk, "value": "true"})
    # then
    assert response.status_code == 200
    assert _form_errors(response) == {
        "feature": ["Feature 'sso' is archived: it keeps existing entitlements but accepts no new ones."]
    }
    assert ItemEntitlement.objects.count() == 0


def test_a_subscription_term_ending_before_it_starts_is_a_sentence_and_nothing_is_stored(
    admin_client, workspace, product
):
    # given
    acct = account(workspace, "acme-corp")
    prefix = _inline_prefix(admin_client)
    # when
    response = admin_client.post(
        "/admin/entitlements/subscription/add/",
        {
            "external_id": "sub-45",
            "account": acct.pk,
            "status": "active",
            "current_term_start_0": "2026-12-01",
            "current_term_start_1": "00:00:00",
            "current_term_end_0": "2026-11-01",
            "current_term_end_1": "00:00:00",
            **_inline(prefix),
        },
    )
    # then
    assert response.status_code == 200
    assert _form_errors(response) == {"current_term_end": ["The term must end after it starts."]}
    assert Subscription.objects.count() == 0


def test_a_database_refusal_while_saving_is_a_form_error_not_a_500(admin_client, workspace, product):
    # given: a rule only the database knows (a trigger-free CHECK the service does not repeat)
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE entitlements_itementitlement "
            "ADD CONSTRAINT entitlements_test_no_fortytwo CHECK (value <> '42')"
        )
    seats = feature(workspace, product, "seats", type="range", levels=[{"value": "1"}, {"value": "100"}])
    pro = plan(workspace, "pro", {})
    # when
    response = admin_client.post(ITEM_ENTITLEMENT_ADD, {"item": pro.pk, "feature": seats.pk, "value": "42"})
    # then
    assert response.status_code == 200
    assert list(response.context["adminform"].form.non_field_errors()) == [
        'The database refused this change: new row for relation "entitlements_itementitlement" violates check '
        'constraint "entitlements_test_no_fortytwo".'
    ]
    assert ItemEntitlement.objects.count() == 0


@pytest.mark.parametrize("junk", ["abc", "1e309", "NaN", "[]", "9" * 30])
def test_a_picker_value_that_is_no_id_is_a_form_error_not_a_500(admin_client, workspace, product, junk):
    # given (Django's autocomplete looked the value up as sent while re-rendering the form: ValueError, a 500)
    feature(workspace, product, "seats", type="quantity", levels=QUANTITY_LEVELS)
    pro = plan(workspace, "pro", {})
    prefix = _inline_prefix(admin_client)
    # when a picker of each form sends junk
    entitlement = admin_client.post(ITEM_ENTITLEMENT_ADD, {"item": pro.pk, "feature": junk, "value": "10"})
    subscription = admin_client.post(
        "/admin/entitlements/subscription/add/",
        {
            "external_id": "sub-1",
            "account": junk,
            "status": "active",
            "items": [junk],
            **_inline(prefix, [{"feature": junk, "value": "10"}]),
        },
    )
    # then each field says so, and nothing is stored
    assert entitlement.status_code == subscription.status_code == 200
    choice = "Select a valid choice. That choice is not one of the available choices."
    assert _form_errors(entitlement) == {"feature": [choice]}
    assert set(_form_errors(subscription)) >= {"account", "items"}
    assert ItemEntitlement.objects.filter(value="10").count() == 0 and Subscription.objects.count() == 0


# ---------------------------------------------------------------------------------------------------------
# Labels and pickers
# ---------------------------------------------------------------------------------------------------------


def test_entitlement_rows_read_feature_name_equals_value(admin_client, workspace, product):
    # given
    sso = feature(workspace, product, "sso")
    pro = plan(workspace, "pro", {sso: "true"})
    # when
    listing = admin_client.get("/admin/entitlements/itementitlement/")
    item_page = admin_client.get(f"/admin/catalog/item/{pro.pk}/change/").content.decode()
    # then
    assert [str(row) for row in listing.context["cl"].result_list] == ["Sso = true"]
    assert "Sso = true" in item_page
    assert f"{pro.pk}:{sso.pk}=true" not in item_page


def _autocomplete(client, model: str, field: str, term: str = "") -> list[str]:
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "entitlements", "model_name": model, "field_name": field, "term": term},
    )
    assert response.status_code == 200, response.content[:300]
    return [row["text"] for row in response.json()["results"]]


def test_accounts_features_and_items_are_picked_by_autocomplete_within_the_users_workspaces(
    admin_client, workspace, other_workspace, product
):
    # given
    for index in range(3):
        account(workspace, f"acme-{index}")
        account(other_workspace, f"globex-{index}")
    feature(workspace, product, "sso")
    their_product = product_create(workspace=other_workspace, key="default", name="Theirs")
    feature(other_workspace, their_product, "sso-theirs")
    plan(workspace, "pro", {})
    plan(other_workspace, "gold", {})
    page = admin_client.get("/admin/entitlements/subscription/add/").content.decode()
    # when
    accounts = _autocomplete(admin_client, "subscription", "account")
    matching = _autocomplete(admin_client, "subscription", "account", "globex")
    items = _autocomplete(admin_client, "subscription", "items")
    features = _autocomplete(admin_client, "itementitlement", "feature")
    override_features = _autocomplete(admin_client, "subscriptionentitlement", "feature")
    # then
    assert 'data-ajax--url="/admin/autocomplete/"' in page
    assert "acme-1" not in page  # no 200-option select: the choices come from the autocomplete
    assert accounts == ["acme-0", "acme-1", "acme-2"]
    assert matching == []
    assert items == ["Pro"]
    assert features == override_features == ["Sso"]


def test_the_account_page_links_to_its_dashboard_page_with_the_id_as_one_segment(admin_client, workspace):
    # given
    acct = account(workspace, "org/1 a%b")
    # when
    page = admin_client.get(f"/admin/accounts/account/{acct.pk}/change/").content.decode()
    # then
    assert f'<a href="/accounts/org%2F1%20a%25b/?workspace={workspace.slug}">' in page
