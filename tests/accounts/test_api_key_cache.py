"""The in-process API-key cache: revocation through the service takes effect at once, a change made elsewhere
within UPTAKE_API_KEY_CACHE_SECONDS, expiry is exact, and a wrong secret never matches a cached key."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke, workspace_update
from tests.conftest import key_client


def test_a_key_revoked_through_the_service_is_refused_at_once_even_when_cached(workspace):
    # given: the key was used, so it is cached
    api_key, raw = api_key_create(workspace=workspace, scopes=["read"])
    client = key_client(raw)
    assert client.get("/api/v1/workspace").status_code == 200
    # when
    api_key_revoke(workspace=workspace, prefix=api_key.prefix)
    response = client.get("/api/v1/workspace")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key has been revoked."


def test_a_change_made_elsewhere_is_seen_once_the_cache_entry_expires(workspace, settings):
    # given: a cached key, then revoked behind the service's back (as another process would see it)
    api_key, raw = api_key_create(workspace=workspace, scopes=["read"])
    client = key_client(raw)
    assert client.get("/api/v1/workspace").status_code == 200
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    # when: within the TTL the cached row still answers; with the cache off the database does
    within_ttl = client.get("/api/v1/workspace")
    settings.UPTAKE_API_KEY_CACHE_SECONDS = 0
    after_ttl = client.get("/api/v1/workspace")
    # then
    assert within_ttl.status_code == 200
    assert after_ttl.status_code == 401
    assert after_ttl.json()["error"]["message"] == "This API key has been revoked."


def test_a_cached_key_is_refused_the_moment_it_expires(workspace):
    # given: a cached key whose expiry then passes (the cached row carries expires_at)
    api_key, raw = api_key_create(workspace=workspace, scopes=["read"], expires_at=timezone.now() + timedelta(hours=1))
    client = key_client(raw)
    assert client.get("/api/v1/workspace").status_code == 200
    cached = ApiKey.objects.get(pk=api_key.pk)
    # when: the same key object the cache holds reaches its expiry
    from accounts.selectors import _API_KEY_CACHE

    (entry,) = [key for _, key in _API_KEY_CACHE.values() if key.pk == cached.pk]
    entry.expires_at = timezone.now() - timedelta(seconds=1)
    response = client.get("/api/v1/workspace")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key has expired."


def test_a_wrong_secret_with_a_cached_prefix_is_refused(workspace):
    # given
    api_key, raw = api_key_create(workspace=workspace, scopes=["read"])
    assert key_client(raw).get("/api/v1/workspace").status_code == 200
    tampered = raw[:-2] + ("aa" if not raw.endswith("aa") else "bb")
    # when
    response = key_client(tampered).get("/api/v1/workspace")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid API key."


def test_a_workspace_update_is_seen_by_the_next_request_of_a_cached_key(workspace):
    # given
    _, raw = api_key_create(workspace=workspace, scopes=["read"])
    client = key_client(raw)
    assert client.get("/api/v1/workspace").json()["name"] == "Acme Inc."
    # when
    workspace_update(workspace=workspace, name="Acme Renamed")
    response = client.get("/api/v1/workspace")
    # then
    assert response.status_code == 200
    assert response.json()["name"] == "Acme Renamed"


def test_api_requests_pass_the_browser_middleware_by(workspace):
    # given
    _, raw = api_key_create(workspace=workspace, scopes=["read"])
    # when
    response = key_client(raw).get("/api/v1/workspace")
    # then: no session or CSRF cookie is set on API responses
    assert response.status_code == 200
    assert sorted(response.cookies.keys()) == []
