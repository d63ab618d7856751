"""Catalog rules: lifecycle, levels per type, caps, case-sensitive names, immutable keys, resource_version."""

import pytest
from django.db import IntegrityError, transaction

from accounts.services import workspace_update
from catalog.models import Feature, FeatureLevel, Item, Module, Product
from catalog.services import (
    LifecycleError,
    feature_activate,
    feature_archive,
    feature_create,
    feature_reactivate,
    feature_transition,
    feature_update,
    item_activate,
    item_archive,
    item_create,
    item_reactivate,
    item_transition,
    item_update,
    module_create,
    module_update,
    product_create,
    product_update,
)
from core.errors import CapReached, Conflict, DomainError

# ---------------------------------------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------------------------------------


def test_allowed_moves_draft_active_archived_active(workspace, product):
    # given
    feature = feature_create(workspace=workspace, key="export", name="Export", product=product)
    # when
    statuses = [feature.status]
    for move in (feature_activate, feature_archive, feature_reactivate, feature_archive):
        feature = move(feature=feature)
        statuses.append(Feature.objects.get(pk=feature.pk).status)
    # then
    assert statuses == ["draft", "active", "archived", "active", "archived"]


@pytest.mark.parametrize(
    ("path", "target", "message"),
    [
        ([], "archived", "Feature 'f' cannot move from draft to archived."),
        ([], "draft", "Feature 'f' is already draft."),
        (["active"], "draft", "Feature 'f' cannot move from active to draft (nothing returns to draft)."),
        (["active"], "active", "Feature 'f' is already active."),
        (["active", "archived"], "draft", "Feature 'f' cannot move from archived to draft (nothing returns to draft)."),
        (["active", "archived"], "archived", "Feature 'f' is already archived."),
        ([], "deleted", "Unknown status 'deleted'."),
    ],
)
def test_refused_feature_moves_say_why_and_change_nothing(workspace, product, path, target, message):
    # given
    feature = feature_create(workspace=workspace, key="f", name="F", product=product)
    for status in path:
        feature = feature_transition(feature=feature, to_status=status)
    before = Feature.objects.values_list("status", "resource_version").get(pk=feature.pk)
    # when
    with pytest.raises(LifecycleError) as err:
        feature_transition(feature=feature, to_status=target)
    # then
    assert err.value.message == message
    assert err.value.status_code == 409
    assert Feature.objects.values_list("status", "resource_version").get(pk=feature.pk) == before


def test_activate_refuses_archived_and_reactivate_refuses_draft(workspace):
    # given
    draft = item_create(workspace=workspace, key="team", name="Team")
    archived = item_archive(item=item_activate(item=item_create(workspace=workspace, key="old", name="Old")))
    # when / then
    with pytest.raises(LifecycleError, match="Only archived items can be reactivated; 'team' is draft."):
        item_reactivate(item=draft)
    with pytest.raises(LifecycleError, match="Item 'old' is archived: reactivate it instead."):
        item_activate(item=archived)
    assert dict(Item.objects.values_list("key", "status")) == {"team": "draft", "old": "archived"}


@pytest.mark.parametrize(("table", "model"), [("catalog_feature", Feature), ("catalog_item", Item)])
@pytest.mark.parametrize(("start", "target"), [("active", "draft"), ("archived", "draft"), ("draft", "archived")])
def test_raw_sql_update_of_a_refused_move_is_refused_by_the_trigger(workspace, product, table, model, start, target):
    # given
    if model is Feature:
        obj = feature_create(workspace=workspace, key="k", name="K", product=product)
    else:
        obj = item_create(workspace=workspace, key="k", name="K")
    for status in {"draft": [], "active": ["active"], "archived": ["active", "archived"]}[start]:
        obj = (
            feature_transition(feature=obj, to_status=status)
            if model is Feature
            else item_transition(item=obj, to_status=status)
        )
    # when / then
    with pytest.raises(IntegrityError, match=f"lifecycle move {start} -> {target} is not allowed"):
        with transaction.atomic(), transaction.get_connection().cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET status = %s WHERE id = %s", [target, obj.pk])
    assert model.objects.get(pk=obj.pk).status == start


# ---------------------------------------------------------------------------------------------------------
# Levels per type
# ---------------------------------------------------------------------------------------------------------

