"""API keys: only prefix and SHA-256 hash stored, scopes, revoked and expired keys refused (through a real endpoint)."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from core.errors import DomainError
from tests.conftest import key_client


def test_the_plaintext_key_is_stored_nowhere_only_its_sha256(workspace):
    # when
    api_key, raw = api_key_create(workspace=workspace, scopes=["read"])
    # then: no text column of the row contains the key or its secret part
    secret = raw.split("_", 2)[2]
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM accounts_apikey k WHERE id = %s", [api_key.pk])
        (row,) = cursor.fetchone()
    assert raw not in row and secret not in row
    assert api_key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(f"upt_{api_key.prefix}_")
    assert ApiKey.objects.get().scopes == ["read"]


def test_a_valid_read_key_answers_with_its_workspace(workspace):
    # given
    _, raw = api_key_create(workspace=workspace, scopes=["read", "ingest"])
    # when
    response = key_client(raw).get("/api/v1/workspace")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "slug": "acme",
        "name": "Acme Inc.",
        "tier": "paid",
        "timezone": "UTC",
        "scopes": ["ingest", "read"],
    }
    assert ApiKey.objects.get().last_used_at is not None


def test_a_key_without_the_read_scope_gets_403(workspace):
    # given
    _, raw = api_key_create(workspace=workspace, scopes=["ingest"])
    # when
    response = key_client(raw).get("/api/v1/workspace")
    # then
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "permission_denied",
        "message": "This API key lacks the 'read' scope.",
    }


def test_a_revoked_key_gets_401(workspace):
    # given
    api_key, raw = api_key_create(workspace=workspace, scopes=["read"])
    api_key_revoke(workspace=workspace, prefix=api_key.prefix)
    # when
    response = key_client(raw).get("/api/v1/workspace")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key has been revoked."


def test_an_expired_key_gets_401(workspace):
    # given
    api_key, raw = api_key_create(
        workspace=workspace, scopes=["read"], expires_at=timezone.now() + timedelta(seconds=30)
    )
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # when
    response = key_client(raw).get("/api/v1/workspace")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key has expired."


@pytest.mark.parametrize(
    "header",
    ["Bearer upt_000000000000_nope", "Bearer not-a-key", "Token abc", "Bearer"],
)
def test_unknown_or_malformed_keys_get_401(workspace, header):
    # given
    api_key_create(workspace=workspace, scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    # when
    response = client.get("/api/v1/workspace")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_no_key_at_all_gets_401(workspace):
    # when
    response = APIClient().get("/api/v1/workspace")
    # then
    assert response.status_code == 401


def test_a_tampered_secret_with_a_real_prefix_gets_401(workspace):
    # given
    api_key, raw = api_key_create(workspace=workspace, scopes=["read"])
    # when
    response = key_client(raw[:-2] + ("aa" if not raw.endswith("aa") else "bb")).get("/api/v1/workspace")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid API key."


@pytest.mark.parametrize("scopes", [["write"], [], ["read", "root"]])
def test_unknown_scopes_are_refused_and_no_key_is_stored(workspace, scopes):
    # when
    with pytest.raises(DomainError) as err:
        api_key_create(workspace=workspace, scopes=scopes)
    # then
    assert err.value.field == "scopes"
    assert ApiKey.objects.count() == 0


def test_a_key_of_one_workspace_sees_only_that_workspace(workspace, other_workspace):
    # given
    _, raw = api_key_create(workspace=other_workspace, scopes=["read"])
    # when
    response = key_client(raw).get("/api/v1/workspace")
    # then
    assert response.json()["slug"] == "globex"
