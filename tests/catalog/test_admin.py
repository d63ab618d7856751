"""The catalog admin: saves through the services, lifecycle actions, read-only keys, workspace scoping."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client

from accounts.services import workspace_update
from catalog.models import Feature, FeatureLevel, Item, Lifecycle, Module, Product
from catalog.services import feature_activate, feature_create, item_create, product_create

FEATURE_ADD = "/admin/catalog/feature/add/"


def _level_formset(levels: list[tuple[str, str, bool]], *, initial: int = 0, extra: int = 2) -> dict:
    data = {
        "levels-TOTAL_FORMS": str(len(levels) + extra),
        "levels-INITIAL_FORMS": str(initial),
        "levels-MIN_NUM_FORMS": "0",
        "levels-MAX_NUM_FORMS": "1000",
    }
    for index, (value, name, unlimited) in enumerate(levels):
        data[f"levels-{index}-value"] = value
        data[f"levels-{index}-name"] = name
        if unlimited:
            data[f"levels-{index}-is_unlimited"] = "on"
    return data


def _feature_post(
    product: Product, levels=(("5", "Five", False), ("unlimited", "Unlimited", True)), **overrides
) -> dict:
    data = {
        "product": str(product.pk),
        "module": "",
        "key": "seats",
        "name": "Seats",
        "description": "",
        "type": "quantity",
        "unit": "seat",
        "reset_period": "none",
        "reset_anchor": "calendar",
        **_level_formset(list(levels)),
    }
    data.update(overrides)
    return data


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(username="root", email="root@example.com", password="pw-root-1")


class AdminFormClient(Client):
    """Posts admin forms as a browser would: inline formsets the test does not fill (e.g. read-only inlines other
    apps attach) get the management data the page rendered."""

    def post(self, path, data=None, *args, **kwargs):
        if data is not None and path.endswith(("/add/", "/change/")):
            page = self.get(path)
            for inline in (page.context or {}).get("inline_admin_formsets", []) if page.status_code == 200 else []:
                formset = inline.formset
                if f"{formset.prefix}-TOTAL_FORMS" in data:
                    continue
                data = {
                    **data,
                    f"{formset.prefix}-TOTAL_FORMS": str(formset.initial_form_count()),
                    f"{formset.prefix}-INITIAL_FORMS": str(formset.initial_form_count()),
                    f"{formset.prefix}-MIN_NUM_FORMS": "0",
                    f"{formset.prefix}-MAX_NUM_FORMS": "1000",
                }
                for index, form in enumerate(formset.initial_forms):
                    data[f"{formset.prefix}-{index}-id"] = str(form.instance.pk)
        return super().post(path, data, *args, **kwargs)


@pytest.fixture
def admin_client_as(db):
    def login(user) -> Client:
        client = AdminFormClient()
        client.force_login(user)
        return client

    return login


# ---------------------------------------------------------------------------------------------------------
# Saving through the services
# ---------------------------------------------------------------------------------------------------------


def test_adding_a_feature_in_the_admin_stores_it_with_its_levels_as_draft(
    workspace, product, staff_of, admin_client_as
):
    # given
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    response = client.post(FEATURE_ADD, _feature_post(product))
    # then
    assert response.status_code == 302
    feature = Feature.objects.get(workspace=workspace, key="seats")
    assert (feature.status, feature.type, feature.unit, feature.product_id) == ("draft", "quantity", "seat", product.pk)
    assert feature.resource_version > 0
    assert list(feature.levels.values_list("position", "value", "name", "is_unlimited")) == [
        (0, "5", "Five", False),
        (1, "unlimited", "Unlimited", True),
    ]


def test_bad_levels_in_the_admin_show_the_service_message_and_store_nothing(
    workspace, product, staff_of, admin_client_as
):
    # given: a range feature needs exactly two levels
    client = admin_client_as(staff_of(workspace, "admin"))
    data = _feature_post(product, type="range", levels=[("1", "One", False)])
    # when
    response = client.post(FEATURE_ADD, data)
    # then
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert list(errors) == ["A range feature has exactly two levels: the minimum and the maximum."]
    assert Feature.objects.count() == 0
    assert FeatureLevel.objects.count() == 0


def test_feature_cap_in_the_admin_is_a_form_error_and_nothing_is_stored(workspace, product, staff_of, admin_client_as):
    # given
    workspace_update(workspace=workspace, caps={"max_features": 1})
    feature_create(workspace=workspace, key="one", name="One", product=product)
    client = admin_client_as(staff_of(workspace, "owner"))
    # when
    response = client.post(FEATURE_ADD, _feature_post(product))
    # then
    assert response.status_code == 200
    assert list(response.context["adminform"].form.non_field_errors()) == [
        "This workspace has reached its cap of 1 features (max_features); raise the cap to add more."
    ]
    assert list(Feature.objects.values_list("key", flat=True)) == ["one"]


def test_duplicate_name_in_the_admin_is_an_error_on_the_name_field(workspace, product, staff_of, admin_client_as):
    # given
    feature_create(workspace=workspace, key="export", name="Export", product=product)
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    response = client.post(FEATURE_ADD, _feature_post(product, key="export2", name="Export"))
    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["Another feature is already named 'Export'."]
    assert Feature.objects.count() == 1


def test_changing_a_feature_in_the_admin_bumps_its_version_and_keeps_key_and_status(
    workspace, product, staff_of, admin_client_as
):
    # given
    feature = feature_activate(
        feature=feature_create(
            workspace=workspace, key="seats", name="Seats", product=product, type="quantity", levels=[{"value": "5"}]
        )
    )
    before = feature.resource_version
    client = admin_client_as(staff_of(workspace, "admin"))
    level = feature.levels.get()
    data = _feature_post(product, levels=[], key="hacked", status="draft", type="switch", name="Seats (per workspace)")
    data.update(_level_formset([("5", "Five", False), ("10", "Ten", False)], initial=1))
    data["levels-0-id"] = str(level.pk)
    data["levels-0-feature"] = str(feature.pk)
    # when
    response = client.post(f"/admin/catalog/feature/{feature.pk}/change/", data)
    # then: key, status and (non-draft) type are read-only; the rest went through feature_update
    assert response.status_code == 302
    feature.refresh_from_db()
    assert (feature.key, feature.status, feature.type, feature.name) == (
        "seats",
        "active",
        "quantity",
        "Seats (per workspace)",
    )
    assert feature.resource_version > before
    assert list(feature.levels.values_list("value", "name")) == [("5", "Five"), ("10", "Ten")]


def test_adding_a_product_and_module_in_the_admin_goes_through_the_services(workspace, staff_of, admin_client_as):
    # given
    workspace_update(workspace=workspace, caps={"max_modules": 1})
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    product_response = client.post(
        "/admin/catalog/product/add/", {"workspace": workspace.pk, "key": "core", "name": "Core", "description": ""}
    )
    product = Product.objects.get(key="core")
    first = client.post(
        "/admin/catalog/module/add/", {"product": product.pk, "key": "billing", "name": "Billing", "description": ""}
    )
    second = client.post(
        "/admin/catalog/module/add/", {"product": product.pk, "key": "reports", "name": "Reports", "description": ""}
    )
    # then
    assert (product_response.status_code, first.status_code, second.status_code) == (302, 302, 200)
    assert product.resource_version > 0
    assert list(Module.objects.values_list("key", flat=True)) == ["billing"]
    assert list(second.context["adminform"].form.non_field_errors()) == [
        "This workspace has reached its cap of 1 modules (max_modules); raise the cap to add more."
    ]


def test_a_key_cannot_be_changed_in_the_admin(workspace, product, staff_of, admin_client_as):
    # given
    item = item_create(workspace=workspace, key="team", name="Team")
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    response = client.post(
        f"/admin/catalog/item/{item.pk}/change/",
        {"workspace": workspace.pk, "key": "pro", "type": "addon", "name": "Team plan", "description": ""},
    )
    # then
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.key, item.type, item.name) == ("team", "plan", "Team plan")
    form = client.get(f"/admin/catalog/item/{item.pk}/change/").context["adminform"].form
    assert "key" not in form.fields
    assert "status" not in form.fields


# ---------------------------------------------------------------------------------------------------------
# Lifecycle actions
# ---------------------------------------------------------------------------------------------------------


def _action(client: Client, model: str, action: str, objects) -> object:
    return client.post(
        f"/admin/catalog/{model}/",
        {"action": action, "_selected_action": [obj.pk for obj in objects]},
        follow=True,
    )


def test_lifecycle_actions_move_what_they_may_and_report_each_refusal(workspace, product, staff_of, admin_client_as):
    # given
    draft = feature_create(workspace=workspace, key="draft-one", name="Draft one", product=product)
    active = feature_activate(feature=feature_create(workspace=workspace, key="live", name="Live", product=product))
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    response = _action(client, "feature", "activate", [draft, active])
    # then
    assert _messages(response) == ["Feature 'live' is already active.", "1 feature(s) activated."]
    draft.refresh_from_db()
    assert draft.status == Lifecycle.ACTIVE
    # when: archive both, then try to reactivate and to archive again
    _action(client, "feature", "archive", [draft, active])
    response = _action(client, "feature", "archive", [draft])
    # then
    assert _messages(response) == ["Feature 'draft-one' is already archived."]
    response = _action(client, "feature", "reactivate", [draft])
    assert _messages(response) == ["1 feature(s) reactivated."]
    assert dict(Feature.objects.values_list("key", "status")) == {"draft-one": "active", "live": "archived"}


def test_reactivating_a_draft_item_is_refused_with_a_message(workspace, staff_of, admin_client_as):
    # given
    item = item_create(workspace=workspace, key="team", name="Team")
    version = item.resource_version
    client = admin_client_as(staff_of(workspace, "owner"))
    # when
    response = _action(client, "item", "reactivate", [item])
    # then
    assert _messages(response) == ["Only archived items can be reactivated; 'team' is draft."]
    item.refresh_from_db()
    assert (item.status, item.resource_version) == ("draft", version)


def test_a_viewer_sees_the_catalog_but_cannot_change_it(workspace, product, staff_of, admin_client_as):
    # given
    feature = feature_create(workspace=workspace, key="sso", name="SSO", product=product)
    client = admin_client_as(staff_of(workspace, "viewer"))
    # when
    listing = client.get("/admin/catalog/feature/")
    change = client.post(f"/admin/catalog/feature/{feature.pk}/change/", _feature_post(product, name="Renamed"))
    add = client.post(FEATURE_ADD, _feature_post(product))
    action = _action(client, "feature", "activate", [feature])
    # then
    assert listing.status_code == 200
    assert [f.key for f in listing.context["cl"].result_list] == ["sso"]
    assert change.status_code == 403
    assert add.status_code == 403
    assert action.status_code == 200
    feature.refresh_from_db()
    assert (feature.name, feature.status, Feature.objects.count()) == ("SSO", "draft", 1)


# ---------------------------------------------------------------------------------------------------------
# Workspace scoping
# ---------------------------------------------------------------------------------------------------------


def test_staff_of_one_workspace_neither_see_nor_change_another_workspaces_catalog(
    workspace, other_workspace, product, staff_of, admin_client_as
):
    # given
    mine = feature_create(workspace=workspace, key="mine", name="Mine", product=product)
    their_product = product_create(workspace=other_workspace, key="default", name="Theirs")
    theirs = feature_create(workspace=other_workspace, key="theirs", name="Theirs", product=their_product)
    their_item = item_create(workspace=other_workspace, key="gold", name="Gold")
    client = admin_client_as(staff_of(workspace, "owner"))
    # when
    listing = client.get("/admin/catalog/feature/")
    products = client.get("/admin/catalog/product/")
    change_page = client.get(f"/admin/catalog/feature/{theirs.pk}/change/")
    change_post = client.post(f"/admin/catalog/feature/{theirs.pk}/change/", _feature_post(their_product, name="Pwned"))
    item_post = client.post(f"/admin/catalog/item/{their_item.pk}/change/", {"name": "Pwned", "description": ""})
    action = _action(client, "feature", "activate", [theirs])
    add_form = client.get(FEATURE_ADD).context["adminform"].form
    # then
    assert [f.key for f in listing.context["cl"].result_list] == [mine.key]
    assert [p.workspace_id for p in products.context["cl"].result_list] == [workspace.pk]
    assert (change_page.status_code, change_post.status_code, item_post.status_code) == (404, 404, 404)
    assert list(add_form.fields["product"].queryset) == [product]
    theirs.refresh_from_db()
    their_item.refresh_from_db()
    assert (theirs.name, theirs.status, their_item.name) == ("Theirs", "draft", "Gold")
    assert _messages(action) == []  # the action only ever sees rows of the user's workspaces


def test_a_superuser_sees_every_workspaces_catalog(workspace, other_workspace, product, superuser, admin_client_as):
    # given
    feature_create(workspace=workspace, key="mine", name="Mine", product=product)
    their_product = product_create(workspace=other_workspace, key="default", name="Theirs")
    feature_create(workspace=other_workspace, key="theirs", name="Theirs", product=their_product)
    client = admin_client_as(superuser)
    # when
    listing = client.get("/admin/catalog/feature/")
    # then
    assert sorted(f.key for f in listing.context["cl"].result_list) == ["mine", "theirs"]


def test_staff_without_membership_cannot_open_the_catalog_admin(db, staff_user, admin_client_as):
    # given
    client = admin_client_as(staff_user)
    # when
    response = client.get("/admin/catalog/feature/")
    index = client.get("/admin/")
    # then
    assert response.status_code == 403
    assert index.context["app_list"] == []


def test_item_created_in_the_admin_is_a_draft_plan(workspace, staff_of, admin_client_as):
    # given
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    response = client.post(
        "/admin/catalog/item/add/",
        {"workspace": workspace.pk, "key": "extra-seats", "name": "Extra seats", "type": "addon", "description": ""},
    )
    # then
    assert response.status_code == 302
    assert list(Item.objects.values_list("key", "type", "status")) == [("extra-seats", "addon", "draft")]


# ---------------------------------------------------------------------------------------------------------
# Refusals read as sentences; lifecycle buttons; labels
# ---------------------------------------------------------------------------------------------------------

KEY_SENTENCE = (
    "A key may contain only letters, digits, '_', '.', ':' and '-', and must start with a letter or digit, "
    "at most 64 characters (e.g. 'reports-export')."
)


@pytest.mark.parametrize(
    ("model", "extra"),
    [("product", {}), ("item", {"type": "plan"})],
)
def test_a_bad_key_says_what_a_key_may_contain_and_nothing_is_stored(
    workspace, staff_of, admin_client_as, model, extra
):
    # given
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    response = client.post(
        f"/admin/catalog/{model}/add/",
        {"workspace": workspace.pk, "key": "core product!", "name": "Core", "description": "", **extra},
    )
    # then
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert dict(form.errors) == {"key": [KEY_SENTENCE]}
    assert "is violated" not in response.content.decode()
    assert (Product.objects.count(), Item.objects.count()) == (0, 0)


def test_a_bad_feature_key_and_a_metered_switch_are_sentences_and_nothing_is_stored(
    workspace, product, staff_of, admin_client_as
):
    # given
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    response = client.post(FEATURE_ADD, _feature_post(product, key="-seats", type="switch", metered="on", levels=[]))
    # then
    assert response.status_code == 200
    assert dict(response.context["adminform"].form.errors) == {
        "key": [KEY_SENTENCE],
        "metered": ["Only quantity and range features can be metered."],
    }
    assert Feature.objects.count() == 0


def test_a_database_refusal_the_service_does_not_know_is_a_form_error_and_nothing_is_stored(
    workspace, staff_of, admin_client_as
):
    # given: a rule only the database knows
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE catalog_product ADD CONSTRAINT catalog_test_no_x CHECK (name <> 'X')")
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    response = client.post(
        "/admin/catalog/product/add/", {"workspace": workspace.pk, "key": "core", "name": "X", "description": ""}
    )
    # then
    assert response.status_code == 200
    assert list(response.context["adminform"].form.non_field_errors()) == [
        'The database refused this change: new row for relation "catalog_product" violates check constraint '
        '"catalog_test_no_x".'
    ]
    assert Product.objects.count() == 0


def _buttons(page: str) -> list[str]:
    import re

    return re.findall(r'<button type="submit" class="historylink"[^>]*>([^<]+)</button>', page)


def test_the_change_page_offers_the_allowed_lifecycle_moves_and_runs_them_through_the_service(
    workspace, product, staff_of, admin_client_as
):
    # given
    feature = feature_create(workspace=workspace, key="sso", name="SSO", product=product)
    version = feature.resource_version
    client = admin_client_as(staff_of(workspace, "admin"))
    change = f"/admin/catalog/feature/{feature.pk}/change/"
    # when
    draft_page = client.get(change).content.decode()
    activated = client.post(f"/admin/catalog/feature/{feature.pk}/lifecycle/activate/", follow=True)
    active_page = activated.content.decode()
    refused = client.post(f"/admin/catalog/feature/{feature.pk}/lifecycle/reactivate/", follow=True)
    archived = client.post(f"/admin/catalog/feature/{feature.pk}/lifecycle/archive/", follow=True)
    # then
    assert _buttons(draft_page) == ["Activate (→ active)"]
    assert "From draft: Activate (→ active)." in draft_page
    assert "nothing returns to draft" in draft_page
    assert activated.redirect_chain == [(change, 302)]
    assert _messages(activated) == ["Feature 'sso' is now active."]
    assert _buttons(active_page) == ["Archive (→ archived)"]
    assert _messages(refused) == ["Only archived features can be reactivated; 'sso' is active."]
    assert _messages(archived) == ["Feature 'sso' is now archived."]
    assert _buttons(archived.content.decode()) == ["Reactivate (→ active)"]
    feature.refresh_from_db()
    assert feature.status == Lifecycle.ARCHIVED
    assert feature.resource_version > version


def test_lifecycle_buttons_are_refused_to_viewers_other_workspaces_and_gets(
    workspace, other_workspace, product, staff_of, admin_client_as
):
    # given
    item = item_create(workspace=workspace, key="team", name="Team")
    theirs = item_create(workspace=other_workspace, key="gold", name="Gold")
    viewer = admin_client_as(staff_of(workspace, "viewer"))
    # when
    page = viewer.get(f"/admin/catalog/item/{item.pk}/change/").content.decode()
    as_viewer = viewer.post(f"/admin/catalog/item/{item.pk}/lifecycle/activate/")
    foreign = viewer.post(f"/admin/catalog/item/{theirs.pk}/lifecycle/activate/")
    by_get = viewer.get(f"/admin/catalog/item/{item.pk}/lifecycle/activate/")
    # then
    assert _buttons(page) == []
    assert "From draft: Activate (→ active)." in page
    assert (as_viewer.status_code, foreign.status_code, by_get.status_code) == (403, 404, 405)
    assert dict(Item.objects.values_list("key", "status")) == {"team": "draft", "gold": "draft"}


def test_versions_read_as_date_times_modules_name_their_product_and_features_link_to_the_dashboard(
    workspace, product, staff_of, admin_client_as
):
    # given
    other = product_create(workspace=workspace, key="mobile", name="Mobile")
    module = Module.objects.create(workspace=workspace, product=other, key="export", name="Export")
    feature = feature_create(workspace=workspace, key="pdf:export", name="PDF export", product=product)
    Feature.objects.filter(pk=feature.pk).update(resource_version=1764597600123)
    client = admin_client_as(staff_of(workspace, "admin"))
    # when
    add_form = client.get(FEATURE_ADD).context["adminform"].form
    page = client.get(f"/admin/catalog/feature/{feature.pk}/change/").content.decode()
    # then
    assert [label for _, label in add_form.fields["module"].choices] == ["---------", "Mobile › Export"]
    assert module.pk in [choice.value for choice, _ in list(add_form.fields["module"].choices)[1:]]
    assert "2025-12-01 14:00:00.123 UTC (1764597600123)" in page
    # (in the feature's workspace: ?workspace= makes it the dashboard's current one)
    assert (
        f'<a href="/features/pdf:export/?workspace={workspace.slug}">Usage of PDF export on the dashboard</a>' in page
    )