BAD_LEVELS = [
    ("switch", [{"value": "1"}], "A switch feature has no levels."),
    ("quantity", [], "A quantity feature needs levels."),
    ("custom", [], "A custom feature needs levels."),
    ("range", [], "A range feature needs levels."),
    (
        "quantity",
        [{"value": "ten"}],
        "Level value 'ten' of a quantity feature must be a whole number from 0 to 9223372036854775807 "
        "(or an unlimited level).",
    ),
    ("quantity", [{"value": "10"}, {"value": "5"}], "Level values must increase strictly."),
    ("quantity", [{"value": "5"}, {"value": "5", "name": "Again"}], "Level values must be distinct."),
    (
        "quantity",
        [{"value": "unlimited", "is_unlimited": True}, {"value": "5"}],
        "Only the last level may be unlimited.",
    ),
    (
        "quantity",
        [{"value": "unlimited"}],
        "The value 'unlimited' is reserved for an unlimited level (set is_unlimited).",
    ),
    (
        "quantity",
        [{"value": "-1"}],
        "Level value '-1' of a quantity feature must be a whole number from 0 to 9223372036854775807 "
        "(or an unlimited level).",
    ),
    ("range", [{"value": "1"}], "A range feature has exactly two levels: the minimum and the maximum."),
    (
        "range",
        [{"value": "1"}, {"value": "5"}, {"value": "9"}],
        "A range feature has exactly two levels: the minimum and the maximum.",
    ),
    ("range", [{"value": "9"}, {"value": "1"}], "Level values must increase strictly."),
    ("custom", [{"value": "gold", "is_unlimited": True}], "An unlimited level's value is 'unlimited'."),
    ("custom", [{"value": "a", "name": "Same"}, {"value": "b", "name": "Same"}], "Level names must be distinct."),
    ("custom", [{"value": ""}], "Each level needs a non-empty string 'value'."),
    ("custom", [{"value": "a", "colour": "red"}], "Unknown level field(s): colour."),
    ("dial", [], "Unknown feature type 'dial': use switch, custom, quantity or range."),
]


@pytest.mark.parametrize(("feature_type", "levels", "message"), BAD_LEVELS)
def test_bad_levels_are_refused_with_a_message_and_nothing_is_stored(workspace, product, feature_type, levels, message):
    # when
    with pytest.raises(DomainError) as err:
        feature_create(workspace=workspace, key="f", name="F", product=product, type=feature_type, levels=levels)
    # then
    assert err.value.message == message
    assert Feature.objects.count() == 0
    assert FeatureLevel.objects.count() == 0


@pytest.mark.parametrize(
    ("feature_type", "levels", "stored"),
    [
        ("switch", [], []),
        (
            "quantity",
            [{"value": "5"}, {"value": "50", "name": "Fifty"}, {"is_unlimited": True, "name": "No limit"}],
            [("5", "5", False), ("50", "Fifty", False), ("unlimited", "No limit", True)],
        ),
        (
            "range",
            [{"value": "1", "name": "Min"}, {"value": "100", "name": "Max"}],
            [("1", "Min", False), ("100", "Max", False)],
        ),
        (
            "range",
            [{"value": "0", "name": "Min"}, {"is_unlimited": True, "name": "Max"}],
            [("0", "Min", False), ("unlimited", "Max", True)],
        ),
        (
            "custom",
            [{"value": "eu", "name": "EU"}, {"value": "us", "name": "US"}],
            [("eu", "EU", False), ("us", "US", False)],
        ),
    ],
)
def test_good_levels_are_stored_in_order(workspace, product, feature_type, levels, stored):
    # when
    feature = feature_create(workspace=workspace, key="f", name="F", product=product, type=feature_type, levels=levels)
    # then
    assert list(feature.levels.values_list("value", "name", "is_unlimited")) == stored
    assert list(feature.levels.values_list("position", flat=True)) == list(range(len(stored)))


def test_a_bad_level_change_leaves_the_old_levels(workspace, product):
    # given
    feature = feature_create(
        workspace=workspace,
        key="seats",
        name="Seats",
        product=product,
        type="quantity",
        levels=[{"value": "5"}, {"value": "10"}],
    )
    version = feature.resource_version
    # when
    with pytest.raises(DomainError, match="Level values must increase strictly."):
        feature_update(feature=feature, levels=[{"value": "10"}, {"value": "5"}])
    # then
    assert list(feature.levels.values_list("value", flat=True)) == ["5", "10"]
    assert Feature.objects.get(pk=feature.pk).resource_version == version


