"""When to retry a request and how long to wait: exponential backoff with jitter, or the server's
Retry-After."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime
from typing import Callable, NamedTuple

import httpx


def retryable_status(status_code: int) -> bool:
    """429 and 5xx are worth retrying; every other answer is final."""
    return status_code == 429 or status_code >= 500


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The response's Retry-After in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_seconds(attempt: int, *, base: float, cap: float) -> float:
    """Delay before retry number `attempt` (1, 2, ...): base × 2^(attempt-1), capped, with the upper half
    jittered so that many clients failing together do not retry together."""
    delay = min(cap, base * (2 ** (attempt - 1)))
    return delay / 2 + random.random() * delay / 2


def retry_delay(attempt: int, *, retry_after: float | None, base: float, cap: float) -> float:
    """The server's Retry-After when it gave one (plus up to 10 % jitter, never less), else backoff."""
    if retry_after is not None:
        return retry_after + random.random() * min(1.0, retry_after * 0.1)
    return backoff_seconds(attempt, base=base, cap=cap)


class Attempt(NamedTuple):
    """One request's outcome. `response` is set when the answer is final (2xx, or a status not worth
    retrying); otherwise `problem` says what went wrong, with the status (None: no answer) and the server's
    Retry-After."""

    response: httpx.Response | None
    status: int | None
    problem: str = ""
    retry_after: float | None = None


def send_once(send: Callable[[], httpx.Response]) -> Attempt:
    """Send once and sort the outcome: a final answer, or a connection error, 429 or 5xx to retry."""
    try:
        response = send()
    except httpx.HTTPError as exc:
        return Attempt(None, None, f"{type(exc).__name__}: {exc}")
    status = response.status_code
    if 200 <= status < 300 or not retryable_status(status):
        return Attempt(response, status)
    return Attempt(None, status, f"HTTP {status}", retry_after_seconds(response))
