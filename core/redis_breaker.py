"""Redis is never on the critical path: one circuit breaker shared by the cache, the API rate limiter and Celery
task publishing.

Every Redis call has short timeouts (`UPTAKE_REDIS_TIMEOUT_SECONDS`, settings). When one fails, the breaker
opens for `UPTAKE_REDIS_BREAKER_SECONDS`: meanwhile no caller touches Redis at all — the cache answers misses
and stores nothing (`FailOpenRedisCache`), the rate limiter lets requests through, and tasks are not published
(`task_publish` returns False; the outbox and delivery sweeps of beat catch up). The first call after the pause
tries Redis again. State is per process (a monotonic deadline), so a worker process pays at most one timeout
per pause.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a Redis outage raises: redis-py's errors, socket errors, and kombu's wrapping of them when publishing.
try:
    from kombu.exceptions import OperationalError as _KombuOperationalError
except ImportError:  # pragma: no cover - kombu comes with celery
    _KombuOperationalError = RedisError
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, _KombuOperationalError)

_lock = threading.Lock()
_open_until = 0.0
trips = 0  # how many times the breaker opened in this process (tests and logs read it)


def redis_available() -> bool:
    """False while the breaker is open: callers skip Redis and take their fail-open path."""
    return time.monotonic() >= _open_until


def redis_failed(what: str, exc: BaseException) -> None:
    """Record a failed Redis call: open the breaker (logged once per opening)."""
    global _open_until, trips
    with _lock:
        was_open = time.monotonic() < _open_until
        _open_until = time.monotonic() + settings.UPTAKE_REDIS_BREAKER_SECONDS
        if not was_open:
            trips += 1
    if not was_open:
        logger.warning(
            "Redis unreachable (%s: %s: %s); skipping it for %ss",
            what,
            exc.__class__.__name__,
            exc,
            settings.UPTAKE_REDIS_BREAKER_SECONDS,
        )


def redis_breaker_reset() -> None:
    """Close the breaker (tests; an operator's shell after Redis is back needs nothing: it closes by itself)."""
    global _open_until
    with _lock:
        _open_until = 0.0


def task_publish(task: Any, *, args: list, countdown: float | None = None) -> bool:
    """Publish a Celery task (a task object, or a task name sent through the current app) unless Redis, the
    broker, is known to be down; never raises, never retries. Returns whether it was queued; callers rely on a
    sweep for what was not."""
    from celery import current_app

    name = task if isinstance(task, str) else task.name
    uses_redis = bool(settings.REDIS_URL)
    if uses_redis and not redis_available():
        return False
    options: dict[str, Any] = {"retry": False}
    if countdown is not None:
        options["countdown"] = max(countdown, 0.0)
    try:
        if isinstance(task, str):
            current_app.send_task(task, args=args, **options)
        else:
            task.apply_async(args=args, **options)
    except REDIS_ERRORS as exc:
        if uses_redis:
            redis_failed(f"publishing {name}", exc)
        else:
            logger.warning("could not queue %s: %s", name, exc)
        return False
    except Exception:  # noqa: BLE001 - publishing must never fail the caller; the sweeps catch up
        logger.exception("could not queue %s", name)
        return False
    return True


def _fail_open(name: str, fallback):
    parent = getattr(RedisCache, name)

    def method(self, *args, **kwargs):
        if not redis_available():
            return fallback(*args, **kwargs)
        try:
            return parent(self, *args, **kwargs)
        except REDIS_ERRORS as exc:
            redis_failed(f"cache {name}", exc)
            return fallback(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"RedisCache.{name}, or the answer of an empty cache while Redis is unreachable."
    return method


def _get_default(key, default=None, version=None):
    return default


class FailOpenRedisCache(RedisCache):
    """Django's Redis cache that behaves as an empty cache that stores nothing while Redis is unreachable."""

    get = _fail_open("get", _get_default)
    set = _fail_open("set", lambda *a, **k: None)
    add = _fail_open("add", lambda *a, **k: False)
    touch = _fail_open("touch", lambda *a, **k: False)
    delete = _fail_open("delete", lambda *a, **k: False)
    get_many = _fail_open("get_many", lambda *a, **k: {})
    has_key = _fail_open("has_key", lambda *a, **k: False)
    set_many = _fail_open("set_many", lambda data, *a, **k: list(data))
    delete_many = _fail_open("delete_many", lambda *a, **k: None)
    clear = _fail_open("clear", lambda *a, **k: False)
