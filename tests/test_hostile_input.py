"""Hostile input outside /events gets a 4xx that names the problem, never a 5xx, and stores nothing: NUL,
lone surrogates and deep nesting in any DRF JSON body (config.jsonio.JSONParser), control characters in
paths and NUL in queries (config.http.RequestTextMiddleware), numbers past bigint, huge limits, and
analytics windows at the ends of the calendar (analytics.selectors.analytics_window)."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Account, EndUser
from alerts.models import AlertPipeline
from catalog.models import Feature
from entitlements.models import ItemEntitlement, SubscriptionEntitlement
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

PIPELINE = {
    "name": "P",
    "trigger": {"type": "event"},
    "destinations": [{"type": "webhook", "url": "https://example.com/hook", "secret": "s" * 20}],
}


def _with(body: dict, path: list, value) -> str:
    """`body` as JSON with `value` (raw JSON text) placed at `path`."""
    marker = "__VALUE__"
    target = body = json.loads(json.dumps(body))
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = marker
    return json.dumps(body).replace(f'"{marker}"', value)


def _error(code: str, message: str, field: str | None = None) -> dict:
    error = {"code": code, "message": message, **({"field": field} if field else {})}
    return {"error": error, "errors": [error]}


NUL = "null_characters_not_allowed"
SURROGATE = "surrogate_characters_not_allowed"
NUL_PHRASE = "contains the NUL character"
SURROGATE_PHRASE = "contains an unpaired surrogate (invalid Unicode)"

BAD_BODIES = [
    (
        "put",
        "/api/v1/accounts/a1",
        _with({}, ["attributes"], '{"note": "x\\u0000y"}'),
        NUL,
        "attributes.note",
        NUL_PHRASE,
    ),
    ("put", "/api/v1/accounts/a1", _with({}, ["attributes"], '{"\\ud800": 1}'), SURROGATE, "attributes.\ufffd", None),
    ("put", "/api/v1/accounts/a1", _with({}, ["plan"], '"pro\\ud800"'), SURROGATE, "plan", SURROGATE_PHRASE),
    ("put", "/api/v1/accounts/a1", _with({}, ["name"], '"\\u0000"'), NUL, "name", NUL_PHRASE),
    (
        "put",
        "/api/v1/accounts/a1/users/u1",
        _with({}, ["attributes"], '{"k": ["\\u0000"]}'),
        NUL,
        "attributes.k[0]",
        NUL_PHRASE,
    ),
    ("post", "/api/v1/pipelines", _with(PIPELINE, ["name"], '"P\\u0000"'), NUL, "name", NUL_PHRASE),
    (
        "post",
        "/api/v1/pipelines",
        _with(PIPELINE, ["destinations", 0, "url"], '"https://e.com/\\u0000"'),
        NUL,
        "destinations[0].url",
        NUL_PHRASE,
    ),
    (
        "post",
        "/api/v1/pipelines",
        _with(PIPELINE, ["destinations", 0, "secret"], '"ssssssssssssssss\\udfff"'),
        SURROGATE,
        "destinations[0].secret",
        SURROGATE_PHRASE,
    ),
    (
        "post",
        "/api/v1/pipelines",
        _with(PIPELINE, ["trigger", "plans"], '["free\\u0000"]'),
        NUL,
        "trigger.plans[0]",
        NUL_PHRASE,
    ),
    ("post", "/api/v1/features", '{"id": "f", "name": "F\\u0000", "product_id": "default"}', NUL, "name", NUL_PHRASE),
    (
        "post",
        "/api/v1/usage/record",
        '{"account_id": "a", "feature_id": "f", "properties": {"\\u0000": 1}}',
        NUL,
        "properties.\u2400",
        None,
    ),
]


def _stored() -> tuple:
    return (
        Account.objects.count(),
        EndUser.objects.count(),
        AlertPipeline.objects.count(),
        Feature.objects.count(),
        UsageEvent.objects.count(),
    )


@pytest.mark.parametrize(("method", "path", "body", "code", "field", "phrase"), BAD_BODIES)
def test_nul_and_lone_surrogates_in_json_bodies_are_400_naming_the_field(api, method, path, body, code, field, phrase):
    # when
    response = getattr(api, method)(path, body, content_type="application/json")
    # then the answer names the place and the problem, and nothing is stored
    assert response.status_code == 400
    expected = phrase or ("is a key that " + (NUL_PHRASE if code == NUL else SURROGATE_PHRASE))
    assert response.json() == _error(code, f"'{field}' {expected}.", field)
    assert _stored() == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/api/v1/accounts/a1"), ("post", "/api/v1/pipelines"), ("post", "/api/v1/usage/record")],
)
def test_json_nested_50000_deep_is_400(api, method, path):
    # when a body nests 50,000 lists (json.loads runs out of stack)
    response = getattr(api, method)(path, "[" * 50_000 + "]" * 50_000, content_type="application/json")
    # then
    assert response.status_code == 400
    assert response.json() == _error("parse_error", "JSON parse error - the body nests too deeply.")
    assert _stored() == (0, 0, 0, 0, 0)


def test_json_nested_past_64_levels_is_400_naming_the_field(api):
    # when an attribute nests 100 levels (json.loads copes; jsonb and serializers should not have to)
    response = api.put(
        "/api/v1/accounts/a1", '{"attributes": ' + "[" * 100 + "]" * 100 + "}", content_type="application/json"
    )
    # then
    assert response.status_code == 400
    assert response.json() == _error("too_deep", "'attributes' nests JSON deeper than 64 levels.", "attributes")
    assert _stored() == (0, 0, 0, 0, 0)


NUL_PATHS = [
    ("get", "/api/v1/features/a%00b"),
    ("get", "/api/v1/products/a%00b"),
    ("get", "/api/v1/modules/a%00b"),
    ("get", "/api/v1/items/a%00b"),
    ("get", "/api/v1/subscriptions/a%00b"),
    ("put", "/api/v1/items/x/entitlements/a%00b"),
    ("put", "/api/v1/subscriptions/x/entitlements/a%00b"),
    ("get", "/api/v1/accounts/a%00b/entitlements"),
    ("put", "/api/v1/accounts/a%00b"),
    ("put", "/api/v1/accounts/a/users/a%00b"),
    ("get", "/api/v1/accounts/a%00b/analytics/daily"),
    ("get", "/api/v1/products/a%00b/analytics/feature-usage"),
    ("get", "/api/v1/products/default/analytics/features/a%00b/daily"),
    ("post", "/api/v1/features/a%00b/activate"),
]


@pytest.mark.parametrize(("method", "path"), NUL_PATHS)
def test_nul_in_a_path_key_is_400(api, method, path):
    # when
    response = getattr(api, method)(path, {"value": "1"}, format="json")
    # then
    assert response.status_code == 400
    assert response.json() == _error(NUL, "The path contains the control character U+0000; no id or key holds one.")
    assert _stored() == (0, 0, 0, 0, 0)


@pytest.mark.parametrize("path", ["/features/a%00b/", "/accounts/a%00b/", "/lists/dormant%00/"])
def test_nul_in_a_dashboard_path_is_400(workspace, staff_of, path):
    # given a member of the workspace
    client = Client()
    client.force_login(staff_of(workspace, "viewer"))
    # when
    response = client.get(path)
    # then
    assert response.status_code == 400
    assert response.content == b"The path contains the control character U+0000; no id or key holds one."


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/v1/accounts/%ff%fe"),
        ("put", "/api/v1/accounts/a/users/%ed%a0%80"),  # a surrogate, UTF-8-encoded: not UTF-8
        ("get", "/api/v1/accounts/%c0%af/entitlements"),  # an overlong `/`
        ("get", "/api/v1/subscriptions/%ff"),
    ],
)
def test_a_path_whose_bytes_are_not_utf8_is_400(api, method, path):
    # when, through a server that passes the raw path on as gunicorn does (Django shows such bytes as `%FF`:
    # the account `%FF` was created, the same as `/accounts/%25FF`)
    response = getattr(api, method)(path, {"attributes": {}}, format="json", RAW_URI=path)
    # then
    assert response.status_code == 400
    assert response.json() == _error(
        "invalid_path", "The path is not UTF-8 text once percent-decoded: encode ids as UTF-8 (é is %C3%A9)."
    )
    assert _stored() == (0, 0, 0, 0, 0)


def test_a_percent_sign_in_an_id_is_still_an_id(api):
    # when an id holds a literal `%FF`, sent percent-encoded
    response = api.put("/api/v1/accounts/%25FF", {"name": "Percent"}, format="json", RAW_URI="/api/v1/accounts/%25FF")
    # then
    assert response.status_code == 201
    assert list(Account.objects.values_list("external_id", "name")) == [("%FF", "Percent")]


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1@evil.example", "a b"])
def test_a_host_outside_allowed_hosts_is_a_json_400_on_the_api(api, host):
    # when (Django's HTML page said nothing: "Bad Request (400)")
    response = api.get("/api/v1/products", HTTP_HOST=host)
    # then
    assert (response.status_code, response["Content-Type"]) == (400, "application/json")
    assert response.json() == _error("disallowed_host", "The Host header names no host this server answers to.")


@pytest.mark.parametrize("path", ["/api/v1", "/api/segment", "/api/segment/v1"])
def test_the_api_roots_without_their_slash_answer_the_json_404(api, path):
    # when (Django's HTML page: they are not under the API prefixes)
    response = api.get(path)
    # then
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json()["error"]["code"] == "not_found"


def test_a_host_outside_allowed_hosts_is_still_djangos_page_elsewhere(db):
    # when
    response = Client().get("/admin/login/", HTTP_HOST="evil.example")
    # then
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/api/v1/products", "/api/v1/entitlements/check?account_id=a&feature_id=f"])
def test_an_empty_accept_header_is_no_accept_header(api, product, path):
    # when (the fast paths served it; DRF's views answered 406, so a key the fast path handed over got 406, not 403)
    response = api.get(path, HTTP_ACCEPT="")
    # then
    assert (response.status_code, response["Content-Type"]) == (200, "application/json")


def test_nul_in_the_workspace_switch_form_is_400(workspace, staff_of):
    # given a member of the workspace
    client = Client()
    client.force_login(staff_of(workspace, "viewer"))
    # when the form posts a workspace slug with NUL (it reached the query: a 500)
    response = client.post("/switch-workspace/", {"workspace": "acme\x00"})
    # then
    assert (response.status_code, response.content) == (400, b"'workspace' contains the NUL character.")


def test_nul_in_a_query_parameter_is_400_naming_it(api):
    # when
    response = api.get("/api/v1/entitlements/check?account_id=a%00b&feature_id=f")
    features = api.get("/api/v1/features?status=a%00")
    # then
    assert response.status_code == 400
    assert response.json() == _error(NUL, "The query parameter 'account_id' contains the NUL character.", "account_id")
    assert features.json() == _error(NUL, "The query parameter 'status' contains the NUL character.", "status")


@pytest.fixture
def range_feature(api, product):
    created = api.post(
        "/api/v1/features",
        {
            "id": "seats",
            "name": "Seats",
            "product_id": "default",
            "type": "range",
            "levels": [{"value": "0", "name": "min"}, {"value": "unlimited", "name": "max", "is_unlimited": True}],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert api.post("/api/v1/features/seats/activate").status_code == 200
    assert api.post("/api/v1/items", {"id": "plan", "name": "Plan", "type": "plan"}, format="json").status_code == 201
    subscription = {"id": "s1", "account_id": "a1", "items": []}
    Account.objects.create(workspace=product.workspace, external_id="a1")
    assert api.post("/api/v1/subscriptions", subscription, format="json").status_code == 201


@pytest.mark.parametrize(
    "path", ["/api/v1/items/plan/entitlements/seats", "/api/v1/subscriptions/s1/entitlements/seats"]
)
@pytest.mark.parametrize("value", ["9" * 5000, "9223372036854775808", "١٢"])
def test_an_entitlement_value_past_bigint_is_400_and_stores_nothing(api, range_feature, path, value):
    # when a range value is 5,000 digits long, 2⁶³, or non-ASCII digits
    response = api.put(path, {"value": value}, format="json")
    # then
    shown = value[:64] + ("…" if len(value) > 64 else "")
    assert response.status_code == 400
    assert response.json() == _error(
        "invalid_value",
        f"'value' of range feature 'seats' must be a whole number from 0 to 9223372036854775807 or \"unlimited\", "
        f'not "{shown}".',
        "value",
    )
    assert ItemEntitlement.objects.count() == 0 and SubscriptionEntitlement.objects.count() == 0


def test_the_largest_bigint_value_is_accepted(api, range_feature):
    # when
    response = api.put("/api/v1/items/plan/entitlements/seats", {"value": "9223372036854775807"}, format="json")
    # then
    assert response.status_code == 200, response.json()
    assert list(ItemEntitlement.objects.values_list("value", flat=True)) == ["9223372036854775807"]


def test_a_limit_past_bigint_is_capped(api, product):
    # when
    response = api.get("/api/v1/products", {"limit": "99999999999999999999"})
    # then
    assert response.status_code == 200
    assert response.json()["count"] == 1 and [p["id"] for p in response.json()["results"]] == ["default"]


@pytest.mark.parametrize(
    ("name", "value", "minimum"),
    [
        ("limit", "abc", 1),
        ("limit", "-1", 1),
        ("limit", "0", 1),
        ("limit", "1.5", 1),
        ("limit", "1e3", 1),
        ("limit", "\uff15", 1),  # a fullwidth 5: int() reads it
        ("offset", "-5", 0),
        ("offset", "0x10", 0),
        ("offset", "NaN", 0),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/products", "/api/v1/features", "/api/v1/subscriptions"])
def test_a_limit_or_offset_that_is_no_whole_number_is_400_naming_it(api, product, path, name, value, minimum):
    # when (DRF read each as absent and answered the first page of 100)
    response = api.get(path, {name: value})
    # then
    assert response.status_code == 400
    assert response.json() == _error("invalid", f"'{name}' must be a whole number from {minimum}, not '{value}'.", name)


def test_an_empty_limit_is_the_default_and_a_huge_offset_an_empty_page(api, product):
    # when
    default = api.get("/api/v1/products", {"limit": "", "offset": ""})
    past = api.get("/api/v1/products", {"offset": "9" * 40})
    # then
    assert default.status_code == 200 and [p["id"] for p in default.json()["results"]] == ["default"]
    assert past.status_code == 200 and (past.json()["count"], past.json()["results"]) == (1, [])


@pytest.mark.parametrize(
    ("value", "expected"), [("true", []), ("FALSE", ["default-f"]), ("1", []), ("", ["default-f"])]
)
def test_the_metered_filter_reads_true_and_false(api, product, value, expected):
    # given an unmetered feature
    assert api.post("/api/v1/features", {"id": "default-f", "name": "F", "product_id": "default"}, format="json")
    # when
    response = api.get("/api/v1/features", {"metered": value})
    # then
    assert [f["id"] for f in response.json()["results"]] == expected


@pytest.mark.parametrize("value", ["maybe", "yes", "2"])
def test_a_metered_filter_that_is_no_boolean_is_400(api, product, value):
    # when (it was ignored: every feature was listed)
    response = api.get("/api/v1/features", {"metered": value})
    # then
    assert response.status_code == 400
    assert response.json() == _error("invalid", f"'{value}' is not a boolean: use true or false.", "metered")


@pytest.mark.parametrize(
    ("query", "field", "value"),
    [
        ({"from": "0001-01-01", "to": "0001-01-05"}, "from", "0001-01-01"),
        ({"to": "9999-12-30"}, "to", "9999-12-30"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "from", "9999-12-30"),
        ({"from": "1969-12-31"}, "from", "1969-12-31"),
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/products/default/analytics/feature-usage",
        "/api/v1/products/default/analytics/features/f/daily",
        "/api/v1/accounts/a/analytics/daily",
    ],
)
def test_analytics_windows_at_the_ends_of_the_calendar_are_400(api, path, query, field, value):
    # given an account, a product and a feature with usage
    assert api.post("/api/v1/events", {"account_id": "a", "feature_id": "f"}, format="json").status_code == 200
    # when
    response = api.get(path, query)
    # then
    assert response.status_code == 400
    assert response.json() == _error(
        "date_out_of_range", f"'{field}' ({value}) must be a UTC date from 1970-01-01 to 2999-12-31.", field
    )


@pytest.mark.parametrize("page", ["/", "/features/f/", "/accounts/a/", "/lists/usage-drop/", "/lists/free-unentitled/"])
@pytest.mark.parametrize("query", [{"from": "0001-01-01", "to": "0001-01-05"}, {"to": "9999-12-30"}])
def test_dashboard_windows_at_the_ends_of_the_calendar_are_400(api, workspace, staff_of, page, query):
    # given a workspace with rolled-up usage and a member
    from datetime import timedelta

    from analytics.services import rollup_pending

    assert api.post("/api/v1/events", {"account_id": "a", "feature_id": "f"}, format="json").status_code == 200
    rollup_pending(now=timezone.now() + timedelta(seconds=1))
    client = Client()
    client.force_login(staff_of(workspace, "viewer"))
    # when
    response = client.get(page, query)
    # then the form says what is wrong
    assert response.status_code == 400
    assert b"must be a UTC date from 1970-01-01 to 2999-12-31" in response.content
