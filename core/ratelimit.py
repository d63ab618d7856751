"""Per-API-key rate limits: a token bucket per key and bucket — `write` (every POST/PUT/PATCH/DELETE of the API,
ingestion and the pipeline test action included), `read` (GETs) and `check` (the entitlement check, whose budget
must allow a client's hot path) — each of `UPTAKE_RATE_<BUCKET>_BURST` requests refilled at
`UPTAKE_RATE_<BUCKET>_PER_SECOND` (writes: UPTAKE_RATE_BURST / UPTAKE_RATE_PER_SECOND). Over the limit: 429 with
Retry-After. Every DRF API view gets `ApiKeyRateThrottle` (REST_FRAMEWORK's default throttle); the fast paths
of /events and the check take their token through `fast_path_principal` (config/api.py).

With Redis as the cache the bucket lives in Redis and is updated atomically by a Lua script (clock = Redis
TIME, so every web process shares one bucket per key). With the in-process cache (no REDIS_URL) each process
keeps its own buckets. The limiter FAILS OPEN: if Redis is unreachable the request goes through, and the shared
breaker (core/redis_breaker.py) keeps every caller off Redis for a few seconds, so Redis is never on the
request path.
"""

import logging
import math
import threading
import time
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from core.redis_breaker import REDIS_ERRORS, redis_available, redis_failed

logger = logging.getLogger(__name__)

# KEYS[1] = bucket; ARGV = rate per second, burst, tokens wanted. Takes as many of the wanted tokens as the bucket
# holds (at least 1); returns {tokens granted (0 when none), seconds until one is back (string)}.
_TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  allowed = math.min(want, math.floor(tokens))
  tokens = tokens - allowed
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""

# A process takes tokens from Redis in leases of `rate × LEASE_SECONDS` (at least 1) and spends them locally: a
# busy bucket (the check's 2,500/s) costs one Redis call per lease instead of one per request (~0.12 ms of CPU
# each). Every token spent still comes from the shared bucket, so a key never gets more than its budget; a
# lease not spent within LEASE_TTL_SECONDS is dropped.
LEASE_SECONDS = 0.02
LEASE_TTL_SECONDS = 1.0

_state_lock = threading.Lock()
_local_buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, monotonic timestamp)
_leases: dict[str, tuple[int, float]] = {}  # key → (tokens left, monotonic expiry)
_scripts: dict[str, object] = {}


def rate_limit_take(*, key: str, burst: int, rate: float) -> tuple[bool, float]:
    """Take one token from `key`'s bucket; return (allowed, seconds until a token is available)."""
    now = time.monotonic()
    with _state_lock:
        left, expires = _leases.get(key, (0, 0.0))
        if left > 0 and now < expires:
            _leases[key] = (left - 1, expires)
            return True, 0.0
    client = _redis_client()
    if client is None:
        return _local_take(key=key, burst=burst, rate=rate)
    if not redis_available():
        return True, 0.0
    want = max(1, min(burst, int(rate * LEASE_SECONDS)))
    try:
        script = _scripts.get("bucket")
        if script is None:
            script = _scripts["bucket"] = client.register_script(_TOKEN_BUCKET_LUA)
        granted, wait = script(keys=[cache.make_key(f"ratelimit:{key}")], args=[rate, burst, want], client=client)
    except REDIS_ERRORS as exc:  # fail open, never block a request
        redis_failed("rate limiter", exc)
        return True, 0.0
    granted = int(granted)
    if granted < 1:
        return False, float(wait)
    if granted > 1:
        with _state_lock:
            left, _ = _leases.get(key, (0, 0.0))
            _leases[key] = (max(left, 0) + granted - 1, now + LEASE_TTL_SECONDS)
    return True, 0.0


def _redis_client():
    backend = getattr(cache, "_cache", None)
    if backend is None or not hasattr(backend, "get_client"):
        return None
    try:
        return backend.get_client(write=True)
    except Exception:
        return None


def _local_take(*, key: str, burst: int, rate: float) -> tuple[bool, float]:
    now = time.monotonic()
    with _state_lock:
        tokens, ts = _local_buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + max(0.0, now - ts) * rate)
        if tokens >= 1:
            _local_buckets[key] = (tokens - 1, now)
            return True, 0.0
        _local_buckets[key] = (tokens, now)
        return False, (1 - tokens) / rate


# Bucket → the settings of its burst and refill rate.
RATE_BUCKETS = {
    "write": ("UPTAKE_RATE_BURST", "UPTAKE_RATE_PER_SECOND"),
    "read": ("UPTAKE_RATE_READ_BURST", "UPTAKE_RATE_READ_PER_SECOND"),
    "check": ("UPTAKE_RATE_CHECK_BURST", "UPTAKE_RATE_CHECK_PER_SECOND"),
}


class KeyedPrincipal(Protocol):
    """What the limiter needs of an API principal (accounts.authentication.ApiPrincipal): its key's prefix."""

    api_key: Any


def api_key_rate_take(principal: KeyedPrincipal, bucket: str = "write") -> tuple[bool, float]:
    """Take a token from the key's `bucket`: (allowed, seconds to wait when not). Always allowed when rate
    limiting is off."""
    if not settings.UPTAKE_RATE_LIMIT_ENABLED:
        return True, 0.0
    burst_setting, rate_setting = RATE_BUCKETS[bucket]
    return rate_limit_take(
        key=f"{bucket}:{principal.api_key.prefix}",
        burst=getattr(settings, burst_setting),
        rate=getattr(settings, rate_setting),
    )


def rate_bucket_of(request, view) -> str:
    """The view's own bucket (`rate_bucket`, e.g. the check), else `read` for safe methods and `write` for the
    rest."""
    bucket = getattr(view, "rate_bucket", None)
    if bucket:
        return bucket
    return "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"


class ApiKeyRateThrottle(BaseThrottle):
    """DRF throttle: 429 with Retry-After (whole seconds, rounded up) when the key's bucket is empty."""

    def allow_request(self, request, view) -> bool:
        principal = request.user
        if getattr(principal, "api_key", None) is None:  # no API key (e.g. the schema view): nothing to count
            self._wait = 0.0
            return True
        allowed, self._wait = api_key_rate_take(principal, rate_bucket_of(request, view))
        return allowed

    def wait(self) -> float | None:
        return max(1, math.ceil(self._wait)) if self._wait else None
