"""An item's lifecycle limits what it does: a draft item grants nothing and cannot be put on a subscription; an
archived item keeps granting to the subscriptions that have it but joins no other; reactivating it restores
that. Over REST and in the admin, a refusal names the item and its status and saves nothing."""

import re

import pytest
import time_machine

from catalog.services import item_activate, item_archive, item_create, item_reactivate
from entitlements.models import Subscription
from entitlements.services import item_entitlement_set
from tests.conftest import FROZEN_NOW

from .factories import account, feature, plan, subscribe

CHECK = "/api/v1/entitlements/check"
SUBSCRIPTIONS = "/api/v1/subscriptions"


@pytest.fixture
def sso(workspace, product):
    return feature(workspace, product, "sso")


@pytest.fixture
def draft(workspace, sso):
    item = item_create(workspace=workspace, key="beta", name="Beta", type="addon")
    item_entitlement_set(item=item, feature=sso, value="true")
    return item


@pytest.fixture
def acct(workspace):
    return account(workspace, "acme-corp")


def _check(api) -> tuple[bool, str | None]:
    body = api.get(CHECK, {"account_id": "acme-corp", "feature_id": "sso"}).json()
    return body["entitled"], body["reason"]


def _items(workspace, external_id: str) -> list[str]:
    subscription = Subscription.objects.get(workspace=workspace, external_id=external_id)
    return sorted(subscription.items.values_list("key", flat=True))


def test_a_draft_item_cannot_be_put_on_a_subscription_over_rest(api, workspace, acct, draft):
    # given
    subscribe(workspace, acct, "s1", [plan(workspace, "team", {})])
    # when
    created = api.post(SUBSCRIPTIONS, {"id": "s2", "account_id": "acme-corp", "items": ["beta"]}, format="json")
    patched = api.patch(f"{SUBSCRIPTIONS}/s1", {"items": ["team", "beta"]}, format="json")
    # then
    for response in (created, patched):
        assert response.status_code == 400
        assert response.json()["error"] == {
            "code": "item_not_active",
            "message": "Item 'beta' is draft: activate it before putting it on a subscription.",
            "field": "items",
        }
    assert list(Subscription.objects.values_list("external_id", flat=True)) == ["s1"]
    assert _items(workspace, "s1") == ["team"]


def test_an_archived_item_keeps_granting_where_it_is_but_joins_no_other_subscription(api, workspace, acct, sso):
    # given: the add-on was on s1 before it was archived
    addon = plan(workspace, "sso-pack", {sso: "true"}, type="addon")
    subscribe(workspace, acct, "s1", [addon])
    subscribe(workspace, account(workspace, "globex"), "s2", [])
    item_archive(item=addon)
    # when
    kept = api.patch(f"{SUBSCRIPTIONS}/s1", {"status": "in_trial", "items": ["sso-pack"]}, format="json")
    added = api.patch(f"{SUBSCRIPTIONS}/s2", {"items": ["sso-pack"]}, format="json")
    created = api.post(SUBSCRIPTIONS, {"id": "s3", "account_id": "globex", "items": ["sso-pack"]}, format="json")
    # then
    assert (kept.status_code, kept.json()["items"], kept.json()["status"]) == (200, ["sso-pack"], "in_trial")
    assert _check(api) == (True, None)
    for response in (added, created):
        assert response.status_code == 400
        assert response.json()["error"]["message"] == (
            "Item 'sso-pack' is archived: it stays on the subscriptions that have it but joins no other; "
            "reactivate it first."
        )
    assert _items(workspace, "s2") == []
    assert not Subscription.objects.filter(external_id="s3").exists()


def test_reactivating_an_archived_item_lets_it_join_subscriptions_again(api, workspace, acct, sso):
    # given
    addon = item_archive(item=plan(workspace, "sso-pack", {sso: "true"}, type="addon"))
    assert (
        api.post(
            SUBSCRIPTIONS, {"id": "s1", "account_id": "acme-corp", "items": ["sso-pack"]}, format="json"
        ).status_code
        == 400
    )
    # when
    item_reactivate(item=addon)
    created = api.post(SUBSCRIPTIONS, {"id": "s1", "account_id": "acme-corp", "items": ["sso-pack"]}, format="json")
    # then
    assert (created.status_code, created.json()["items"]) == (201, ["sso-pack"])
    assert _check(api) == (True, None)


@time_machine.travel(FROZEN_NOW, tick=False)
def test_a_draft_item_already_on_a_subscription_grants_nothing_until_activated(api, workspace, acct, draft):
    # given: a subscription that got the draft item before drafts were refused
    subscription = subscribe(workspace, acct, "s1", [])
    subscription.items.add(draft)
    # when
    while_draft = (
        _check(api),
        api.get("/api/v1/accounts/acme-corp/entitlements").json()["entitlements"],
        api.post("/api/v1/usage/record", {"account_id": "acme-corp", "feature_id": "sso"}, format="json").json(),
    )
    item_activate(item=draft)
    once_active = (_check(api), api.get("/api/v1/accounts/acme-corp/entitlements").json()["entitlements"])
    # then
    check, listed, record = while_draft
    assert check == (False, "not_entitled")
    assert listed == []
    assert (record["recorded"], record["reason"]) == (False, "not_entitled")
    assert once_active[0] == (True, None)
    assert [(e["feature_id"], e["entitled"]) for e in once_active[1]] == [("sso", True)]


# ---------------------------------------------------------------------------------------------------------
# The admin: the same refusals, on the re-rendered form
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, workspace, staff_of):
    client.raise_request_exception = False
    client.force_login(staff_of(workspace, "admin"))
    return client


def _management(page: str) -> dict:
    prefix = re.search(r'name="([\w-]+)-TOTAL_FORMS"', page).group(1)
    return {
        f"{prefix}-TOTAL_FORMS": "0",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def _items_errors(response) -> list[str]:
    return list(response.context["adminform"].form.errors.get("items", []))


def test_the_admin_refuses_a_draft_item_on_a_new_subscription_and_saves_nothing(admin_client, acct, draft):
    # given
    url = "/admin/entitlements/subscription/add/"
    management = _management(admin_client.get(url).content.decode())
    # when
    response = admin_client.post(
        url, {"external_id": "s1", "account": acct.pk, "status": "active", "items": [draft.pk], **management}
    )
    # then
    assert response.status_code == 200
    assert _items_errors(response) == ["Item 'beta' is draft: activate it before putting it on a subscription."]
    assert Subscription.objects.count() == 0


def test_the_admin_refuses_adding_an_archived_item_and_keeps_the_subscription_as_it_was(
    admin_client, workspace, acct, sso
):
    # given
    team = plan(workspace, "team", {})
    legacy = item_archive(item=plan(workspace, "legacy", {sso: "true"}, type="addon"))
    subscription = subscribe(workspace, acct, "s1", [team])
    url = f"/admin/entitlements/subscription/{subscription.pk}/change/"
    management = _management(admin_client.get(url).content.decode())
    # when
    response = admin_client.post(url, {"status": "cancelled", "items": [team.pk, legacy.pk], **management})
    # then
    assert response.status_code == 200
    assert _items_errors(response) == [
        "Item 'legacy' is archived: it stays on the subscriptions that have it but joins no other; reactivate it first."
    ]
    subscription.refresh_from_db()
    assert (subscription.status, _items(workspace, "s1")) == ("active", ["team"])
