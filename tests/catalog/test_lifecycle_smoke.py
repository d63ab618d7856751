import pytest
from django.db import IntegrityError, transaction

from catalog.models import Feature, Lifecycle
from catalog.services import LifecycleError, feature_activate, feature_archive, feature_create, feature_reactivate


def test_feature_moves_along_the_lifecycle_and_never_back_to_draft(workspace, product):
    # given
    feature = feature_create(workspace=workspace, key="export", name="Export", product=product)
    versions = [feature.resource_version]
    # when
    for move in (feature_activate, feature_archive, feature_reactivate):
        feature = move(feature=feature)
        versions.append(feature.resource_version)
    # then
    assert feature.status == Lifecycle.ACTIVE
    assert versions == sorted(set(versions))
    with pytest.raises(LifecycleError) as err:
        from catalog.services import feature_transition

        feature_transition(feature=feature, to_status=Lifecycle.DRAFT)
    assert "nothing returns to draft" in err.value.message
    feature.refresh_from_db()
    assert feature.status == Lifecycle.ACTIVE


def test_raw_update_back_to_draft_is_refused_by_the_database(workspace, product):
    # given
    feature = feature_activate(feature=feature_create(workspace=workspace, key="sso", name="SSO", product=product))
    # when / then
    with pytest.raises(IntegrityError, match="lifecycle move active -> draft"), transaction.atomic():
        Feature.objects.filter(pk=feature.pk).update(status="draft")
    feature.refresh_from_db()
    assert feature.status == Lifecycle.ACTIVE
