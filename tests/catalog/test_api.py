import pytest

from catalog.models import Feature, FeatureLevel, Item
from entitlements.models import ItemEntitlement, Subscription, SubscriptionEntitlement
from tests.entitlements.factories import account

pytestmark = pytest.mark.django_db

FEATURE = {
    "id": "api-calls",
    "name": "API calls",
    "product_id": "default",
    "type": "quantity",
    "unit": "call",
    "levels": [
        {"value": "1000", "name": "1k"},
        {"value": "unlimited", "name": "Unlimited", "is_unlimited": True},
    ],
    "metered": True,
    "reset_period": "month",
    "reset_anchor": "term",
}


def test_feature_is_created_listed_filtered_and_moved_through_its_lifecycle(api, product):
    # when
    created = api.post("/api/v1/features", FEATURE, format="json")
    activated = api.post("/api/v1/features/api-calls/activate")
    api.post("/api/v1/features", {"id": "sso", "name": "SSO", "product_id": "default"}, format="json")
    active = api.get("/api/v1/features", {"status": "active"})
    # then
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in ("id", "status", "type", "unit_plural", "metered", "reset_anchor", "module_id")} == {
        "id": "api-calls",
        "status": "draft",
        "type": "quantity",
        "unit_plural": "calls",
        "metered": True,
        "reset_anchor": "term",
        "module_id": None,
    }
    assert body["levels"] == [
        {"value": "1000", "name": "1k", "is_unlimited": False},
        {"value": "unlimited", "name": "Unlimited", "is_unlimited": True},
    ]
    assert activated.json()["status"] == "active"
    assert active.json()["count"] == 1
    assert [f["id"] for f in active.json()["results"]] == ["api-calls"]


def test_lifecycle_errors_name_the_rule(api, product):
    # given
    api.post("/api/v1/features", {"id": "sso", "name": "SSO", "product_id": "default"}, format="json")
    # when
    response = api.post("/api/v1/features/sso/reactivate")
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert "Only archived features can be reactivated" in response.json()["error"]["message"]
    assert Feature.objects.get(key="sso").status == "draft"


def test_feature_with_bad_levels_is_refused_and_nothing_is_stored(api, product):
    # when
    response = api.post("/api/v1/features", {**FEATURE, "levels": [{"value": "ten", "name": "x"}]}, format="json")
    # then
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "levels[0].value"
    assert Feature.objects.count() == 0
    assert FeatureLevel.objects.count() == 0


def test_feature_with_unknown_product_names_the_field(api, product):
    # when
    response = api.post("/api/v1/features", {**FEATURE, "product_id": "nope"}, format="json")
    # then
    assert (response.status_code, response.json()["error"]["field"]) == (400, "product_id")
    assert Feature.objects.count() == 0


def test_products_modules_and_items_round_trip(api, workspace):
    # when
    api.post("/api/v1/products", {"id": "app", "name": "App"}, format="json")
    module = api.post("/api/v1/modules", {"id": "reports", "name": "Reports", "product_id": "app"}, format="json")
    item = api.post("/api/v1/items", {"id": "team", "name": "Team", "type": "plan"}, format="json")
    renamed = api.patch("/api/v1/items/team", {"name": "Team plan"}, format="json")
    archived = api.post("/api/v1/items/team/activate") and api.post("/api/v1/items/team/archive")
    # then
    assert module.json() == {
        "id": "reports",
        "name": "Reports",
        "description": "",
        "product_id": "app",
        "resource_version": module.json()["resource_version"],
    }
    assert item.status_code == 201
    assert renamed.json()["name"] == "Team plan"
    assert archived.json()["status"] == "archived"
    assert api.get("/api/v1/modules", {"product_id": "app"}).json()["count"] == 1
    assert api.get("/api/v1/items", {"status": "draft"}).json()["count"] == 0


def test_read_scope_reads_and_cannot_write(workspace, make_client, product):
    # given
    reader = make_client(workspace, "read")
    # when
    listed = reader.get("/api/v1/products")
    refused = reader.post("/api/v1/items", {"id": "team", "name": "Team"}, format="json")
    # then
    assert (listed.status_code, listed.json()["count"]) == (200, 1)
    assert refused.status_code == 403
    assert "admin" in refused.json()["error"]["message"]
    assert Item.objects.count() == 0


