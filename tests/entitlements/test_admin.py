import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from entitlements.models import Subscription, SubscriptionEntitlement
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


def test_admin_creates_a_subscription_with_an_override_through_the_services(admin_client, workspace, product):
    # given
    seats = feature(workspace, product, "seats", type="quantity", levels=QUANTITY_LEVELS)
    acct = account(workspace, "acme-corp")
    pro = plan(workspace, "pro", {seats: "10"})
    prefix = _inline_prefix(admin_client)
    # when
    response = admin_client.post(
        "/admin/entitlements/subscription/add/",
        {
            "external_id": "sub-42",
            "account": acct.pk,
            "status": "active",
            "items": [pro.pk],
            **_inline(prefix, [{"feature": seats.pk, "value": "100", "expires_at_0": "", "expires_at_1": ""}]),
        },
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
    # given
    seats = feature(workspace, product, "seats", type="quantity", levels=QUANTITY_LEVELS)
    acct = account(workspace, "acme-corp")
    pro = plan(workspace, "pro", {seats: "10"})
    prefix = _inline_prefix(admin_client)
    # when
    response = admin_client.post(
        "/admin/entitlements/subscription/add/",
        {
            "external_id": "sub-43",
            "account": acct.pk,
            "status": "active",
            "items": [pro.pk],
            **_inline(prefix, [{"feature": seats.pk, "value": "55", "expires_at_0": "", "expires_at_1": ""}]),
        },
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
