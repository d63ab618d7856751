"""uptake_client._retry: Retry-After in both of its forms, and backoff bounds (pure functions)."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from uptake_client._retry import backoff_seconds, retry_after_seconds, retry_delay, retryable_status


@pytest.mark.parametrize(
    ("status", "retry"), [(200, False), (400, False), (404, False), (429, True), (500, True), (503, True)]
)
def test_429_and_5xx_are_retried(status, retry):
    assert retryable_status(status) is retry


def test_retry_after_in_seconds_and_as_an_http_date():
    # given
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    # then
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "5"})) == 5.0
    assert 8.0 <= retry_after_seconds(httpx.Response(503, headers={"Retry-After": in_ten})) <= 10.0
    assert retry_after_seconds(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(503)) is None


def test_retry_after_is_waited_at_least_and_at_most_ten_percent_more():
    delays = [retry_delay(1, retry_after=2.0, base=0.5, cap=30) for _ in range(200)]
    assert 2.0 <= min(delays) and max(delays) <= 2.2


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half():
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)]:
        delays = [backoff_seconds(attempt, base=0.5, cap=30) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
