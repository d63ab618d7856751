"""Bodies of every JSON endpoint other than /events (which has tests/usage/test_ingest_gzip.py): gzip decoded
by the DRF parser through the same code as /events (core/body.py), other encodings 415, a corrupt stream 400,
a bomb or a plain body past DATA_UPLOAD_MAX_MEMORY_SIZE 413 — each a JSON error naming the problem, with
nothing stored."""

import gzip
import json
import zlib

import pytest

from accounts.models import Account
from catalog.models import Product
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

ACCOUNT = ("put", "/api/v1/accounts/acct-gz", {"name": "Gzipped GmbH", "plan": "pro"})
PRODUCT = ("post", "/api/v1/products", {"id": "gz-product", "name": "Gzipped"})
RECORD = ("post", "/api/v1/usage/record", {"account_id": "acct-gz", "feature_id": "gz.feature", "quantity": -1})
ENDPOINTS = [ACCOUNT, PRODUCT, RECORD]
IDS = ["account-upsert", "product-create", "usage-record"]


def send(api, method: str, path: str, body: bytes, encoding: str | None = "gzip"):
    headers = {"HTTP_CONTENT_ENCODING": encoding} if encoding is not None else {}
    return api.generic(method.upper(), path, body, content_type="application/json", **headers)


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}, "errors": [{"code": code, "message": message}]}


def _stored() -> tuple[int, int, int]:
    return Account.objects.count(), Product.objects.count(), UsageEvent.objects.count()


def test_a_gzip_account_upsert_is_applied(api):
    # when
    response = send(api, "put", "/api/v1/accounts/acct-gz", gzip.compress(b'{"name": "Gzipped GmbH", "plan": "pro"}'))
    # then
    assert response.status_code == 201, response.json()
    assert list(Account.objects.values_list("external_id", "name", "plan")) == [("acct-gz", "Gzipped GmbH", "pro")]


def test_a_gzip_product_and_a_gzip_record_are_applied(api):
    # when
    product = send(api, "post", "/api/v1/products", gzip.compress(json.dumps(PRODUCT[2]).encode()))
    record = send(api, "post", "/api/v1/usage/record", gzip.compress(json.dumps(RECORD[2]).encode()))
    # then
    assert product.status_code == 201 and product.json()["id"] == "gz-product"
    # (the record is read: it is refused for its unknown account, as the same body sent plain would be)
    assert record.status_code == 200
    assert (record.json()["recorded"], record.json()["reason"]) == (False, "unknown_account")


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, br", "compress"])
def test_another_encoding_is_415_naming_it(api, method, path, body, encoding):
    # when a body the server cannot decode is sent (here plain JSON, which was applied as if unencoded)
    response = send(api, method, path, json.dumps(body).encode(), encoding)
    # then
    assert response.status_code == 415
    assert response.json() == _error(
        "unsupported_encoding",
        f"Content-Encoding '{encoding}' is not supported: send the body uncompressed or with Content-Encoding: gzip.",
    )
    assert _stored() == (0, 0, 0)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
@pytest.mark.parametrize(
    ("mangle", "phrase"),
    [
        (lambda raw: raw, "not a valid gzip stream"),
        (lambda raw: gzip.compress(raw)[:-12], "truncated"),
    ],
    ids=["not-gzip", "truncated"],
)
def test_a_corrupt_gzip_body_is_400_invalid_gzip(api, method, path, body, mangle, phrase):
    # when
    response = send(api, method, path, mangle(json.dumps(body).encode()))
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_gzip"
    assert phrase in response.json()["error"]["message"]
    assert _stored() == (0, 0, 0)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_a_gzip_bomb_is_413_after_inflating_no_more_than_the_limit(api, settings, method, path, body):
    # given 8 MiB of spaces after the JSON (valid JSON once inflated) in a few KB of gzip, and a 64 KiB limit
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    payload = compressor.compress(json.dumps(body).encode())
    payload += b"".join(compressor.compress(b" " * (1024 * 1024)) for _ in range(8)) + compressor.flush()
    assert len(payload) < 64 * 1024
    # when
    response = send(api, method, path, payload)
    # then
    assert response.status_code == 413
    assert response.json() == _error(
        "body_too_large",
        "The decompressed body is over the limit; the limit is 65536 bytes per request. Split the batch.",
    )
    assert _stored() == (0, 0, 0)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_a_plain_body_past_the_upload_limit_is_a_json_413(api, settings, method, path, body):
    # given a body one byte over the limit (Django refused to read it with an HTML 400 page)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    raw = json.dumps({**body, "pad": ""}).encode()
    raw = raw.replace(b'"pad": ""', b'"pad": "' + b"x" * (1025 - len(raw)) + b'"')
    assert len(raw) == 1025
    # when
    response = send(api, method, path, raw, encoding=None)
    # then
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == _error("body_too_large", "The body is over the limit of 1024 bytes per request.")
    assert _stored() == (0, 0, 0)


DUPLICATE_KEYS = [
    # (method, path, body): json.loads kept the last value of each without a word
    ("post", "/api/v1/events", b'{"account_id": "a", "feature_id": "f", "quantity": 1, "quantity": 500}'),
    ("post", "/api/v1/events", b'{"events": [], "events": [{"account_id": "a", "feature_id": "f"}]}'),
    ("post", "/api/v1/events", b'[{"account_id": "a", "feature_id": "f", "properties": {"k": 1, "k": 2}}]'),
    ("post", "/api/v1/events/feature.used", b'{"user_id": "u", "feature": "f", "plan": "free", "plan": "pro"}'),
    ("put", "/api/v1/accounts/acct-gz", b'{"name": "First", "name": "Second"}'),
    ("post", "/api/v1/usage/record", b'{"account_id": "a", "feature_id": "f", "attributes": {"x": 1, "x": 1}}'),
    ("post", "/api/v1/products", b'{"id": "p1", "id": "p2", "name": "P"}'),
]


@pytest.mark.parametrize(("method", "path", "body"), DUPLICATE_KEYS)
def test_an_object_naming_a_key_twice_is_400_and_stores_nothing(api, method, path, body):
    # when
    response = send(api, method, path, body, encoding=None)
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "duplicate_key"
    assert "appears twice in one object" in error["message"]
    assert _stored() == (0, 0, 0)


@pytest.mark.parametrize(
    "body",
    [
        b'{"batch": [], "batch": [{"type": "track", "userId": "u", "event": "e", "context": {"groupId": "a"}}]}',
        b'{"batch": [{"type": "track", "userId": "u", "userId": "v", "event": "e", "context": {"groupId": "a"}}]}',
    ],
    ids=["top-level", "in-a-message"],
)
def test_a_segment_batch_naming_a_key_twice_is_400_and_stores_nothing(api, workspace, make_key, body):
    # given
    _, key = make_key(workspace, "ingest")
    # when
    response = api.generic(
        "POST", "/api/segment/v1/batch", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    # then
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["success"]) == ("duplicate_key", False)
    assert _stored() == (0, 0, 0)
