"""Fuzz suite: schemathesis over every operation of the OpenAPI schema, against the app on real PostgreSQL.

Each operation is one test: a seeded workspace (catalog, accounts, a subscription, a pipeline) and a key with
every scope; schemathesis generates requests that fit the schema and requests that do not, and every answer
must be a documented status (never a 5xx) with the documented content type and body schema. Path parameters
are drawn half the time from the seeded objects, so answers other than 404 are exercised too; every path
parameter of every operation also gets each of HOSTILE_IDS once (deterministically: random generation rarely
hits NUL in a path), and every operation with a body gets each of HOSTILE_REQUESTS (a gzip body read as the same
body plain, another Content-Encoding, a corrupt stream, a bomb, a key twice, a body past the size limit, Basic
credentials that are not ASCII: what no generator draws).

Examples per operation: UPTAKE_FUZZ_EXAMPLES (default below, sized for CI on 2 cores). Runs derandomized, so a
CI failure reproduces locally with the same command.
"""

import gzip
import os
from urllib.parse import quote

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Account, EndUser
from accounts.services import api_key_create, workspace_create
from alerts.services import pipeline_create, pipeline_test_send
from analytics.services import rollup_pending
from catalog.services import (
    feature_activate,
    feature_create,
    item_activate,
    item_create,
    module_create,
    product_create,
)
from config.wsgi import application
from entitlements.services import item_entitlement_set, subscription_create
from usage.services import events_ingest

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("UPTAKE_FUZZ_EXAMPLES", "60"))
# Alert destinations the fuzzer invents are pointed here: nothing is ever sent beyond this machine.
LOOPBACK_RECEIVER = "http://127.0.0.1:9/fuzz"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json",
    application,
    config=schemathesis.Config.from_dict({"generation": {"mode": "all"}}),
)

# The seeded objects' ids by path parameter name, filled by the `seeded` fixture before any example is drawn.
SEEDED: dict[str, object] = {}
_OBJECT_KEY = {"products": "product", "modules": "module", "features": "feature", "items": "item"}


def _known(name: str, path: str) -> object:
    if name == "key":
        # /products/{key}, /modules/{key}, /features/{key}, /items/{key}…: the seeded object of that collection.
        segments = path.split("/")
        return SEEDED[_OBJECT_KEY[segments[segments.index("{key}") - 1]]]
    return SEEDED[name]


def _path_names(path: str) -> list[str]:
    return [segment[1:-1] for segment in path.split("/") if segment.startswith("{")]


@schema.hook
def before_generate_path_parameters(context, strategy):
    path = context.operation.path
    known = st.builds(lambda: {name: _known(name, path) for name in _path_names(path)})
    return st.one_of(strategy, known)


