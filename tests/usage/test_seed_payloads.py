"""The payloads of the systems our users come from, as their own documentation writes them: CustomerSuccessBox
(display names, `total`), Kana (`recordUsage` with `delta`, per-user usage), IngestLayer (`feature.used`),
Packedge (`customerEmail` of top accounts, domains from e-mails) and Chargebee (a feature without `id`)."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Account
from accounts.services import account_upsert, end_user_upsert
from analytics.services import rollup_pending
from catalog.models import Feature
from catalog.services import feature_create, feature_update, key_from_display_name, product_create
from entitlements.models import RecordOutcome
from tests.conftest import FROZEN_NOW
from usage.models import UsageEvent

pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen():
    with time_machine.travel(FROZEN_NOW, tick=False):
        yield


# ---------------------------------------------------------------------------
# The display-name rule
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Project Created", "project-created"),
        ("Project Status Updated", "project-status-updated"),
        ("  Dashboard / Users -- Export (CSV)! ", "dashboard-users-export-csv"),
        ("Café Créé", "cafe-cree"),
        ("MySaaSProductName", "mysaasproductname"),
        ("x" * 70, "x" * 64),
        ("a" * 63 + " b", "a" * 63),
        ("!!!", ""),
    ],
)
def test_a_display_name_gets_its_key_by_one_rule(name, key):
    assert key_from_display_name(name) == key


# ---------------------------------------------------------------------------
# CustomerSuccessBox
# ---------------------------------------------------------------------------

CSB_EVENT = {
    "account_id": "acc-1001",
    "user_id": "user-77",
    "feature_id": "Project Created",
    "module_id": "Project",
    "product_id": "MySaaSProductName",
    "timestamp": "2026-11-18T11:30:00Z",
    "total": 14,
}


def test_a_customersuccessbox_event_with_display_names_and_total(api):
    # when
    response = api.post("/api/v1/events", CSB_EVENT, format="json")
    # then: total is the quantity, the display names become the names of what is registered
    assert response.json() == {"accepted": 1, "duplicates": 0, "ignored": 0, "rejected": [], "warnings": []}
    event = UsageEvent.objects.select_related("feature__module__product").get()
    assert event.quantity == 14
    assert (event.feature.key, event.feature.name) == ("project-created", "Project Created")
    assert (event.feature.module.key, event.feature.module.name) == ("Project", "Project")
    assert (event.feature.module.product.key, event.feature.module.product.name) == (
        "MySaaSProductName",
        "MySaaSProductName",
    )


def test_the_same_display_name_later_is_the_same_feature(api):
    # given
    api.post("/api/v1/events", CSB_EVENT, format="json")
    # when: the key and the display name both name it
    api.post("/api/v1/events", {**CSB_EVENT, "feature_id": "project-created", "total": 1}, format="json")
    api.post("/api/v1/events", {**CSB_EVENT, "total": 2}, format="json")
    # then
    assert Feature.objects.count() == 1
    assert sorted(UsageEvent.objects.values_list("quantity", flat=True)) == [1, 2, 14]


def test_total_zero_is_ignored_as_the_doc_says(api):
    # when
    response = api.post("/api/v1/events", {**CSB_EVENT, "total": 0}, format="json")
    # then
    assert (response.json()["ignored"], UsageEvent.objects.count(), Feature.objects.count()) == (1, 0, 0)


def test_quantity_and_total_together_are_rejected_and_nothing_is_stored(api):
    # when
    response = api.post("/api/v1/events", {"events": [{**CSB_EVENT, "quantity": 14}, {**CSB_EVENT}]}, format="json")
    # then: the conflicting event is refused with a clear code; its neighbour is stored
    assert response.json()["rejected"] == [
        {
            "index": 0,
            "code": "conflicting_fields",
            "message": "'quantity' and 'total' are the same field; send one of them.",
            "field": "total",
        }
    ]
    assert list(UsageEvent.objects.values_list("quantity", flat=True)) == [14]


def test_a_display_name_over_64_characters_is_cut_as_customersuccessbox_does(api):
    # given
    long_name = "Very Long Feature Name That Goes On And On Past The Sixty Four Char Limit"
    # when
    response = api.post("/api/v1/events", {**CSB_EVENT, "feature_id": long_name}, format="json")
    # then
    feature = Feature.objects.get()
    assert feature.name == long_name[:64].rstrip()
    assert feature.key == key_from_display_name(long_name[:64])
    assert response.json()["warnings"][0]["code"] == "truncated"


# ---------------------------------------------------------------------------
# Kana
# ---------------------------------------------------------------------------


@pytest.fixture
def kana_catalog(workspace):
    """User 124 of account acme-co, and a metered `api-calls` feature with an allowance of 10 per month."""
    from catalog.services import feature_activate, item_activate, item_create
    from entitlements.services import item_entitlement_set, subscription_create

    product = product_create(workspace=workspace, key="default", name="Default")
    feature = feature_create(
        workspace=workspace,
        key="api-calls",
        name="API calls",
        product=product,
        type="quantity",
        levels=[{"value": "10", "name": "10"}],
        metered=True,
        reset_period="month",
    )
    feature_activate(feature=feature)
    item = item_activate(item=item_create(workspace=workspace, key="pro", name="Pro", type="plan"))
    item_entitlement_set(item=item, feature=feature, value="10")
    account, _ = account_upsert(workspace=workspace, external_id="acme-co")
    end_user_upsert(workspace=workspace, account_external_id="acme-co", external_id="124")
    subscription_create(
        workspace=workspace,
        external_id="sub-1",
        account=account,
        status="active",
        items=[item],
        current_term_start=FROZEN_NOW - timedelta(days=3),
        current_term_end=FROZEN_NOW + timedelta(days=27),
    )
    return feature


def test_kanas_record_usage_payload_is_recorded_for_the_users_account(api, kana_catalog):
    # when: Kana's recordUsage body, as its docs write it (delta as a string)
    response = api.post(
        "/api/v1/usage/record", {"userId": "124", "featureId": "api-calls", "delta": "1"}, format="json"
    )
    # then
    assert response.status_code == 200
    assert response.json()["recorded"] is True
    assert response.json()["entitlement"]["used"] == 1
    event = UsageEvent.objects.select_related("account", "end_user").get()
    assert (event.account.external_id, event.end_user.external_id, event.quantity) == ("acme-co", "124", 1)


def test_kanas_numeric_delta_and_negative_delta_revert(api, kana_catalog):
    # when: the second docs example sends delta as a number; a negative delta reverts
    api.post("/api/v1/usage/record", {"userId": "124", "featureId": "api-calls", "delta": 3}, format="json")
    response = api.post("/api/v1/usage/record", {"userId": "124", "featureId": "api-calls", "delta": -1}, format="json")
    # then
    assert response.json()["entitlement"]["used"] == 2


def test_kanas_delta_past_the_allowance_is_refused(api, kana_catalog):
    # when
    response = api.post("/api/v1/usage/record", {"userId": "124", "featureId": "api-calls", "delta": 11}, format="json")
    # then
    assert (response.json()["recorded"], response.json()["reason"]) == (False, "limit_exceeded")
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"userId": "124", "featureId": "api-calls", "delta": 1, "quantity": 1}, 400, "conflicting_fields"),
        ({"userId": "nobody", "featureId": "api-calls", "delta": 1}, 400, "unknown_user"),
        ({"userId": "124", "featureId": "api-calls", "delta": "one"}, 400, "invalid_type"),
        # digits of other scripts (int() reads "５" and "١" as 5 and 1): a numeric string is ASCII
        ({"userId": "124", "featureId": "api-calls", "delta": "\uff15"}, 400, "invalid_type"),
        ({"userId": "124", "featureId": "api-calls", "delta": "\u0661"}, 400, "invalid_type"),
    ],
)
def test_kana_payloads_that_cannot_be_recorded_say_why(api, kana_catalog, body, status, code):
    # when
    response = api.post("/api/v1/usage/record", body, format="json")
    # then
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert (UsageEvent.objects.count(), RecordOutcome.objects.count()) == (0, 0)


def test_usage_can_be_read_per_end_user(api, kana_catalog, workspace):
    # given: 124 used 3 + 2 (one earlier, outside the window), 200 used 5 in the same account
    end_user_upsert(workspace=workspace, account_external_id="acme-co", external_id="200")
    api.post("/api/v1/usage/record", {"userId": "124", "featureId": "api-calls", "delta": 3}, format="json")
    api.post("/api/v1/usage/record", {"userId": "200", "featureId": "api-calls", "delta": 5}, format="json")
    api.post(
        "/api/v1/events",
        {
            "account_id": "acme-co",
            "user_id": "124",
            "feature_id": "api-calls",
            "quantity": 2,
            "timestamp": "2026-11-01T10:00:00Z",
        },
        format="json",
    )
    # when
    window = api.get(
        "/api/v1/accounts/acme-co/users/124/usage",
        {"feature_id": "api-calls", "from": "2026-11-10", "to": "2026-11-18"},
    )
    default = api.get("/api/v1/accounts/acme-co/users/124/usage")
    # then
    assert window.json() == {
        "account_id": "acme-co",
        "user_id": "124",
        "from": "2026-11-10",
        "to": "2026-11-18",
        "uses": 3,
        "events": 1,
        "features": [
            {
                "feature_id": "api-calls",
                "name": "API calls",
                "uses": 3,
                "events": 1,
                "last_used_at": "2026-11-18T12:00:00Z",
            }
        ],
    }
    assert (default.json()["from"], default.json()["to"], default.json()["uses"]) == ("2026-10-20", "2026-11-18", 5)


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/v1/accounts/nope/users/124/usage", {}, 404, "unknown_account"),
        ("/api/v1/accounts/acme-co/users/nope/usage", {}, 404, "unknown_user"),
        ("/api/v1/accounts/acme-co/users/124/usage", {"feature_id": "nope"}, 404, "unknown_feature"),
        ("/api/v1/accounts/acme-co/users/124/usage", {"from": "2026-11-18", "to": "2026-11-01"}, 400, "invalid_range"),
        ("/api/v1/accounts/acme-co/users/124/usage", {"from": "yesterday"}, 400, "invalid"),
    ],
)
def test_per_user_usage_errors_name_the_problem(api, kana_catalog, path, params, status, code):
    # when
    response = api.get(path, params)
    # then
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


# ---------------------------------------------------------------------------
# IngestLayer
# ---------------------------------------------------------------------------


def test_an_ingestlayer_feature_used_event_resolves_the_user_and_updates_the_plan(api, workspace):
    # given: the user belongs to acct-9 on the free plan
    account_upsert(workspace=workspace, external_id="acct-9", plan="free")
    end_user_upsert(workspace=workspace, account_external_id="acct-9", external_id="u_42")
    # when: the event as IngestLayer's SDK emits it
    response = api.post(
        "/api/v1/events/feature.used",
        {"user_id": "u_42", "feature": "csv.export", "count": 1, "plan": "pro"},
        format="json",
    )
    # then
    assert response.json() == {"accepted": 1, "duplicates": 0, "ignored": 0, "rejected": [], "warnings": []}
    event = UsageEvent.objects.select_related("account", "end_user", "feature").get()
    assert (event.account.external_id, event.end_user.external_id, event.feature.key, event.quantity) == (
        "acct-9",
        "u_42",
        "csv.export",
        1,
    )
    assert Account.objects.get(external_id="acct-9").plan == "pro"


def test_feature_used_events_that_cannot_be_used_are_rejected_by_index(api, workspace):
    # given
    account_upsert(workspace=workspace, external_id="acct-9", plan="free")
    end_user_upsert(workspace=workspace, account_external_id="acct-9", external_id="u_42")
    body = [
        {"user_id": "stranger", "feature": "csv.export", "count": 1, "plan": "pro"},
        {"user_id": "u_42", "feature": "csv.export", "count": "many", "plan": "enterprise"},
        {"user_id": "u_42", "feature": "csv.export", "count": 2, "plan": {"tier": 1}},
        {"feature": "csv.export"},
        {"user_id": "u_42", "feature": "Bulk Import", "count": 3},
    ]
    # when
    response = api.post("/api/v1/events/feature.used", body, format="json")
    # then: only the last is stored; the plan is untouched (the events carrying one were refused)
    assert [(r["index"], r["code"]) for r in response.json()["rejected"]] == [
        (0, "unknown_user"),
        (1, "invalid_type"),
        (2, "invalid_value"),
        (3, "missing_field"),
    ]
    assert list(UsageEvent.objects.values_list("feature__key", "quantity")) == [("bulk-import", 3)]
    assert Account.objects.get(external_id="acct-9").plan == "free"


@pytest.fixture
def ingestlayer_user(workspace):
    account_upsert(workspace=workspace, external_id="acct-9", plan="free")
    end_user_upsert(workspace=workspace, account_external_id="acct-9", external_id="u_42")


@pytest.mark.parametrize("plan", ["pro\u0000", "pro\ud800"], ids=["nul", "lone-surrogate"])
def test_a_plan_postgresql_cannot_store_refuses_the_event_before_anything_is_stored(api, ingestlayer_user, plan):
    # when (the label was written after the events' COMMIT: a 500 with the event stored)
    response = api.generic(
        "POST",
        "/api/v1/events/feature.used",
        json.dumps({"user_id": "u_42", "feature": "csv.export", "count": 1, "plan": plan}),
        content_type="application/json",
    )
    # then
    assert response.status_code == 200
    phrase = "contains the NUL character" if "\u0000" in plan else "contains an unpaired surrogate (invalid Unicode)"
    assert response.json()["rejected"] == [
        {"index": 0, "code": "invalid_value", "message": f"'plan' {phrase}.", "field": "plan"}
    ]
    assert UsageEvent.objects.count() == 0
    assert Account.objects.get(external_id="acct-9").plan == "free"


@pytest.mark.parametrize(
    ("extra", "alias", "name"),
    [
        ({"count": 2, "quantity": 5}, "count", "quantity"),
        ({"count": 2, "total": 5}, "count", "total"),
        ({"feature_id": "pdf.export"}, "feature", "feature_id"),
    ],
)
def test_an_alias_next_to_the_field_it_stands_for_is_a_conflict(api, ingestlayer_user, extra, alias, name):
    # when (one of the two was dropped without a word)
    response = api.post(
        "/api/v1/events/feature.used", {"user_id": "u_42", "feature": "csv.export", **extra}, format="json"
    )
    # then
    assert response.json()["rejected"] == [
        {
            "index": 0,
            "code": "conflicting_fields",
            "message": f"'{alias}' and '{name}' are the same field; send one of them.",
            "field": alias,
        }
    ]
    assert UsageEvent.objects.count() == 0


def test_our_own_field_names_are_taken_and_unknown_fields_are_warned_about(api, ingestlayer_user):
    # when an event names its quantity `quantity` and carries a field neither system knows
    response = api.post(
        "/api/v1/events/feature.used",
        {"user_id": "u_42", "feature": "csv.export", "quantity": 4, "colour": "red"},
        format="json",
    )
    # then (both were dropped without a word: the event counted 1)
    assert response.json()["accepted"] == 1
    assert [(w["index"], w["code"], w["field"]) for w in response.json()["warnings"]] == [
        (0, "unknown_field", "colour")
    ]
    assert list(UsageEvent.objects.values_list("quantity", flat=True)) == [4]


def test_the_plan_goes_to_the_account_the_event_was_stored_under(api, workspace):
    # given an account id over 64 characters, which events store cut to 64 (warning `truncated`)
    long_id = "a" * 70
    # when (the label was upserted on the uncut id, refused after the events' COMMIT: a 500)
    response = api.post(
        "/api/v1/events/feature.used",
        {"user_id": "u_1", "account_id": long_id, "feature": "csv.export", "plan": "pro"},
        format="json",
    )
    # then
    assert response.status_code == 200
    assert (response.json()["accepted"], [w["code"] for w in response.json()["warnings"]]) == (1, ["truncated"])
    assert list(Account.objects.values_list("external_id", "plan")) == [("a" * 64, "pro")]


def test_a_duplicate_or_ignored_event_does_not_change_the_plan(api, ingestlayer_user):
    # given an event stored with its id
    event = {"user_id": "u_42", "feature": "csv.export", "event_id": "il-1"}
    assert api.post("/api/v1/events/feature.used", event, format="json").json()["accepted"] == 1
    # when it is replayed with a plan, and a count-0 event carries another
    replay = api.post("/api/v1/events/feature.used", {**event, "plan": "pro"}, format="json").json()
    ignored = api.post(
        "/api/v1/events/feature.used", {"user_id": "u_42", "feature": "x", "count": 0, "plan": "ent"}, format="json"
    ).json()
    # then
    assert (replay["duplicates"], ignored["ignored"]) == (1, 1)
    assert Account.objects.get(external_id="acct-9").plan == "free"


# ---------------------------------------------------------------------------
# Packedge
# ---------------------------------------------------------------------------


def test_top_accounts_carry_their_customer_email(api, workspace):
    # given: the billing contact set over PUT, usage rolled up
    put = api.put("/api/v1/accounts/lic_xxx", {"name": "Lic", "customer_email": "billing@customer.com"}, format="json")
    api.post("/api/v1/events", {"account_id": "lic_xxx", "feature_id": "export_pdf", "quantity": 5}, format="json")
    rollup_pending(now=timezone.now())
    # when
    response = api.get("/api/v1/products/default/analytics/feature-usage")
    # then
    assert put.json()["customer_email"] == "billing@customer.com"
    assert response.json()["top_accounts"] == [
        {
            "account_id": "lic_xxx",
            "name": "Lic",
            "customer_email": "billing@customer.com",
            "events": 5,
            "features": 1,
        }
    ]


def test_a_bad_customer_email_is_refused_and_nothing_changes(api, workspace):
    # given
    account_upsert(workspace=workspace, external_id="a1", customer_email="old@x.io")
    # when
    response = api.put("/api/v1/accounts/a1", {"customer_email": "not-an-email"}, format="json")
    # then
    assert (response.status_code, response.json()["error"]["field"]) == (400, "customer_email")
    assert Account.objects.get(external_id="a1").customer_email == "old@x.io"


def test_an_account_without_a_domain_takes_its_end_users_email_domain(api, workspace):
    # given: a1 has no domain, a2 has one, a3's user has a free-mail address
    account_upsert(workspace=workspace, external_id="a2", domain="set.io")
    # when
    api.put("/api/v1/accounts/a1/users/u1", {"email": "jane@Customer-Site.com"}, format="json")
    api.put("/api/v1/accounts/a2/users/u2", {"email": "joe@other.io"}, format="json")
    api.put("/api/v1/accounts/a3/users/u3", {"email": "someone@gmail.com"}, format="json")
    # then
    assert dict(Account.objects.values_list("external_id", "domain")) == {
        "a1": "customer-site.com",
        "a2": "set.io",
        "a3": "",
    }
    # and a domain set later replaces it
    api.put("/api/v1/accounts/a1", {"domain": "customer.com"}, format="json")
    assert Account.objects.get(external_id="a1").domain == "customer.com"


# ---------------------------------------------------------------------------
# Chargebee
# ---------------------------------------------------------------------------


def test_a_feature_created_without_id_gets_a_unique_slug_from_its_name(api, workspace):
    # given
    product_create(workspace=workspace, key="default", name="Default")
    # when
    first = api.post("/api/v1/features", {"name": "Data Storage", "product_id": "default"}, format="json")
    feature_update(feature=Feature.objects.get(key="data-storage"), name="Data Storage (old)")
    second = api.post("/api/v1/features", {"name": "Data Storage", "product_id": "default"}, format="json")
    # then: each slug is reported back as `id`
    assert (first.status_code, first.json()["id"], first.json()["name"]) == (201, "data-storage", "Data Storage")
    assert (second.status_code, second.json()["id"]) == (201, "data-storage-2")
    assert sorted(Feature.objects.values_list("key", flat=True)) == ["data-storage", "data-storage-2"]


def test_a_feature_name_without_letters_gets_a_generic_slug(api, workspace):
    # given
    product_create(workspace=workspace, key="default", name="Default")
    # when
    response = api.post("/api/v1/features", {"name": "###", "product_id": "default"}, format="json")
    # then
    assert (response.status_code, response.json()["id"]) == (201, "feature")


def test_per_user_usage_reads_ids_with_slashes(api, workspace):
    # given: free-text ids, sent percent-encoded
    api.post(
        "/api/v1/events",
        {"account_id": "org/1", "user_id": "jane/x", "feature_id": "api-calls", "quantity": 4},
        format="json",
    )
    # when
    response = api.get("/api/v1/accounts/org%2F1/users/jane%2Fx/usage")
    # then
    assert (response.status_code, response.json()["account_id"], response.json()["user_id"]) == (200, "org/1", "jane/x")
    assert response.json()["uses"] == 4
