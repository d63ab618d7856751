"""`Content-Encoding: gzip` bodies on POST /api/v1/events, through the fast path and the DRF view alike: the
byte limit on the decompressed size, a bomb refused while inflating, corrupt and truncated streams, other
encodings."""

import gzip
import json
import zlib

import pytest

from usage.models import UsageEvent

GOOD = {"account_id": "acct-gz", "feature_id": "gz.feature"}
# The fast path serves a plain JSON Accept; any other Accept goes to the DRF view (config.api.JSON_ACCEPTS).
PATHS = {"fast": "application/json", "drf": "application/json, text/plain"}


def post(api, body: bytes, *, path: str, encoding: str | None = "gzip"):
    headers = {"HTTP_ACCEPT": PATHS[path]}
    if encoding is not None:
        headers["HTTP_CONTENT_ENCODING"] = encoding
    return api.generic("POST", "/api/v1/events", body, content_type="application/json", **headers)


@pytest.mark.parametrize("path", PATHS)
def test_a_gzip_batch_is_stored(api, path):
    # given
    events = [{**GOOD, "event_id": f"gz-{i}", "quantity": i + 1} for i in range(3)]
    body = gzip.compress(json.dumps({"events": events}).encode())
    # when
    response = post(api, body, path=path)
    # then
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "ignored": 0, "rejected": [], "warnings": []}
    assert sorted(UsageEvent.objects.values_list("event_id", "quantity")) == [("gz-0", 1), ("gz-1", 2), ("gz-2", 3)]


@pytest.mark.parametrize("path", PATHS)
def test_x_gzip_and_concatenated_members_are_one_body(api, path):
    # given a body cut in two, each half its own gzip member (as `cat a.gz b.gz` makes)
    raw = json.dumps([{**GOOD, "event_id": "m-1"}, {**GOOD, "event_id": "m-2"}]).encode()
    body = gzip.compress(raw[:10]) + gzip.compress(raw[10:])
    # when
    response = post(api, body, path=path, encoding="X-Gzip")
    # then
    assert (response.status_code, response.json()["accepted"]) == (200, 2)
    assert UsageEvent.objects.count() == 2


@pytest.mark.parametrize("path", PATHS)
def test_the_limit_is_on_the_decompressed_size(api, settings, path):
    # given a 300-byte body that compresses far below the 200-byte limit
    settings.UPTAKE_INGEST_MAX_BYTES = 200
    raw = json.dumps({**GOOD, "properties": {"pad": "x" * 220}}).encode()
    body = gzip.compress(raw)
    assert len(body) < 200 < len(raw)
    # when
    response = post(api, body, path=path)
    # then
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "body_too_large",
        "message": "The decompressed body is over the limit; the limit is 200 bytes per request. Split the batch.",
    }
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("path", PATHS)
def test_a_body_exactly_at_the_limit_decompressed_is_accepted(api, settings, path):
    # given
    raw = json.dumps({**GOOD, "properties": {"pad": ""}})
    settings.UPTAKE_INGEST_MAX_BYTES = len(raw) + 50
    raw = raw.replace('"pad": ""', '"pad": "' + "y" * 50 + '"').encode()
    assert len(raw) == settings.UPTAKE_INGEST_MAX_BYTES
    # when
    response = post(api, gzip.compress(raw), path=path)
    # then
    assert (response.status_code, response.json()["accepted"]) == (200, 1)


@pytest.mark.parametrize("path", PATHS)
def test_a_gzip_bomb_is_refused_without_inflating_it(api, path):
    # given 64 MiB of zeros in ~64 KB of gzip (far under the 1 MiB limit as sent)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1024 * 1024)
    body = b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()
    assert len(body) < 1024 * 1024
    # when
    response = post(api, body, path=path)
    # then
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("path", PATHS)
def test_a_compressed_body_over_the_limit_as_sent_is_413(api, settings, path):
    # given incompressible bytes larger than the limit even compressed
    settings.UPTAKE_INGEST_MAX_BYTES = 100
    body = gzip.compress(bytes(range(256)) * 2)
    # when
    response = post(api, body, path=path)
    # then
    assert response.status_code == 413
    assert response.json()["error"]["message"] == (
        f"The compressed body is {len(body)} bytes; the limit is 100 bytes per request. Split the batch."
    )
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (b"not gzip at all", "not a valid gzip stream"),
        (gzip.compress(json.dumps(GOOD).encode())[:-12], "truncated"),
        (gzip.compress(json.dumps(GOOD).encode()) + b"garbage!", "not a valid gzip stream"),
    ],
    ids=["not-gzip", "truncated", "trailing-garbage"],
)
def test_a_corrupt_gzip_stream_is_400_and_stores_nothing(api, path, body, phrase):
    # when
    response = post(api, body, path=path)
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_gzip"
    assert phrase in response.json()["error"]["message"]
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("path", PATHS)
def test_a_wrong_crc_is_400(api, path):
    # given a stream whose CRC-32 trailer does not match its data
    body = bytearray(gzip.compress(json.dumps(GOOD).encode()))
    body[-8] ^= 0xFF
    # when
    response = post(api, bytes(body), path=path)
    # then
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_gzip")
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, br"])
def test_other_encodings_are_415(api, path, encoding):
    # when
    response = post(api, json.dumps(GOOD).encode(), path=path, encoding=encoding)
    # then
    assert response.status_code == 415
    assert response.json()["error"] == {
        "code": "unsupported_encoding",
        "message": f"Content-Encoding '{encoding}' is not supported: send the body uncompressed or with "
        "Content-Encoding: gzip.",
    }
    assert UsageEvent.objects.count() == 0


@pytest.mark.parametrize("path", PATHS)
def test_identity_is_the_body_as_sent(api, path):
    # when
    response = post(api, json.dumps(GOOD).encode(), path=path, encoding="identity")
    # then
    assert (response.status_code, response.json()["accepted"]) == (200, 1)


def test_an_empty_gzip_body_is_the_empty_body_message(api):
    # when
    response = post(api, b"", path="fast")
    # then
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_body")


def test_schema_documents_gzip_and_415(client):
    # when
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    # then
    operation = schema["paths"]["/api/v1/events"]["post"]
    assert {"400", "413", "415"} <= set(operation["responses"])
    assert "Content-Encoding: gzip" in operation["description"]
