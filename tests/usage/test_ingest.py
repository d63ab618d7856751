"""POST /api/v1/events: every field rule of the ingestion contract, each rejection code, registration,
deduplication, caps, hierarchy, dirty marks and allowance counters (real PostgreSQL)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from accounts.models import Account, EndUser
from catalog.models import Feature, Module, Product
from catalog.services import feature_create, module_create, product_create
from entitlements.models import AllowanceUsageDaily
from tests.conftest import FROZEN_NOW
from usage.models import UsageDayDirty, UsageEvent

GOOD = {"account_id": "acct-ok", "feature_id": "good.feature"}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(FROZEN_NOW, tick=False):
        yield


def post(api, body):
    response = api.post("/api/v1/events", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def stored_features() -> list[str]:
    return list(UsageEvent.objects.order_by("id").values_list("feature__key", flat=True))


# ---------------------------------------------------------------------------
# The happy path and registration on first sight
# ---------------------------------------------------------------------------


def test_single_event_is_stored_with_defaults_and_registers_its_dimensions(api, workspace):
    # given a workspace with an empty catalog
    # when one bare event object is sent
    body = post(api, {"account_id": "acct_1", "user_id": "u_1", "feature_id": "export.csv"})

    # then it is stored with quantity 1 at "now"; account, user, product "default" and a draft feature exist
    assert body == {"accepted": 1, "duplicates": 0, "ignored": 0, "rejected": [], "warnings": []}
    event = UsageEvent.objects.select_related("account", "end_user", "feature__product").get()
    assert (event.workspace_id, event.quantity, event.occurred_at, event.received_at) == (
        workspace.pk,
        1,
        FROZEN_NOW,
        FROZEN_NOW,
    )
    assert (event.account.external_id, event.end_user.external_id, event.event_id, event.properties) == (
        "acct_1",
        "u_1",
        None,
        None,
    )
    assert (event.feature.key, event.feature.name, event.feature.status, event.feature.product.key) == (
        "export.csv",
        "export.csv",
        "draft",
        "default",
    )
    assert event.feature.module_id is None
    assert (event.account.first_seen_at, event.account.last_seen_at) == (FROZEN_NOW, FROZEN_NOW)
    assert (event.end_user.first_seen_at, event.end_user.last_seen_at) == (FROZEN_NOW, FROZEN_NOW)
    assert event.source == "events"


def test_batch_registers_product_module_and_feature_and_stores_every_field(api, workspace):
    # given
    events = [
        {
            "account_id": "a1",
            "user_id": "u1",
            "product_id": "crm",
            "module_id": "reports",
            "feature_id": "reports.pdf",
            "quantity": 5,
            "timestamp": "2026-11-17T08:30:00+02:00",
            "event_id": "evt-1",
            "properties": {"pages": 12, "tags": ["x"]},
        },
        {"account_id": "a1", "user_id": "u2", "feature_id": "reports.pdf", "quantity": -2},
    ]

    # when
    body = post(api, {"events": events})

    # then
    assert (body["accepted"], body["rejected"]) == (2, [])
    feature = Feature.objects.select_related("product", "module").get(key="reports.pdf")
    assert (feature.product.key, feature.module.key, feature.module.product.key) == ("crm", "reports", "crm")
    rows = list(UsageEvent.objects.order_by("id").values_list("quantity", "occurred_at", "event_id", "properties"))
    assert rows == [
        (5, datetime(2026, 11, 17, 6, 30, tzinfo=UTC), "evt-1", {"pages": 12, "tags": ["x"]}),
        (-2, FROZEN_NOW, None, None),
    ]
    assert sorted(EndUser.objects.values_list("external_id", flat=True)) == ["u1", "u2"]
    account = Account.objects.get(external_id="a1")
    assert (account.first_seen_at, account.last_seen_at) == (
        datetime(2026, 11, 17, 6, 30, tzinfo=UTC),
        FROZEN_NOW,
    )


def test_timestamp_without_offset_is_utc(api, workspace):
    # when
    post(api, {**GOOD, "timestamp": "2026-11-18T09:15:00"})
    # then
    assert UsageEvent.objects.get().occurred_at == datetime(2026, 11, 18, 9, 15, tzinfo=UTC)


def test_ids_are_trimmed(api, workspace):
    # when
    body = post(api, {"account_id": "  acct  ", "feature_id": " feat ", "user_id": " u "})
    # then
    assert body["warnings"] == []
    event = UsageEvent.objects.select_related("account", "feature", "end_user").get()
    assert (event.account.external_id, event.feature.key, event.end_user.external_id) == ("acct", "feat", "u")


def test_ids_over_64_characters_are_truncated_with_a_warning(api, workspace):
    # given
    long_account = "a" * 70
    # when
    body = post(api, {"events": [GOOD, {"account_id": long_account, "feature_id": "f" * 65}]})
    # then
    assert body["accepted"] == 2
    assert body["warnings"] == [
        {
            "index": 1,
            "code": "truncated",
            "field": "account_id",
            "message": f"'account_id' was longer than 64 characters and was truncated to '{'a' * 64}'.",
        },
        {
            "index": 1,
            "code": "truncated",
            "field": "feature_id",
            "message": f"'feature_id' was longer than 64 characters and was truncated to '{'f' * 64}'.",
        },
    ]
    assert Account.objects.filter(external_id="a" * 64).count() == 1
    assert Feature.objects.filter(key="f" * 64).count() == 1


def test_unknown_fields_are_a_warning_and_the_event_is_stored(api, workspace):
    # when
    body = post(api, {**GOOD, "colour": "red"})
    # then
    assert body["accepted"] == 1
    assert body["warnings"] == [
        {
            "index": 0,
            "code": "unknown_field",
            "field": "colour",
            "message": "Unknown field 'colour' was ignored; put custom data in 'properties'.",
        }
    ]


def test_quantity_zero_is_ignored_and_stored_nowhere(api, workspace):
    # when
    body = post(api, {"events": [{"account_id": "zero-acct", "feature_id": "zero.feature", "quantity": 0}, GOOD]})
    # then nothing of the zero event exists: no event, no account, no feature
    assert (body["accepted"], body["ignored"], body["rejected"]) == (1, 1, [])
    assert stored_features() == ["good.feature"]
    assert not Account.objects.filter(external_id="zero-acct").exists()
    assert not Feature.objects.filter(key="zero.feature").exists()


def test_quantity_two_point_zero_is_accepted_as_two(api, workspace):
    # when
    post(api, {**GOOD, "quantity": 2.0})
    # then
    assert UsageEvent.objects.get().quantity == 2


@pytest.mark.parametrize("quantity", [1_000_000_000, -1_000_000_000])
def test_quantity_bounds_are_inclusive(api, workspace, quantity):
    # when
    body = post(api, {**GOOD, "quantity": quantity})
    # then
    assert body["accepted"] == 1
    assert UsageEvent.objects.get().quantity == quantity


def test_timestamp_boundaries_are_accepted(api, workspace):
    # given exactly 5 minutes ahead and exactly 35 days old
    events = [
        {**GOOD, "timestamp": (FROZEN_NOW + timedelta(minutes=5)).isoformat()},
        {**GOOD, "timestamp": (FROZEN_NOW - timedelta(days=35)).isoformat()},
    ]
    # when
    body = post(api, {"events": events})
    # then
    assert (body["accepted"], body["rejected"]) == (2, [])


def test_properties_of_exactly_8_kib_are_accepted(api, workspace):
    # given {"k":"…"} serialized to 8192 bytes
    properties = {"k": "x" * (8192 - len('{"k":""}'))}
    # when
    body = post(api, {**GOOD, "properties": properties})
    # then
    assert body["accepted"] == 1


# ---------------------------------------------------------------------------
# Rejections: each code, nothing stored for the rejected event, the neighbour stored
# ---------------------------------------------------------------------------

REJECTIONS = [
    ({"feature_id": "bad.feature"}, "missing_field", "account_id"),
    ({"account_id": "bad-acct"}, "missing_field", "feature_id"),
    ({"account_id": None, "feature_id": "bad.feature"}, "missing_field", "account_id"),
    ({"account_id": 42, "feature_id": "bad.feature"}, "invalid_type", "account_id"),
    ({"account_id": "bad-acct", "feature_id": ["x"]}, "invalid_type", "feature_id"),
    ({"account_id": "bad-acct", "feature_id": "bad.feature", "user_id": 7}, "invalid_type", "user_id"),
    ({"account_id": "bad-acct", "feature_id": "bad.feature", "quantity": "3"}, "invalid_type", "quantity"),
    ({"account_id": "bad-acct", "feature_id": "bad.feature", "quantity": True}, "invalid_type", "quantity"),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "timestamp": 1763467200},
        "invalid_type",
        "timestamp",
    ),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "properties": [1]},
        "invalid_type",
        "properties",
    ),
    ({"account_id": "bad-acct", "feature_id": "bad.feature", "event_id": 5}, "invalid_type", "event_id"),
    ({"account_id": "   ", "feature_id": "bad.feature"}, "invalid_value", "account_id"),
    ({"account_id": "bad-acct", "feature_id": "!!! ???"}, "invalid_value", "feature_id"),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "product_id": "- -"},
        "invalid_value",
        "product_id",
    ),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "timestamp": "yesterday"},
        "invalid_value",
        "timestamp",
    ),
    ({"account_id": "bad-acct", "feature_id": "bad.feature", "quantity": 2.5}, "invalid_value", "quantity"),
    ({"account_id": "bad-acct", "feature_id": "bad.feature", "event_id": " "}, "invalid_value", "event_id"),
    ({"account_id": "bad\u0000acct", "feature_id": "bad.feature"}, "invalid_id", "account_id"),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "properties": {"a": "nul\u0000"}},
        "invalid_value",
        "properties",
    ),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "timestamp": "2026-10-13T11:59:59Z"},
        "too_old",
        "timestamp",
    ),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "timestamp": "2026-11-18T12:05:01Z"},
        "in_future",
        "timestamp",
    ),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "quantity": 1_000_000_001},
        "quantity_out_of_range",
        "quantity",
    ),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "quantity": -1_000_000_001},
        "quantity_out_of_range",
        "quantity",
    ),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "event_id": "e" * 129},
        "event_id_too_long",
        "event_id",
    ),
    (
        {"account_id": "bad-acct", "feature_id": "bad.feature", "properties": {"k": "x" * 8200}},
        "properties_too_large",
        "properties",
    ),
]


@pytest.mark.parametrize(("event", "code", "field"), REJECTIONS)
def test_each_rejection_code_stores_nothing_for_the_event_and_keeps_its_neighbours(api, workspace, event, code, field):
    # given a good event on each side of a bad one
    # when
    body = post(api, {"events": [GOOD, event, {**GOOD, "quantity": 3}]})

    # then the bad one is rejected by index, with its code and field, and the good ones are stored
    assert (body["accepted"], body["duplicates"], body["ignored"]) == (2, 0, 0)
    assert len(body["rejected"]) == 1
    rejection = body["rejected"][0]
    assert (rejection["index"], rejection["code"], rejection["field"]) == (1, code, field)
    assert field in rejection["message"]
    assert list(UsageEvent.objects.order_by("id").values_list("quantity", flat=True)) == [1, 3]
    assert not Account.objects.filter(external_id="bad-acct").exists()
    assert not Feature.objects.filter(key="bad.feature").exists()


def test_reject_backdated_workspace_accepts_only_todays_utc_date(api, workspace):
    # given
    workspace.late_event_policy = "reject_backdated"
    workspace.save()
    events = [
        {**GOOD, "quantity": 1, "timestamp": "2026-11-18T00:00:00Z"},
        {**GOOD, "quantity": 2, "timestamp": "2026-11-17T23:59:59Z"},
        {**GOOD, "quantity": 3, "timestamp": "2026-11-18T01:30:00+02:00"},  # 2026-11-17 23:30 UTC
    ]
    # when
    body = post(api, {"events": events})
    # then
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "too_old"), (2, "too_old")]
    assert list(UsageEvent.objects.values_list("quantity", flat=True)) == [1]


def test_window_follows_the_workspace_setting(api, workspace):
    # given a 7-day window
    workspace.late_event_window_days = 7
    workspace.save()
    events = [
        {**GOOD, "quantity": 1, "timestamp": (FROZEN_NOW - timedelta(days=7)).isoformat()},
        {**GOOD, "quantity": 2, "timestamp": (FROZEN_NOW - timedelta(days=7, seconds=1)).isoformat()},
    ]
    # when
    body = post(api, {"events": events})
    # then
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "too_old")]
    assert list(UsageEvent.objects.values_list("quantity", flat=True)) == [1]


# ---------------------------------------------------------------------------
# Deduplication by event_id
# ---------------------------------------------------------------------------


def test_duplicate_event_id_inside_a_batch_first_wins(api, workspace):
    # when
    body = post(
        api,
        {
            "events": [
                {**GOOD, "event_id": "e1", "quantity": 1},
                {**GOOD, "event_id": "e1", "quantity": 9},
                GOOD,
            ]
        },
    )
    # then
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, [])
    assert list(UsageEvent.objects.order_by("id").values_list("event_id", "quantity")) == [
        ("e1", 1),
        (None, 1),
    ]


def test_rejected_first_occurrence_does_not_hide_a_valid_second_one(api, workspace):
    # when
    body = post(
        api,
        {"events": [{**GOOD, "event_id": "e1", "quantity": "x"}, {**GOOD, "event_id": "e1", "quantity": 4}]},
    )
    # then
    assert (body["accepted"], body["duplicates"], [r["index"] for r in body["rejected"]]) == (1, 0, [0])
    assert list(UsageEvent.objects.values_list("quantity", flat=True)) == [4]


def test_replaying_a_whole_batch_stores_nothing_new(api, workspace):
    # given a batch of 50 events with ids (COPY path) already sent once
    batch = {"events": [{**GOOD, "event_id": f"evt-{n}", "quantity": n + 1} for n in range(50)]}
    first = post(api, batch)
    dirty_version = UsageDayDirty.objects.get().version

    # when it is replayed
    second = post(api, batch)

    # then every event is a duplicate, nothing is stored and no day is re-marked
    assert (first["accepted"], first["duplicates"]) == (50, 0)
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (0, 50, [])
    assert UsageEvent.objects.count() == 50
    assert UsageDayDirty.objects.get().version == dirty_version


def test_event_ids_are_scoped_to_the_workspace(api, workspace, other_workspace, make_client):
    # given
    other = make_client(other_workspace, "ingest")
    post(api, {**GOOD, "event_id": "shared"})
    # when
    body = post(other, {**GOOD, "event_id": "shared"})
    # then
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert UsageEvent.objects.filter(event_id="shared").count() == 2


def test_a_key_of_one_workspace_never_writes_into_another(workspace, other_workspace, make_client):
    # given
    client_b = make_client(other_workspace, "ingest")
    # when
    post(client_b, {"account_id": "acct-b", "feature_id": "feat.b"})
    # then
    assert UsageEvent.objects.filter(workspace=workspace).count() == 0
    assert UsageEvent.objects.filter(workspace=other_workspace).count() == 1
    assert not Account.objects.filter(workspace=workspace).exists()
    assert not Feature.objects.filter(workspace=workspace).exists()
    assert Feature.objects.get(workspace=other_workspace).key == "feat.b"


# ---------------------------------------------------------------------------
# Hierarchy and caps
# ---------------------------------------------------------------------------


@pytest.fixture
def catalog(workspace):
    crm = product_create(workspace=workspace, key="crm", name="CRM")
    billing = product_create(workspace=workspace, key="billing", name="Billing")
    reports = module_create(workspace=workspace, product=crm, key="reports")
    invoices = module_create(workspace=workspace, product=billing, key="invoices")
    feature_create(workspace=workspace, key="reports.pdf", name="PDF reports", product=crm, module=reports)
    feature_create(workspace=workspace, key="crm.search", name="Search", product=crm)
    return {"crm": crm, "billing": billing, "reports": reports, "invoices": invoices}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"feature_id": "reports.pdf", "product_id": "billing"}, "product_id"),
        ({"feature_id": "reports.pdf", "product_id": "unknown-product"}, "product_id"),
        ({"feature_id": "reports.pdf", "module_id": "invoices"}, "module_id"),
        ({"feature_id": "crm.search", "module_id": "reports"}, "module_id"),
        ({"feature_id": "new.feature", "product_id": "crm", "module_id": "invoices"}, "module_id"),
    ],
)
def test_a_feature_named_under_another_product_or_module_is_a_hierarchy_conflict(api, catalog, event, field):
    # given the catalog above
    features_before = Feature.objects.count()
    # when
    body = post(api, {"events": [{**event, "account_id": "bad-acct"}, {**GOOD, "feature_id": "reports.pdf"}]})
    # then
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [(0, "hierarchy_conflict", field)]
    assert stored_features() == ["reports.pdf"]
    assert Feature.objects.count() == features_before
    assert not Account.objects.filter(external_id="bad-acct").exists()


def test_matching_or_omitted_product_and_module_are_accepted(api, catalog):
    # given events naming the feature's own place, or leaving product and module out
    events = [
        {**GOOD, "feature_id": "reports.pdf", "product_id": "crm", "module_id": "reports"},
        {**GOOD, "feature_id": "reports.pdf"},
        {**GOOD, "feature_id": "reports.pdf", "module_id": "reports"},
        {**GOOD, "feature_id": "crm.search", "product_id": "crm"},
    ]
    # when
    body = post(api, {"events": events})
    # then
    assert (body["accepted"], body["rejected"]) == (4, [])


def test_a_new_feature_in_an_existing_module_inherits_its_product(api, catalog):
    # when
    post(api, {**GOOD, "feature_id": "invoices.export", "module_id": "invoices"})
    # then
    feature = Feature.objects.select_related("product", "module").get(key="invoices.export")
    assert (feature.product.key, feature.module.key, feature.status) == ("billing", "invoices", "draft")


def test_the_first_placement_in_a_batch_wins_and_later_conflicts_are_rejected(api, workspace):
    # when
    body = post(
        api,
        {
            "events": [
                {**GOOD, "feature_id": "x.new", "product_id": "p1"},
                {**GOOD, "feature_id": "x.new", "product_id": "p2"},
            ]
        },
    )
    # then
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "hierarchy_conflict")]
    assert Feature.objects.get(key="x.new").product.key == "p1"
    assert not Product.objects.filter(key="p2").exists()


def test_feature_cap_rejects_only_the_events_that_need_a_new_feature(api, workspace, product):
    # given a cap of 2 features with 1 in use
    feature_create(workspace=workspace, key="existing", name="Existing", product=product)
    workspace.max_features = 2
    workspace.save()
    events = [
        {**GOOD, "feature_id": "new.one"},
        {**GOOD, "feature_id": "new.two"},
        {**GOOD, "feature_id": "existing"},
        {**GOOD, "feature_id": "new.one"},
        {**GOOD, "feature_id": "new.three"},
    ]
    # when
    body = post(api, {"events": events})
    # then
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "feature_cap_reached"),
        (4, "feature_cap_reached"),
    ]
    assert stored_features() == ["new.one", "existing", "new.one"]
    assert sorted(Feature.objects.values_list("key", flat=True)) == ["existing", "new.one"]


def test_module_cap_reached(api, workspace, product):
    # given no room for modules
    workspace.max_modules = 0
    workspace.save()
    # when
    body = post(api, {"events": [{**GOOD, "feature_id": "m.feature", "module_id": "m1"}, GOOD]})
    # then
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [(0, "module_cap_reached", "module_id")]
    assert stored_features() == ["good.feature"]
    assert not Module.objects.exists()
    assert not Feature.objects.filter(key="m.feature").exists()


def test_product_cap_reached(api, workspace, product):
    # given one product ("default") and a cap of 1
    workspace.max_products = 1
    workspace.save()
    # when
    body = post(api, {"events": [{**GOOD, "feature_id": "p.feature", "product_id": "other"}, GOOD]})
    # then
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [(0, "product_cap_reached", "product_id")]
    assert stored_features() == ["good.feature"]
    assert list(Product.objects.values_list("key", flat=True)) == ["default"]


def test_a_new_feature_whose_name_is_taken_gets_a_deterministic_unique_name(api, workspace, product):
    # given another feature already named "export" (and "export (2)")
    feature_create(workspace=workspace, key="legacy-export", name="export", product=product)
    feature_create(workspace=workspace, key="legacy-export-2", name="export (2)", product=product)
    # when
    post(api, {**GOOD, "feature_id": "export"})
    # then
    assert Feature.objects.get(key="export").name == "export (3)"


# ---------------------------------------------------------------------------
# Dirty marks and allowance counters
# ---------------------------------------------------------------------------


def test_each_stored_event_marks_its_utc_day_dirty(api, workspace):
    # given
    events = [
        {**GOOD, "timestamp": "2026-11-18T01:00:00+03:00"},  # 2026-11-17 UTC
        {**GOOD, "timestamp": "2026-11-18T10:00:00Z"},
        {**GOOD, "timestamp": "2026-11-18T11:00:00Z"},
    ]
    # when
    post(api, {"events": events})
    post(api, {**GOOD, "timestamp": "2026-11-18T11:30:00Z"})
    # then
    assert list(UsageDayDirty.objects.order_by("day").values_list("workspace_id", "day", "version", "marked_at")) == [
        (workspace.pk, date(2026, 11, 17), 1, FROZEN_NOW),
        (workspace.pk, date(2026, 11, 18), 2, FROZEN_NOW),
    ]


def test_rejected_ignored_and_duplicate_events_mark_nothing(api, workspace):
    # given
    post(api, {**GOOD, "event_id": "once", "timestamp": "2026-11-18T10:00:00Z"})
    UsageDayDirty.objects.all().delete()
    # when
    body = post(
        api,
        {"events": [{**GOOD, "event_id": "once"}, {**GOOD, "quantity": 0}, {**GOOD, "timestamp": "bad"}]},
    )
    # then
    assert (body["accepted"], body["duplicates"], body["ignored"], len(body["rejected"])) == (0, 1, 1, 1)
    assert not UsageDayDirty.objects.exists()


def test_stored_events_of_a_metered_feature_reach_the_allowance_counters(api, workspace, product):
    # given a metered quantity feature
    feature = feature_create(
        workspace=workspace,
        key="api.calls",
        name="API calls",
        product=product,
        type="quantity",
        levels=[{"value": "1000", "name": "1000"}],
        metered=True,
        reset_period="month",
    )
    # when
    post(
        api,
        {
            "events": [
                {**GOOD, "feature_id": "api.calls", "quantity": 7},
                {**GOOD, "feature_id": "api.calls", "quantity": -2},
            ]
        },
    )
    # then
    assert list(AllowanceUsageDaily.objects.values_list("feature_id", "day", "quantity")) == [
        (feature.pk, date(2026, 11, 18), 5)
    ]


def test_first_seen_is_exact_and_last_seen_moves_by_more_than_a_minute(api, workspace):
    # given an account and user seen at 11:00
    post(api, {**GOOD, "user_id": "u", "timestamp": "2026-11-18T11:00:00Z"})

    # when seen again 30 s later, then 2 minutes later, then with a late event from the day before
    post(api, {**GOOD, "user_id": "u", "timestamp": "2026-11-18T11:00:30Z"})
    after_30s = Account.objects.values_list("first_seen_at", "last_seen_at").get()
    post(api, {**GOOD, "user_id": "u", "timestamp": "2026-11-18T11:02:00Z"})
    post(api, {**GOOD, "user_id": "u", "timestamp": "2026-11-17T09:00:00Z"})

    # then
    assert after_30s == (datetime(2026, 11, 18, 11, 0, tzinfo=UTC), datetime(2026, 11, 18, 11, 0, tzinfo=UTC))
    expected = (datetime(2026, 11, 17, 9, 0, tzinfo=UTC), datetime(2026, 11, 18, 11, 2, tzinfo=UTC))
    assert Account.objects.values_list("first_seen_at", "last_seen_at").get() == expected
    assert EndUser.objects.values_list("first_seen_at", "last_seen_at").get() == expected