def _loopback_urls(value):
    if isinstance(value, dict):
        return {
            k: LOOPBACK_RECEIVER if k == "url" and isinstance(v, str) else _loopback_urls(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_loopback_urls(item) for item in value]
    return value


@schema.hook
def map_body(context, body):
    if context.operation.path.startswith("/api/v1/pipelines"):
        return _loopback_urls(body)
    return body


@pytest.fixture
def in_test_transaction():
    """Requests go straight to the WSGI app, so (as Django's test client does) the connection is not closed
    at the end of each request: it holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(settings, in_test_transaction) -> str:
    """The seeded workspace; returns a raw API key with every scope."""
    settings.UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS = True
    workspace = workspace_create(slug="fuzz", name="Fuzz Inc.", tier="paid")
    _, raw_key = api_key_create(workspace=workspace, scopes=["ingest", "read", "admin"])
    product = product_create(workspace=workspace, key="default", name="Default")
    module = module_create(workspace=workspace, product=product, key="reports", name="Reports")
    feature = feature_activate(
        feature=feature_create(workspace=workspace, key="export", name="Export", product=product, module=module)
    )
    item = item_activate(item=item_create(workspace=workspace, key="pro", name="Pro", type="plan"))
    item_entitlement_set(item=item, feature=feature, value="true")
    account = Account.objects.create(workspace=workspace, external_id="acct-1", name="Account One", plan="pro")
    EndUser.objects.create(workspace=workspace, account=account, external_id="user-1")
    subscription_create(workspace=workspace, external_id="sub-1", account=account, status="active", items=[item])
    pipeline = pipeline_create(
        workspace=workspace,
        name="Fuzz pipeline",
        trigger={"type": "event", "features": ["export"]},
        destinations=[{"type": "webhook", "url": LOOPBACK_RECEIVER, "secret": "fuzz-secret-0123456789"}],
    )
    pipeline_test_send(pipeline=pipeline)  # a delivery row (sent after commit: never, in this transaction)
    now = timezone.now()
    events = [
        {"account_id": "acct-1", "user_id": "user-1", "feature_id": "export", "quantity": 3},
        {"account_id": "acct-2", "feature_id": "reports.pdf", "product_id": "default", "quantity": 2},
    ]
    events_ingest(workspace=workspace, payload=events, now=now)
    rollup_pending(now=now)
    SEEDED.update(
        product="default",
        module="reports",
        feature="export",
        item="pro",
        feature_key="export",
        feature_id="export",
        product_id="default",
        account_id="acct-1",
        user_id="user-1",
        subscription_id="sub-1",
        pipeline_id=pipeline.pk,
        channel_id=pipeline.channel_links.get().channel_id,
    )
    return raw_key


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, seeded):
    # given a seeded workspace and a key with every scope
    # when the fuzzer's request is sent / then the answer is documented, never a 5xx
    # (each example runs in a savepoint rolled back after it, so every example starts from the seeded state)
    savepoint = transaction.savepoint()
    try:
        case.call_and_validate(headers={"Authorization": f"Bearer {seeded}"}, checks=CHECKS)
    finally:
        transaction.savepoint_rollback(savepoint)


# Ids as customers and attackers write them, percent-encoded into the path by schemathesis.
HOSTILE_IDS = ["org/1", "acct:42", "a b", "jane@example.com", "a\x00b", "tab\there", "..", "%2F", "é" * 65, "x" * 300]
WITH_PATH_PARAMETERS = sorted(
    (operation.method.upper(), operation.path)
    for operation in (result.ok() for result in schema.get_all_operations())
    if "{" in operation.path
)


@pytest.mark.parametrize(("method", "path"), WITH_PATH_PARAMETERS, ids=[f"{m} {p}" for m, p in WITH_PATH_PARAMETERS])
def test_hostile_ids_in_every_path_answer_as_documented(method, path, seeded):
    operation = schema[path][method]
    for hostile in HOSTILE_IDS:
        for name in _path_names(path):
            # given every other path parameter naming a seeded object, this one hostile
            params = {other: _known(other, path) for other in _path_names(path)} | {name: hostile}
            body = {} if operation.body else NOT_SET
            case = operation.Case(path_parameters=params, body=body, media_type="application/json")
            savepoint = transaction.savepoint()
            try:
                # when / then
                case.call_and_validate(headers={"Authorization": f"Bearer {seeded}"}, checks=CHECKS)
            finally:
                transaction.savepoint_rollback(savepoint)


# Requests no generator draws (it keeps to the schema's media type and sends no Content-Encoding) but clients and
# attackers send: a compressed body, another coding, a corrupt stream, an object naming a key twice, a body past
# the size limit, Basic credentials that are not ASCII. Each must be answered with a documented status and the
# Error shape, never a 5xx.
_OVERSIZED_LIMIT = 4096
HOSTILE_REQUESTS = {
    "gzip-json": ({"HTTP_CONTENT_ENCODING": "gzip"}, gzip.compress(b'{"name": "gz", "quantity": 1}')),
    "brotli-claimed": ({"HTTP_CONTENT_ENCODING": "br"}, b'{"name": "br"}'),
    "corrupt-gzip": ({"HTTP_CONTENT_ENCODING": "gzip"}, b"\x1f\x8b\x08\x00not gzip"),
    "gzip-bomb": ({"HTTP_CONTENT_ENCODING": "gzip"}, gzip.compress(b" " * (4 * 1024 * 1024), compresslevel=9)),
    "duplicate-key": ({}, b'{"name": "a", "name": "b", "batch": [], "batch": []}'),
    "oversized": ({}, b'{"name": "' + b"x" * _OVERSIZED_LIMIT + b'"}'),
    "basic-not-ascii": ({"HTTP_AUTHORIZATION": "Basic \u00c3\u00a9"}, b"{}"),
}
WITH_BODIES = sorted(
    (operation.method.upper(), operation.path)
    for operation in (result.ok() for result in schema.get_all_operations())
    if operation.body
)


@pytest.mark.parametrize(("method", "path"), WITH_BODIES, ids=[f"{m} {p}" for m, p in WITH_BODIES])
def test_hostile_bodies_and_headers_on_every_operation_answer_as_documented(method, path, seeded, settings):
    # given a small request size limit (so "oversized" is over it, and the bomb inflates past it)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = _OVERSIZED_LIMIT
    settings.UPTAKE_INGEST_MAX_BYTES = settings.UPTAKE_SEGMENT_MAX_BATCH_BYTES = _OVERSIZED_LIMIT
    documented = set(schema.raw_schema["paths"][path][method.lower()]["responses"])
    url = path
    for name in _path_names(path):
        url = url.replace("{" + name + "}", quote(str(_known(name, path)), safe=""))
    client = Client()

    def send(headers: dict, body: bytes):
        savepoint = transaction.savepoint()
        try:
            headers = {"HTTP_AUTHORIZATION": f"Bearer {seeded}", **headers}
            return client.generic(method, url, body, content_type="application/json", **headers)
        finally:
            transaction.savepoint_rollback(savepoint)

    answers = {label: send(headers, body) for label, (headers, body) in HOSTILE_REQUESTS.items()}
    plain = send({}, gzip.decompress(HOSTILE_REQUESTS["gzip-json"][1]))
    for label, response in answers.items():
        # then a documented status; a refusal in the Error shape, as JSON
        assert response.status_code < 500, (label, response.status_code, response.content[:300])
        assert str(response.status_code) in documented, (label, response.status_code, sorted(documented))
        if response.status_code >= 400:
            assert response["Content-Type"] == "application/json", (label, response["Content-Type"])
            error = response.json()["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str), (label, error)
    # and a gzip body is read as the same body sent plain; what cannot be read is refused by name
    assert answers["gzip-json"].status_code == plain.status_code, (answers["gzip-json"].content[:300], plain.content)
    assert _code(answers["brotli-claimed"]) == "unsupported_encoding"
    assert _code(answers["corrupt-gzip"]) == "invalid_gzip"
    assert _code(answers["gzip-bomb"]) in ("body_too_large", "invalid_gzip"), answers["gzip-bomb"].content[:300]
    assert _code(answers["oversized"]) == "body_too_large"
    assert _code(answers["duplicate-key"]) == "duplicate_key"
    assert (answers["basic-not-ascii"].status_code, _code(answers["basic-not-ascii"])) == (401, "authentication_failed")


def _code(response) -> str | None:
    return response.json()["error"]["code"] if response.status_code >= 400 else None
