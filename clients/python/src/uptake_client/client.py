"""The Uptake client: `track` (queued, batched, retried, delivered once), `check` (cached), `record`,
`identify_account` / `identify_user`.

Events: `track()` serialises the event in the caller's thread and appends it to a bounded queue; sender
threads (started on first use, again in a forked child) take batches of at most `batch_size` events and
`max_batch_bytes` bytes when a batch is full, when `flush_interval` has passed, on `flush()` or at exit, and
POST them gzip-compressed to /api/v1/events. Every event carries an `event_id` (a UUID unless the caller gave
one), so a batch sent again after a timeout or a lost answer is stored once. Connection errors, 429 and 5xx
are retried with exponential backoff and jitter, or after the server's Retry-After, for up to
`max_retry_seconds`; other 4xx answers are final and go to `on_error` with one Rejection per event.

Checks: answers are cached per (account, feature) for `cache_ttl` seconds and refreshed in the background
when a check finds an entry in the last `refresh_ahead` fraction of its life; when Uptake cannot answer, the
last known value is answered (marked stale) or, with nothing cached, the configured default.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
import uuid
import weakref
import zlib
from collections import deque
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import quote

import httpx

from . import models
from ._retry import Attempt, retry_delay, send_once
from .errors import APIError, ConnectionFailed, EventsDropped, EventsRejected, UptakeError
from .models import Entitlement, RecordResult, Rejection, Stats

__version__ = "1.0.0"

logger = logging.getLogger("uptake_client")

MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1024 * 1024  # the server's limit, on the decompressed body
_BATCH_OVERHEAD = len('{"events":[]}')
_encode = json.JSONEncoder(separators=(",", ":")).encode  # ASCII output: len(str) == len(bytes)
_UNSET: Any = object()
_utc = timezone.utc
_now = datetime.now


def _timestamp(value: datetime | None) -> str:
    if value is None:
        return _now(_utc).isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=_utc)
    return value.isoformat()


def _event(
    account_id: str,
    feature_id: str,
    quantity: int,
    event_id: str | None,
    timestamp: datetime | None,
    user_id: str | None,
    properties: dict[str, Any] | None,
    product_id: str | None = None,
    module_id: str | None = None,
) -> dict[str, Any]:
    """One usage event as /api/v1/events and /api/v1/usage/record take it: an event_id (a new UUID unless
    given) and a timestamp (now unless given) always, the optional fields only when given."""
    event: dict[str, Any] = {
        "account_id": account_id,
        "feature_id": feature_id,
        "quantity": quantity,
        "event_id": str(uuid.uuid4()) if event_id is None else event_id,
        "timestamp": _timestamp(timestamp),
    }
    if user_id is not None:
        event["user_id"] = user_id
    if product_id is not None:
        event["product_id"] = product_id
    if module_id is not None:
        event["module_id"] = module_id
    if properties is not None:
        event["properties"] = properties
    return event


def _segment(value: str) -> str:
    """One URL path segment: every reserved character percent-encoded, `/` included."""
    return quote(str(value), safe="")


def _for_quantity(answer: Entitlement, quantity: int) -> Entitlement:
    """The check API's answer for `quantity` more, from its answer for 0 (the rule of the server's check)."""
    if quantity <= 0 or not answer.entitled:
        return answer
    if answer.limit is not None:
        allowed = (answer.used or 0) + quantity <= answer.limit
    elif answer.type in ("quantity", "range") and not answer.unlimited and answer.value is not None:
        try:
            allowed = quantity <= int(answer.value)
        except ValueError:
            allowed = True
    else:
        allowed = True
    return answer if allowed else replace(answer, entitled=False, reason="limit_exceeded")


class _Entry:
    """A cached check answer: served until `fresh_until`, refreshed in the background from `refresh_at`."""

    __slots__ = ("answer", "fresh_until", "refresh_at", "refreshing")

    def __init__(self, answer: Entitlement, fresh_until: float, refresh_at: float) -> None:
        self.answer = answer
        self.fresh_until = fresh_until
        self.refresh_at = refresh_at
        self.refreshing = False


class Uptake:
    """A client of one Uptake workspace (the API key's). Thread-safe; one per process is enough.

    `api_key` needs the `ingest` scope for track/record/identify and `read` for check/entitlements.
    """

    def __init__(
        self,
        api_key: str,
        host: str = "http://127.0.0.1:8000",
        *,
        on_error: Callable[[UptakeError], None] | None = None,
        sync_mode: bool = False,
        batch_size: int = MAX_BATCH_EVENTS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        flush_interval: float = 0.5,
        max_queue_size: int = 10_000,
        senders: int = 4,
        gzip_level: int = 6,
        timeout: float = 10.0,
        max_retry_seconds: float = 600.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        shutdown_timeout: float = 10.0,
        cache_ttl: float = 30.0,
        refresh_ahead: float = 0.2,
        check_timeout: float = 2.0,
        default_entitled: bool = False,
        raise_errors: bool = False,
        request_retries: int = 3,
        max_cache_entries: int = 100_000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000 (the server's limit per request)")
        if not 1024 <= max_batch_bytes <= MAX_BATCH_BYTES:
            raise ValueError(f"max_batch_bytes must be between 1024 and {MAX_BATCH_BYTES}")
        self._api_key = api_key
        self._host = host.rstrip("/")
        self.on_error = on_error
        self.sync_mode = sync_mode
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._flush_interval = flush_interval
        self._max_queue = max_queue_size
        self._senders = max(1, senders)
        self._gzip_level = gzip_level
        self._timeout = timeout
        self._max_retry_seconds = max_retry_seconds
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._shutdown_timeout = shutdown_timeout
        self._ttl = cache_ttl
        self._refresh_ahead = min(max(refresh_ahead, 0.0), 1.0)
        self._check_timeout = check_timeout
        self._default_entitled = default_entitled
        self._raise_errors = raise_errors
        self._request_retries = request_retries
        self._max_cache_entries = max_cache_entries
        self._transport = transport
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._shut = False
        self._init_process_state()
        _clients.add(self)

    # ------------------------------------------------------------------
    # Process-local state: everything a forked child must not share with its parent.
    # ------------------------------------------------------------------

    def _init_process_state(self) -> None:
        self._lock = threading.Lock()
        self._done_cond = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._http_lock = threading.Lock()
        self._http_client: httpx.Client | None = None
        self._queue: deque[str] = deque()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._closing = False
        self._deadline: float | None = None
        self._taken = 0  # events taken from the queue
        self._done = 0  # events taken and finished with (delivered, rejected or dropped)
        self._flush_until = 0  # senders send without waiting until _taken reaches this
        self._in_flight = 0
        self._full_drops = 0  # queue-full drops not yet reported to on_error
        self._counts = dict.fromkeys(
            ("accepted", "duplicates", "ignored", "rejected", "dropped", "batches", "retries"), 0
        )
        self._cache_lock = threading.Lock()
        self._refresh_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._refresher: threading.Thread | None = None
        for entry in list(self._cache.values()):
            entry.refreshing = False  # the parent's refresher does not refresh the child's cache

    def _after_fork_in_child(self) -> None:
        # The parent keeps (and sends) the events it had queued; the child starts empty, with its own locks,
        # threads and connections. The cache's answers stay valid.
        self._init_process_state()

    # ------------------------------------------------------------------
    # HTTP
    # ------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        client = self._http_client
        if client is None:
            with self._http_lock:
                if self._http_client is None:
                    self._http_client = httpx.Client(
                        base_url=self._host,
                        headers={
                            "Authorization": f"Bearer {self._api_key}",
                            "User-Agent": f"uptake-client-python/{__version__}",
                        },
                        timeout=self._timeout,
                        limits=httpx.Limits(
                            max_connections=self._senders + 8, max_keepalive_connections=self._senders + 8
                        ),
                        transport=self._transport,
                    )
                client = self._http_client
        return client

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> Any:
        """One API call, retried on connection errors, 429 and 5xx: the decoded JSON answer, or
        ConnectionFailed / APIError."""
        retries = self._request_retries if retries is None else retries

        def send() -> httpx.Response:
            return self._http().request(method, path, json=json_body, params=params, timeout=timeout or self._timeout)

        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            outcome = send_once(send)
            response = outcome.response
            if response is not None:
                if 200 <= response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError:
                        raise ConnectionFailed(
                            f"{method} {path}: the answer is not JSON", status_code=response.status_code
                        ) from None
                raise _api_error(response)
            delay = self._retry_delay(attempt, outcome)
            if attempt > retries or time.monotonic() - started + delay > self._max_retry_seconds:
                raise ConnectionFailed(
                    f"{method} {path} failed after {attempt} attempt(s): {outcome.problem}", status_code=outcome.status
                )
            logger.warning("uptake: %s %s failed (%s); retrying in %.2f s", method, path, outcome.problem, delay)
            time.sleep(delay)

    def _retry_delay(self, attempt: int, outcome: Attempt) -> float:
        return retry_delay(attempt, retry_after=outcome.retry_after, base=self._backoff_base, cap=self._backoff_cap)

    # ------------------------------------------------------------------
    # Events
    # ------------------------------------------------------------------

    def track(
        self,
        account_id: str,
        feature_id: str,
        *,
        user_id: str | None = None,
        quantity: int = 1,
        properties: dict[str, Any] | None = None,
        timestamp: datetime | None = None,
        event_id: str | None = None,
        product_id: str | None = None,
        module_id: str | None = None,
    ) -> str:
        """Queue one usage event and return its event_id at once (never blocks on the network; in sync_mode
        it is sent before returning). Raises TypeError when `properties` is not JSON-serialisable."""
        event = _event(
            account_id, feature_id, quantity, event_id, timestamp, user_id, properties, product_id, module_id
        )
        event_id = event["event_id"]
        encoded = _encode(event)
        if self.sync_mode:
            with self._lock:
                self._taken += 1
            try:
                self._deliver([encoded])
            finally:
                self._finished(1)
            return event_id
        events = self._queue
        if len(events) >= self._max_queue:
            with self._lock:
                self._full_drops += 1
            self._wake.set()
            return event_id
        events.append(encoded)
        if not self._started:
            self._start()
        if len(events) >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        return event_id

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far and wait until each event is dealt with: stored, or refused or dropped
        (both reported to on_error). True when that happened within `timeout` seconds (None: no limit)."""
        with self._lock:
            target = self._taken + len(self._queue)
            self._flush_until = max(self._flush_until, target)
        self._wake.set()
        if not any(thread.is_alive() for thread in self._threads):
            # No sender thread (never started, or interpreter exit, where new threads cannot start): send here.
            self._drain_inline()
        with self._done_cond:
            done = self._done_cond.wait_for(lambda: self._done >= target, timeout=timeout)
        self._report_full_drops()
        return done

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (up to `timeout`, default shutdown_timeout), stop the threads and close the connections.
        Events still undelivered after the timeout are dropped and reported to on_error. True when none were."""
        if self._shut:
            return True
        timeout = self._shutdown_timeout if timeout is None else timeout
        with self._lock:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            dropped_before = self._counts["dropped"] + self._full_drops
        delivered = self.flush(timeout)
        self._stop.set()  # senders in a backoff wait give up now
        self._wake.set()
        for thread in self._threads:
            thread.join(1.0)
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
        if left:
            self._drop(left, reason="shutdown", detail="still queued when shutdown's timeout passed")
        self._report_full_drops()
        self._refresh_queue.put(None)
        self._shut = True
        client, self._http_client = self._http_client, None
        if client is not None:
            client.close()
        return delivered and not left and self._counts["dropped"] == dropped_before

    def stats(self) -> Stats:
        """A snapshot of the event pipeline's counters."""
        with self._lock:
            return Stats(
                tracked=self._taken + len(self._queue),
                queued=len(self._queue),
                in_flight=self._in_flight,
                dropped=self._counts["dropped"] + self._full_drops,
                **{k: v for k, v in self._counts.items() if k != "dropped"},
            )

    def _start(self) -> None:
        with self._lock:
            if self._started or self._closing:
                return
            self._started = True
            for number in range(self._senders):
                thread = threading.Thread(target=self._sender, name=f"uptake-sender-{number}", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # interpreter shutdown: flush() at exit sends inline
                    break
                self._threads.append(thread)

    def _sender(self) -> None:
        while True:
            batch = self._take(wait=True)
            if batch is None:
                return
            try:
                self._deliver(batch)
            except Exception:  # never let the thread die: the events are counted as dropped
                logger.exception("uptake: unexpected error while sending %d events", len(batch))
                self._drop(batch, reason="retries_exhausted", detail="unexpected client error")
            finally:
                self._finished(len(batch))

    def _drain_inline(self) -> None:
        while True:
            batch = self._take(wait=False)
            if batch is None:
                return
            try:
                self._deliver(batch)
            finally:
                self._finished(len(batch))

    def _due(self) -> bool:
        return len(self._queue) >= self._batch_size or self._closing or self._taken < self._flush_until

    def _take(self, *, wait: bool) -> list[str] | None:
        """The next batch; with `wait`, once one is due (full, flush_interval passed, flush, shutdown). None when
        there is nothing to send (and, with `wait`, the client is closing)."""
        while True:
            self._report_full_drops()
            if wait and not self._due():
                self._wake.wait(self._flush_interval)
            with self._lock:
                # Clear first, then look: a track() that fills a batch after this sets the event again.
                self._wake.clear()
                batch, too_large = self._pop_batch()
                if self._due() and (self._queue or self._closing):
                    self._wake.set()
                self._taken += len(batch)
                self._in_flight += len(batch)
                finished = not batch and (not wait or self._closing or self._stop.is_set())
            if too_large:
                self._report(EventsDropped(too_large, reason="too_large", detail=f"over {self._max_batch_bytes} bytes"))
            if batch:
                return batch
            if finished:
                return None

    def _pop_batch(self) -> tuple[list[str], int]:
        """Up to batch_size events within max_batch_bytes, and how many events too large to send on their own
        were taken and dropped (called with the lock held)."""
        events = self._queue
        batch: list[str] = []
        too_large = 0
        size = _BATCH_OVERHEAD
        while events and len(batch) < self._batch_size:
            length = len(events[0]) + (1 if batch else 0)
            if size + length > self._max_batch_bytes:
                if batch:
                    break
                events.popleft()  # one event over the limit on its own: it can never be sent
                too_large += 1
                continue
            batch.append(events.popleft())
            size += length
        if too_large:
            self._taken += too_large
            self._done += too_large
            self._counts["dropped"] += too_large
            self._done_cond.notify_all()
        return batch, too_large

    def _finished(self, count: int) -> None:
        with self._done_cond:
            self._done += count
            self._in_flight = max(0, self._in_flight - count)
            self._done_cond.notify_all()

    def _deliver(self, batch: list[str]) -> None:
        """Send one batch until it is answered for good (stored, refused) or given up (dropped)."""
        body = ('{"events":[' + ",".join(batch) + "]}").encode()
        compressor = zlib.compressobj(self._gzip_level, zlib.DEFLATED, 31)
        payload = compressor.compress(body) + compressor.flush()
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

        def send() -> httpx.Response:
            return self._http().post("/api/v1/events", content=payload, headers=headers)

        started = time.monotonic()
        attempt = 0
        while True:
            outcome = send_once(send)
            response = outcome.response
            if response is not None:
                if 200 <= response.status_code < 300:
                    self._ingested(batch, response)
                elif response.status_code == 413 and len(batch) > 1:  # a server configured below our batch limits
                    half = len(batch) // 2
                    self._deliver(batch[:half])
                    self._deliver(batch[half:])
                else:
                    self._refused(batch, response)
                return
            attempt += 1
            delay = self._retry_delay(attempt, outcome)
            problem = outcome.problem
            give_up_at = started + self._max_retry_seconds
            deadline = self._deadline
            if deadline is not None and deadline < give_up_at:
                give_up_at, reason = deadline, "shutdown"
            else:
                reason = "retries_exhausted"
            if time.monotonic() + delay > give_up_at or self._stop.is_set():
                self._drop(batch, reason=reason, detail=f"{attempt} attempt(s), last: {problem}")
                return
            with self._lock:
                self._counts["retries"] += 1
            logger.warning(
                "uptake: %d events not delivered (%s); retrying in %.2f s",
                len(batch),
                problem,
                delay,
                extra={
                    "uptake_status": outcome.status,
                    "uptake_retry_after": outcome.retry_after,
                    "uptake_delay": delay,
                },
            )
            if self._stop.wait(delay):
                self._drop(batch, reason="shutdown", detail=f"{attempt} attempt(s), last: {problem}")
                return

    def _ingested(self, batch: list[str], response: httpx.Response) -> None:
        try:
            result = response.json()
            accepted, duplicates = int(result["accepted"]), int(result["duplicates"])
            ignored, rejected = int(result.get("ignored", 0)), list(result.get("rejected") or [])
            warnings = list(result.get("warnings") or [])
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("uptake: a 2xx answer to /api/v1/events was not the ingestion result; counted as stored")
            accepted, duplicates, ignored, rejected, warnings = len(batch), 0, 0, [], []
        with self._lock:
            self._counts["batches"] += 1
            self._counts["accepted"] += accepted
            self._counts["duplicates"] += duplicates
            self._counts["ignored"] += ignored
            self._counts["rejected"] += len(rejected)
        for warning in warnings:
            logger.info("uptake: event warning: %s", warning)
        if rejected:
            rejections = [
                Rejection(
                    index=int(item.get("index", -1)),
                    code=str(item.get("code", "")),
                    message=str(item.get("message", "")),
                    field=item.get("field"),
                    event=json.loads(batch[item["index"]]) if 0 <= item.get("index", -1) < len(batch) else {},
                )
                for item in rejected
            ]
            self._report(EventsRejected(rejections, status_code=response.status_code))

    def _refused(self, batch: list[str], response: httpx.Response) -> None:
        error = _api_error(response)
        with self._lock:
            self._counts["rejected"] += len(batch)
        rejections = [
            Rejection(index=index, code=error.code, message=error.message, event=json.loads(event))
            for index, event in enumerate(batch)
        ]
        self._report(EventsRejected(rejections, status_code=response.status_code))

    def _drop(self, batch: list[str], *, reason: str, detail: str) -> None:
        with self._lock:
            self._counts["dropped"] += len(batch)
        self._report(EventsDropped(len(batch), reason=reason, detail=detail))

    def _report_full_drops(self) -> None:
        if not self._full_drops:
            return
        with self._lock:
            count, self._full_drops = self._full_drops, 0
            self._counts["dropped"] += count
        if count:
            self._report(EventsDropped(count, reason="queue_full", detail=f"the queue held {self._max_queue} events"))

    def _report(self, error: UptakeError) -> None:
        logger.warning("uptake: %s", error)
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:
                logger.exception("uptake: on_error raised")

    # ------------------------------------------------------------------
    # Entitlements
    # ------------------------------------------------------------------

    def check(
        self,
        account_id: str,
        feature_id: str,
        quantity: int = 0,
        *,
        default: bool | None = None,
        raise_errors: bool | None = None,
    ) -> Entitlement:
        """May `account_id` use `feature_id` (`quantity` more of it)? Answered from the cache within its TTL;
        otherwise asked of Uptake. When Uptake cannot answer: the last known value (source `stale`) or the
        default (`default`, else the client's default_entitled; source `default`), unless raise_errors."""
        entry = self._cache.get((account_id, feature_id))
        if entry is not None:
            now = time.monotonic()
            if now < entry.fresh_until:
                if now >= entry.refresh_at and not entry.refreshing:
                    self._refresh_later((account_id, feature_id), entry)
                answer = entry.answer
                return answer if not quantity else _for_quantity(answer, quantity)
        return _for_quantity(self._check_remote(account_id, feature_id, entry, default, raise_errors), quantity)

    def _fetch_check(self, account_id: str, feature_id: str) -> Entitlement:
        data = self._request(
            "GET",
            "/api/v1/entitlements/check",
            params={"account_id": account_id, "feature_id": feature_id},
            timeout=self._check_timeout,
            retries=0,
        )
        return _entitlement(account_id, data)

    def _check_remote(
        self,
        account_id: str,
        feature_id: str,
        entry: _Entry | None,
        default: bool | None,
        raise_errors: bool | None,
    ) -> Entitlement:
        try:
            answer = self._fetch_check(account_id, feature_id)
        except UptakeError as exc:
            if self._raise_errors if raise_errors is None else raise_errors:
                raise
            logger.warning("uptake: check %s/%s failed: %s", account_id, feature_id, exc)
            if entry is not None:
                stale = replace(entry.answer, source=models.STALE, error=str(exc))
                # Answer the stale value from the cache for a while; checks keep asking in the background.
                now = time.monotonic()
                self._store((account_id, feature_id), stale, fresh_until=now + min(self._ttl, 5.0), refresh_at=now)
                return stale
            entitled = self._default_entitled if default is None else default
            return Entitlement(account_id, feature_id, entitled=entitled, source=models.DEFAULT, error=str(exc))
        self._cache_answer(answer)
        return answer

    def _cache_answer(self, answer: Entitlement) -> None:
        now = time.monotonic()
        self._store(
            (answer.account_id, answer.feature_id),
            replace(answer, source=models.CACHE),
            fresh_until=now + self._ttl,
            refresh_at=now + self._ttl * (1.0 - self._refresh_ahead),
        )

    def _store(self, key: tuple[str, str], answer: Entitlement, *, fresh_until: float, refresh_at: float) -> None:
        with self._cache_lock:
            if key not in self._cache and len(self._cache) >= self._max_cache_entries:
                self._cache.pop(next(iter(self._cache)))  # the oldest entry
            self._cache[key] = _Entry(answer, fresh_until, refresh_at)

    def _refresh_later(self, key: tuple[str, str], entry: _Entry) -> None:
        entry.refreshing = True
        if self._refresher is None:
            with self._cache_lock:
                if self._refresher is None:
                    thread = threading.Thread(target=self._refresh_loop, name="uptake-refresher", daemon=True)
                    try:
                        thread.start()
                    except RuntimeError:
                        entry.refreshing = False
                        return
                    self._refresher = thread
        self._refresh_queue.put(key)

    def _refresh_loop(self) -> None:
        refresh_queue = self._refresh_queue
        while True:
            key = refresh_queue.get()
            if key is None:
                return
            try:
                self._cache_answer(self._fetch_check(*key))
            except Exception as exc:  # keep serving what is cached; try again in a second
                logger.info("uptake: background refresh of %s/%s failed: %s", key[0], key[1], exc)
                entry = self._cache.get(key)
                if entry is not None:
                    entry.refresh_at = time.monotonic() + 1.0
                    entry.refreshing = False

    def entitlements(self, account_id: str, *, raise_errors: bool | None = None) -> dict[str, Entitlement]:
        """Every entitlement of the account (the features its subscriptions mention), by feature id, in one
        request; fills the check cache. On failure: the account's cached answers marked stale (or raises)."""
        try:
            data = self._request(
                "GET", f"/api/v1/accounts/{_segment(account_id)}/entitlements", timeout=self._check_timeout, retries=0
            )
        except UptakeError as exc:
            if self._raise_errors if raise_errors is None else raise_errors:
                raise
            logger.warning("uptake: entitlements of %s failed: %s", account_id, exc)
            return {
                feature: replace(entry.answer, source=models.STALE, error=str(exc))
                for (account, feature), entry in list(self._cache.items())
                if account == account_id
            }
        answers = {}
        for item in data.get("entitlements", []) if isinstance(data, dict) else []:
            answer = _entitlement(account_id, item)
            self._cache_answer(answer)
            answers[answer.feature_id] = answer
        return answers

    def record(
        self,
        account_id: str,
        feature_id: str,
        quantity: int = 1,
        *,
        user_id: str | None = None,
        event_id: str | None = None,
        timestamp: datetime | None = None,
        properties: dict[str, Any] | None = None,
    ) -> RecordResult:
        """Record usage with enforcement, synchronously: `recorded` is False (with a reason) when the account
        may not use that much. Retried with the same event_id, so a retry after a timeout returns the first
        outcome instead of recording twice. Raises ConnectionFailed or APIError when there is no answer."""
        body = _event(account_id, feature_id, quantity, event_id, timestamp, user_id, properties)
        event_id = body["event_id"]
        data = self._request("POST", "/api/v1/usage/record", json_body=body)
        if not isinstance(data, dict) or "recorded" not in data:
            raise UptakeError(f"/api/v1/usage/record answered something else than a record result: {data!r:.200}")
        entitlement = _entitlement(account_id, data.get("entitlement"))
        self._cache_answer(entitlement)
        return RecordResult(
            recorded=bool(data["recorded"]), reason=data.get("reason"), entitlement=entitlement, event_id=event_id
        )

    # ------------------------------------------------------------------
    # Accounts and users
    # ------------------------------------------------------------------

    def identify_account(
        self,
        account_id: str,
        *,
        name: str | None = _UNSET,
        domain: str | None = _UNSET,
        plan: str | None = _UNSET,
        owner_email: str | None = _UNSET,
        status: str | None = _UNSET,
        attributes: dict[str, Any] | None = _UNSET,
    ) -> dict[str, Any]:
        """Create or update an account (PUT /api/v1/accounts/{id}); fields left out stay as they are, None
        clears one. Returns the stored account. Raises APIError / ConnectionFailed."""
        fields = {
            "name": name,
            "domain": domain,
            "plan": plan,
            "owner_email": owner_email,
            "status": status,
            "attributes": attributes,
        }
        body = {key: value for key, value in fields.items() if value is not _UNSET}
        return self._request("PUT", f"/api/v1/accounts/{_segment(account_id)}", json_body=body)

    def identify_user(
        self,
        account_id: str,
        user_id: str,
        *,
        email: str | None = _UNSET,
        attributes: dict[str, Any] | None = _UNSET,
    ) -> dict[str, Any]:
        """Create or update an end user of an account (PUT /api/v1/accounts/{id}/users/{user_id})."""
        body = {key: value for key, value in {"email": email, "attributes": attributes}.items() if value is not _UNSET}
        return self._request(
            "PUT", f"/api/v1/accounts/{_segment(account_id)}/users/{_segment(user_id)}", json_body=body
        )

    def __enter__(self) -> Uptake:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()


def _entitlement(account_id: str, data: Any) -> Entitlement:
    """An Entitlement from the check API's answer; UptakeError when it is not one (a proxy's page, say)."""
    try:
        return Entitlement.from_api(account_id, data)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UptakeError(f"Uptake answered something else than an entitlement: {data!r:.200}") from None


def _api_error(response: httpx.Response) -> APIError:
    try:
        error = response.json()["error"]
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message = "", response.text[:200]
    return APIError(message, status_code=response.status_code, code=code)


# Every live client: flushed at interpreter exit, reset in a forked child.
_clients: weakref.WeakSet[Uptake] = weakref.WeakSet()


def _flush_at_exit() -> None:
    for client in list(_clients):
        try:
            client.shutdown()
        except Exception:
            logger.exception("uptake: flush at exit failed")


def _reset_in_child() -> None:
    for client in list(_clients):
        client._after_fork_in_child()


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