def test_item_and_subscription_entitlements_over_rest(api, workspace, product):
    # given
    account(workspace, "acme-corp")
    api.post("/api/v1/features", FEATURE, format="json")
    api.post("/api/v1/features/api-calls/activate")
    api.post("/api/v1/items", {"id": "team", "name": "Team", "type": "plan"}, format="json")
    api.post("/api/v1/items/team/activate")
    # when
    put = api.put("/api/v1/items/team/entitlements/api-calls", {"value": "1000"}, format="json")
    bad = api.put("/api/v1/items/team/entitlements/api-calls", {"value": "999"}, format="json")
    sub = api.post(
        "/api/v1/subscriptions",
        {
            "id": "sub-1",
            "account_id": "acme-corp",
            "status": "active",
            "items": ["team"],
            "current_term_start": "2026-11-01T00:00:00Z",
            "current_term_end": "2026-12-01T00:00:00Z",
        },
        format="json",
    )
    override = api.put(
        "/api/v1/subscriptions/sub-1/entitlements/api-calls",
        {"value": "unlimited", "expires_at": "2030-01-01T00:00:00Z"},
        format="json",
    )
    check = api.get("/api/v1/entitlements/check", {"account_id": "acme-corp", "feature_id": "api-calls"})
    listing = api.get("/api/v1/accounts/acme-corp/entitlements")
    # then
    assert put.json() == {"item_id": "team", "feature_id": "api-calls", "value": "1000"}
    assert (bad.status_code, bad.json()["error"]["field"], bad.json()["error"]["code"]) == (
        400,
        "value",
        "invalid_value",
    )
    assert ItemEntitlement.objects.get().value == "1000"
    assert sub.status_code == 201
    assert sub.json() == {
        "id": "sub-1",
        "account_id": "acme-corp",
        "status": "active",
        "items": ["team"],
        "current_term_start": "2026-11-01T00:00:00Z",
        "current_term_end": "2026-12-01T00:00:00Z",
    }
    assert override.json() == {
        "subscription_id": "sub-1",
        "feature_id": "api-calls",
        "value": "unlimited",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    assert (check.json()["value"], check.json()["unlimited"], check.json()["limit"]) == (
        "unlimited",
        True,
        None,
    )
    assert [e["feature_id"] for e in listing.json()["entitlements"]] == ["api-calls"]
    # when the override is removed, the item's value counts again
    assert api.delete("/api/v1/subscriptions/sub-1/entitlements/api-calls").status_code == 204
    after = api.get("/api/v1/entitlements/check", {"account_id": "acme-corp", "feature_id": "api-calls"}).json()
    assert (after["value"], after["limit"], after["used"], after["resets_at"]) == (
        "1000",
        1000,
        0,
        after["resets_at"],
    )
    assert SubscriptionEntitlement.objects.count() == 0


def test_subscription_refuses_unknown_account_and_item_and_stores_nothing(api, workspace):
    # given
    account(workspace, "acme-corp")
    # when
    no_account = api.post("/api/v1/subscriptions", {"id": "s", "account_id": "ghost"}, format="json")
    no_item = api.post(
        "/api/v1/subscriptions", {"id": "s", "account_id": "acme-corp", "items": ["gold"]}, format="json"
    )
    bad_status = api.post(
        "/api/v1/subscriptions", {"id": "s", "account_id": "acme-corp", "status": "paused"}, format="json"
    )
    # then
    assert (no_account.status_code, no_account.json()["error"]["field"]) == (400, "account_id")
    assert (no_item.status_code, no_item.json()["error"]["field"]) == (400, "items")
    assert (bad_status.status_code, bad_status.json()["error"]["field"]) == (400, "status")
    assert Subscription.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/products/default"),
        ("patch", "/api/v1/products/default"),
        ("get", "/api/v1/modules/reports"),
        ("get", "/api/v1/features/sso"),
        ("patch", "/api/v1/features/sso"),
        ("post", "/api/v1/features/sso/archive"),
        ("get", "/api/v1/items/team"),
        ("post", "/api/v1/items/team/archive"),
        ("get", "/api/v1/items/team/entitlements"),
        ("get", "/api/v1/items/team/entitlements/sso"),
        ("put", "/api/v1/items/team/entitlements/sso"),
        ("delete", "/api/v1/items/team/entitlements/sso"),
        ("get", "/api/v1/subscriptions/sub-1"),
        ("patch", "/api/v1/subscriptions/sub-1"),
        ("delete", "/api/v1/subscriptions/sub-1"),
        ("get", "/api/v1/subscriptions/sub-1/entitlements"),
        ("get", "/api/v1/subscriptions/sub-1/entitlements/sso"),
        ("put", "/api/v1/subscriptions/sub-1/entitlements/sso"),
        ("get", "/api/v1/accounts/acme-corp/entitlements"),
    ],
)
def test_other_workspaces_ids_answer_404(api, workspace, other_workspace, make_client, method, path):
    # given: everything exists in the other workspace only
    other = make_client(other_workspace)
    other.post("/api/v1/products", {"id": "default", "name": "Default"}, format="json")
    other.post("/api/v1/modules", {"id": "reports", "name": "Reports", "product_id": "default"}, format="json")
    other.post("/api/v1/features", {"id": "sso", "name": "SSO", "product_id": "default"}, format="json")
    other.post("/api/v1/features/sso/activate")
    other.post("/api/v1/items", {"id": "team", "name": "Team"}, format="json")
    other.post("/api/v1/items/team/activate")
    other.put("/api/v1/items/team/entitlements/sso", {"value": "true"}, format="json")
    account(other_workspace, "acme-corp")
    other.post("/api/v1/subscriptions", {"id": "sub-1", "account_id": "acme-corp", "items": ["team"]}, format="json")
    other.put("/api/v1/subscriptions/sub-1/entitlements/sso", {"value": "false"}, format="json")
    before = (
        ItemEntitlement.objects.count(),
        SubscriptionEntitlement.objects.count(),
        Subscription.objects.count(),
    )
    # when
    response = getattr(api, method)(path, {"value": "true"} if method in ("put", "patch") else None, format="json")
    # then
    assert response.status_code == 404, response.content
    assert (
        (
            ItemEntitlement.objects.count(),
            SubscriptionEntitlement.objects.count(),
            Subscription.objects.count(),
        )
        == before
        == (1, 1, 1)
    )


