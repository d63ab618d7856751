"""The API's OpenAPI contract (config/schema.py) and the deploy checks: the schema generates without a single
drf-spectacular warning, documents every error answer with the one error schema, and `check --deploy` passes
with README's production values."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from alerts.models import AlertPipeline

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
ERROR_REF = {"$ref": "#/components/schemas/Error"}
SEGMENT_ERROR_REF = {"$ref": "#/components/schemas/SegmentError"}


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def readme_production_values() -> dict[str, str]:
    """The variables of README's "Production values" block, as an operator would set them."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Production values", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    values = {}
    for line in block.splitlines():
        name, _, value = line.split("#", 1)[0].strip().partition("=")
        values[name] = value.strip().strip('"')
    return values


@pytest.fixture(scope="module")
def schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


def operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
    ]


# ---------------------------------------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------------------------------------


def test_spectacular_validates_the_schema_without_a_warning():
    # when
    result = manage("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)
    # then
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    assert "Error" not in result.stderr


def test_every_operation_documents_the_errors_of_the_request_cycle_with_the_error_schema(schema):
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        # The Segment-compatible endpoints answer their refusals of a body in Segment's own shape.
        own = [ERROR_REF, SEGMENT_ERROR_REF] if path.startswith("/api/segment/") else [ERROR_REF]

        def schema_of(code: str, responses=responses) -> dict:
            return responses[code].get("content", {}).get("application/json", {}).get("schema")

        for code in ("400", "401", "403", "406", "429", "503"):
            assert schema_of(code) in own, (method, path, code)
        if own == [ERROR_REF]:
            assert set(responses["429"]["headers"]) == {"Retry-After"}, (method, path)
            assert set(responses["503"]["headers"]) == {"Retry-After"}, (method, path)
        if "{" in path:
            assert schema_of("404") in own, (method, path)
        if "requestBody" in operation:
            assert {"411", "413", "415"} <= set(responses), (method, path)
        if own == [ERROR_REF]:
            assert all(schema_of(code) == ERROR_REF for code in responses if code >= "400"), (method, path)


def test_the_error_schema_is_the_payload_of_the_exception_handler(schema, api):
    # when
    answer = api.get("/api/v1/features/nope")
    # then
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"code": "unknown_feature", "message": "No feature 'nope'."},
        "errors": [{"code": "unknown_feature", "message": "No feature 'nope'."}],
    }
    components = schema["components"]["schemas"]
    assert components["Error"]["required"] == ["error", "errors"]
    assert components["ErrorBody"]["required"] == ["code", "message"]
    assert sorted(components["ErrorBody"]["properties"]) == ["code", "field", "message"]


def test_domain_statuses_are_documented_where_they_can_happen(schema):
    paths = schema["paths"]
    # 409: catalog and entitlement writes (taken keys and names, lifecycle moves, archived features)
    assert "409" in paths["/api/v1/features"]["post"]["responses"]
    assert "409" in paths["/api/v1/features/{key}/archive"]["post"]["responses"]
    assert "409" in paths["/api/v1/items/{key}/entitlements/{feature_key}"]["put"]["responses"]
    assert "409" not in paths["/api/v1/features"]["get"]["responses"]
    # 402: analytics on the free tier; 413: the events body
    assert "402" in paths["/api/v1/products/{product_id}/analytics/feature-usage"]["get"]["responses"]
    assert "413" in paths["/api/v1/events"]["post"]["responses"]
    # a GET without path parameters cannot be a 404, nor a 409
    assert sorted(paths["/api/v1/workspace"]["get"]["responses"]) == ["200", "400", "401", "403", "406", "429", "503"]


def test_operation_ids_are_unique_and_readable(schema):
    ids = [operation["operationId"] for _, _, operation in operations(schema)]
    assert len(ids) == len(set(ids))
    assert not [i for i in ids if re.search(r"_\d+$", i) or i.startswith("v1_")]
    assert {"features_list", "features_retrieve", "features_activate", "entitlements_check", "usage_record"} <= set(ids)


def test_enums_are_named_after_their_choice_sets(schema):
    enums = sorted(name for name in schema["components"]["schemas"] if name.endswith("Enum"))
    assert not [name for name in enums if re.search(r"[0-9a-f]{3}Enum$", name)]
    assert {"LifecycleEnum", "FeatureTypeEnum", "ItemTypeEnum", "SubscriptionStatusEnum", "TriggerTypeEnum"} <= set(
        enums
    )


def test_paginated_lists_are_documented_as_paginated(schema):
    for path in (
        "products",
        "modules",
        "features",
        "items",
        "subscriptions",
        "pipelines",
        "pipelines/{pipeline_id}/deliveries",
    ):
        operation = schema["paths"][f"/api/v1/{path}"]["get"]
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert component["required"] == ["count", "results"], path
        assert {p["name"] for p in operation["parameters"]} >= {"limit", "offset"}, path


def test_a_list_answers_the_documented_page(api, product):
    # when
    answer = api.get("/api/v1/products?limit=99999999999999999999")
    # then: an absurd limit is clamped to the largest page instead of reaching PostgreSQL
    product.refresh_from_db()
    assert answer.status_code == 200
    assert answer.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {"id": "default", "name": "Default", "description": "", "resource_version": product.resource_version}
        ],
    }


# ---------------------------------------------------------------------------------------------------------
# Answers the fuzz suite found undocumented or 5xx
# ---------------------------------------------------------------------------------------------------------


def test_an_api_path_without_a_route_answers_the_json_error(api, client):
    # when
    answer = api.get("/api/v1/pipelines/null%2Cnull")
    # then
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/json"
    body = {
        "code": "not_found",
        "message": "No such endpoint: check the path against /api/docs/ (ids in paths are percent-encoded).",
    }
    assert answer.json() == {"error": body, "errors": [body]}
    # and a page outside the API keeps Django's HTML 404
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")


def test_a_pipeline_trigger_type_that_is_not_a_string_is_a_400(api):
    # when
    answer = api.post(
        "/api/v1/pipelines",
        {"name": "p", "trigger": {"type": {}}, "destinations": []},
        format="json",
    )
    # then
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "invalid_choice",
        "message": "trigger.type must be one of event, threshold, paid_feature_on_free_plan, dormant, usage_drop; "
        "got {}.",
        "field": "trigger.type",
    }
    assert AlertPipeline.objects.count() == 0


# ---------------------------------------------------------------------------------------------------------
# check --deploy
# ---------------------------------------------------------------------------------------------------------


def test_check_deploy_passes_with_the_readme_production_values():
    # given README's production values; the database and Redis stay this test run's own (the check connects
    # to neither, and nothing may reach for hosts outside this machine)
    env = os.environ.copy()
    env.update(readme_production_values())
    env["SECRET_KEY"] = secrets.token_urlsafe(60)
    env["DATABASE_URL"] = os.environ.get("DATABASE_URL", env["DATABASE_URL"])
    env["REDIS_URL"] = os.environ.get("REDIS_URL", "")
    # when
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_check_deploy_reads_every_production_value_of_the_readme():
    assert sorted(readme_production_values()) == [
        "ALLOWED_HOSTS",
        "BEHIND_TLS_PROXY",
        "CSRF_COOKIE_SECURE",
        "CSRF_TRUSTED_ORIGINS",
        "DATABASE_URL",
        "DEBUG",
        "REDIS_URL",
        "SECRET_KEY",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "STATICFILES_STORAGE",
        "WHITENOISE_USE_FINDERS",
    ]
