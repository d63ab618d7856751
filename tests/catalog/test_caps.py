"""A cap is one rule with one message whichever path creates the feature: the admin, REST or an event."""

import pytest

from accounts.services import workspace_update
from catalog.models import Feature
from catalog.services import feature_create

from .test_admin import FEATURE_ADD, AdminFormClient, _feature_post

CAP_MESSAGE = "This workspace has reached its cap of 1 features (max_features); raise the cap to add more."


@pytest.fixture
def full_workspace(workspace, product):
    workspace_update(workspace=workspace, caps={"max_features": 1})
    feature_create(workspace=workspace, key="one", name="One", product=product)
    return workspace


def test_the_admin_reaches_the_feature_cap_with_the_cap_message(full_workspace, product, staff_of):
    # given
    client = AdminFormClient()
    client.force_login(staff_of(full_workspace, "owner"))
    # when
    response = client.post(FEATURE_ADD, _feature_post(product))
    # then
    assert response.status_code == 200
    assert list(response.context["adminform"].form.non_field_errors()) == [CAP_MESSAGE]
    assert list(Feature.objects.values_list("key", flat=True)) == ["one"]


def test_rest_reaches_the_feature_cap_with_the_cap_message(full_workspace, product, api):
    # when
    response = api.post("/api/v1/features", {"id": "two", "name": "Two", "product_id": "default"}, format="json")
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "feature_cap_reached", "message": CAP_MESSAGE}
    assert list(Feature.objects.values_list("key", flat=True)) == ["one"]


def test_an_event_reaches_the_feature_cap_with_the_cap_message(full_workspace, product, api):
    # when
    response = api.post("/api/v1/events", {"account_id": "acc-1", "feature_id": "two", "quantity": 1}, format="json")
    # then
    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {"index": 0, "code": "feature_cap_reached", "message": CAP_MESSAGE, "field": "feature_id"}
    ]
    assert list(Feature.objects.values_list("key", flat=True)) == ["one"]
