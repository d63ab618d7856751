import pytest
from django.contrib.auth import get_user_model

from .factories import account, feature, plan, subscribe

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