def test_metering_needs_a_quantity_or_range_feature(workspace, product):
    # when
    with pytest.raises(DomainError) as err:
        feature_create(workspace=workspace, key="sso", name="SSO", product=product, metered=True, reset_period="month")
    # then
    assert (err.value.message, err.value.field) == ("Only quantity and range features can be metered.", "metered")
    assert Feature.objects.count() == 0


# ---------------------------------------------------------------------------------------------------------
# Caps
# ---------------------------------------------------------------------------------------------------------


def test_feature_cap_refuses_the_third_feature(workspace, product):
    # given
    workspace_update(workspace=workspace, caps={"max_features": 2})
    feature_create(workspace=workspace, key="a", name="A", product=product)
    feature_create(workspace=workspace, key="b", name="B", product=product)
    # when
    with pytest.raises(CapReached) as err:
        feature_create(workspace=workspace, key="c", name="C", product=product)
    # then
    assert err.value.message == (
        "This workspace has reached its cap of 2 features (max_features); raise the cap to add more."
    )
    assert (err.value.code, err.value.status_code) == ("feature_cap_reached", 409)
    assert Feature.objects.filter(workspace=workspace).count() == 2


def test_module_cap_refuses_the_third_module(workspace, product):
    # given
    workspace_update(workspace=workspace, caps={"max_modules": 2})
    module_create(workspace=workspace, product=product, key="a")
    module_create(workspace=workspace, product=product, key="b")
    # when
    with pytest.raises(CapReached) as err:
        module_create(workspace=workspace, product=product, key="c")
    # then
    assert err.value.message == (
        "This workspace has reached its cap of 2 modules (max_modules); raise the cap to add more."
    )
    assert err.value.code == "module_cap_reached"
    assert Module.objects.filter(workspace=workspace).count() == 2


def test_product_cap_refuses_the_third_product(workspace):
    # given
    workspace_update(workspace=workspace, caps={"max_products": 2})
    product_create(workspace=workspace, key="a")
    product_create(workspace=workspace, key="b")
    # when
    with pytest.raises(CapReached) as err:
        product_create(workspace=workspace, key="c")
    # then
    assert err.value.message == (
        "This workspace has reached its cap of 2 products (max_products); raise the cap to add more."
    )
    assert Product.objects.filter(workspace=workspace).count() == 2


def test_caps_are_per_workspace(workspace, other_workspace, product):
    # given
    workspace_update(workspace=workspace, caps={"max_features": 1})
    feature_create(workspace=workspace, key="a", name="A", product=product)
    other_product = product_create(workspace=other_workspace, key="default")
    # when
    feature = feature_create(workspace=other_workspace, key="a", name="A", product=other_product)
    # then
    assert feature.workspace_id == other_workspace.pk
    assert Feature.objects.count() == 2


def test_default_caps(workspace):
    assert (workspace.max_features, workspace.max_modules, workspace.max_products) == (400, 256, 64)


# ---------------------------------------------------------------------------------------------------------
# Names and keys
# ---------------------------------------------------------------------------------------------------------


def test_names_are_unique_case_sensitively(workspace, product):
    # given
    feature_create(workspace=workspace, key="export-a", name="Export", product=product)
    # when
    lower = feature_create(workspace=workspace, key="export-b", name="export", product=product)
    with pytest.raises(Conflict) as err:
        feature_create(workspace=workspace, key="export-c", name="Export", product=product)
    # then
    assert lower.name == "export"
    assert (err.value.message, err.value.field) == ("Another feature is already named 'Export'.", "name")
    assert sorted(Feature.objects.values_list("name", flat=True)) == ["Export", "export"]


def test_renaming_onto_a_taken_name_is_refused(workspace, product):
    # given
    feature_create(workspace=workspace, key="a", name="Export", product=product)
    other = feature_create(workspace=workspace, key="b", name="Import", product=product)
    # when
    with pytest.raises(Conflict, match="Another feature is already named 'Export'."):
        feature_update(feature=other, name="Export")
    # then
    assert Feature.objects.get(pk=other.pk).name == "Import"


def test_item_names_are_unique_case_sensitively(workspace):
    # given
    item_create(workspace=workspace, key="team", name="Team")
    # when
    item_create(workspace=workspace, key="team-lower", name="team")
    with pytest.raises(Conflict, match="Another item is already named 'Team'."):
        item_create(workspace=workspace, key="team-2", name="Team")
    # then
    assert Item.objects.count() == 2