def test_check_in_another_workspace_does_not_see_the_account(api, other_workspace, make_client):
    # given
    other = make_client(other_workspace)
    other.post("/api/v1/products", {"id": "default", "name": "Default"}, format="json")
    other.post("/api/v1/features", {"id": "sso", "name": "SSO", "product_id": "default"}, format="json")
    account(other_workspace, "acme-corp")
    # when
    response = api.get("/api/v1/entitlements/check", {"account_id": "acme-corp", "feature_id": "sso"})
    # then
    assert (response.json()["entitled"], response.json()["reason"]) == (False, "unknown_feature")


def test_openapi_schema_lists_the_catalog_and_entitlement_paths(api):
    # when
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    # then
    assert response.status_code == 200
    paths = set(response.json()["paths"]) if response["Content-Type"].startswith("application/json") else set()
    for path in (
        "/api/v1/features/{key}/archive",
        "/api/v1/items/{key}/entitlements/{feature_key}",
        "/api/v1/subscriptions/{subscription_id}/entitlements/{feature_key}",
        "/api/v1/entitlements/check",
        "/api/v1/usage/record",
        "/api/v1/accounts/{account_id}/entitlements",
    ):
        assert path in paths


@pytest.mark.parametrize(("path", "method"), [("features", "patch"), ("items", "patch"), ("features", "put")])
def test_a_status_in_a_patch_is_refused_naming_the_lifecycle_endpoints_and_nothing_changes(api, product, path, method):
    # given
    if path == "features":
        api.post("/api/v1/features", {"id": "sso", "name": "SSO", "product_id": "default"}, format="json")
    else:
        api.post("/api/v1/items", {"id": "sso", "name": "SSO"}, format="json")
    model = Feature if path == "features" else Item
    before = model.objects.values("status", "name", "resource_version").get(key="sso")
    # when
    response = getattr(api, method)(f"/api/v1/{path}/sso", {"status": "active", "name": "Renamed"}, format="json")
    # then
    assert response.status_code == 400
    base = f"/api/v1/{path}/sso"
    error = {
        "code": "status_read_only",
        "message": f"'status' cannot be changed with PATCH or PUT: POST {base}/activate (draft → active), "
        f"{base}/archive (active → archived) or {base}/reactivate (archived → active).",
        "field": "status",
    }
    assert response.json() == {"error": error, "errors": [error]}
    assert model.objects.values("status", "name", "resource_version").get(key="sso") == before


def test_the_schema_documents_the_status_refusal_of_feature_and_item_patches(client):
    # when
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    # then
    for path in ("/api/v1/features/{key}", "/api/v1/items/{key}"):
        for method in ("patch", "put"):
            responses = schema["paths"][path][method]["responses"]
            assert sorted(responses) == [
                "200",
                "400",
                "401",
                "403",
                "404",
                "406",
                "409",
                "411",
                "413",
                "415",
                "429",
                "503",
            ]
            assert "status_read_only" in responses["400"]["description"]
            assert responses["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