def test_duplicate_keys_are_refused(workspace, product):
    # given
    feature_create(workspace=workspace, key="export", name="Export", product=product)
    # when
    with pytest.raises(Conflict) as err:
        feature_create(workspace=workspace, key="export", name="Other", product=product)
    # then
    assert (err.value.message, err.value.code) == ("A feature with key 'export' already exists.", "feature_exists")
    assert Feature.objects.count() == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "'id' is required and must be a non-empty string."),
        (
            "has space",
            "'id' may contain only letters, digits, '_', '.', ':' and '-', and must start with a letter or digit.",
        ),
        (
            "-lead",
            "'id' may contain only letters, digits, '_', '.', ':' and '-', and must start with a letter or digit.",
        ),
        ("k" * 65, "'id' is at most 64 characters."),
    ],
)
def test_bad_keys_are_refused(workspace, product, key, message):
    # when
    with pytest.raises(DomainError) as err:
        feature_create(workspace=workspace, key=key, name="N", product=product)
    # then
    assert err.value.message == message
    assert Feature.objects.count() == 0


def test_the_services_offer_no_way_to_change_a_key():
    # The update services take no key argument: a key is fixed at creation.
    import inspect

    for update in (product_update, module_update, feature_update, item_update):
        assert "key" not in inspect.signature(update).parameters


@pytest.mark.parametrize("table", ["catalog_product", "catalog_module", "catalog_feature", "catalog_item"])
def test_raw_sql_key_change_is_refused_by_the_trigger(workspace, product, table):
    # given
    module = module_create(workspace=workspace, product=product, key="mod")
    feature = feature_create(workspace=workspace, key="feat", name="Feat", product=product, module=module)
    item = item_create(workspace=workspace, key="item", name="Item")
    obj = {"catalog_product": product, "catalog_module": module, "catalog_feature": feature, "catalog_item": item}[
        table
    ]
    # when / then
    with pytest.raises(IntegrityError, match="catalog keys are immutable"):
        with transaction.atomic(), transaction.get_connection().cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET key = 'renamed' WHERE id = %s", [obj.pk])
    assert type(obj).objects.get(pk=obj.pk).key == obj.key


# ---------------------------------------------------------------------------------------------------------
# resource_version
# ---------------------------------------------------------------------------------------------------------


def test_resource_version_moves_forward_on_every_change(workspace, product):
    # given
    feature = feature_create(
        workspace=workspace, key="seats", name="Seats", product=product, type="quantity", levels=[{"value": "5"}]
    )
    versions = [feature.resource_version]
    # when
    changes = [
        lambda f: feature_update(feature=f, name="Seat count"),
        lambda f: feature_update(feature=f, levels=[{"value": "5"}, {"value": "10"}]),
        lambda f: feature_update(feature=f, unit="seat"),
        lambda f: feature_activate(feature=f),
        lambda f: feature_archive(feature=f),
        lambda f: feature_reactivate(feature=f),
    ]
    for change in changes:
        feature = change(feature)
        versions.append(Feature.objects.get(pk=feature.pk).resource_version)
    # then
    assert len(versions) == 7
    assert all(later > earlier for earlier, later in zip(versions, versions[1:], strict=False))


def test_resource_version_moves_forward_for_products_modules_and_items(workspace, product):
    # given
    module = module_create(workspace=workspace, product=product, key="mod")
    item = item_create(workspace=workspace, key="team", name="Team")
    before = (product.resource_version, module.resource_version, item.resource_version)
    # when
    product_update(product=product, name="Renamed")
    module_update(module=module, description="Reporting")
    item_update(item=item, name="Team plan")
    # then
    after = (
        Product.objects.get(pk=product.pk).resource_version,
        Module.objects.get(pk=module.pk).resource_version,
        Item.objects.get(pk=item.pk).resource_version,
    )
    assert all(a > b for a, b in zip(after, before, strict=True))


def test_the_type_is_fixed_once_a_feature_is_active(workspace, product):
    # given
    feature = feature_activate(feature=feature_create(workspace=workspace, key="sso", name="SSO", product=product))
    # when
    with pytest.raises(DomainError) as err:
        feature_update(feature=feature, type="quantity", levels=[{"value": "1"}])
    # then
    assert err.value.message == "The type of active feature 'sso' cannot change."
    assert Feature.objects.get(pk=feature.pk).type == "switch"
    assert FeatureLevel.objects.count() == 0
