from datetime import UTC, datetime

import pytest
import time_machine

from entitlements.periods import Period, period_containing
from entitlements.selectors import entitlement_check
from entitlements.services import UsageRow, allowance_usage_apply
from tests.conftest import FROZEN_NOW

from .factories import account, metered, plan, subscribe


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "anchor", "term_start", "at", "expected"),
    [
        ("none", "calendar", None, utc(2026, 11, 18), Period(None, None)),
        (
            "day",
            "calendar",
            None,
            utc(2026, 11, 18, 23, 59, 59),
            Period(utc(2026, 11, 18), utc(2026, 11, 19)),
        ),
        ("day", "calendar", None, utc(2026, 11, 19), Period(utc(2026, 11, 19), utc(2026, 11, 20))),
        # ISO week: 2026-11-16 is a Monday
        ("week", "calendar", None, utc(2026, 11, 22, 23, 59), Period(utc(2026, 11, 16), utc(2026, 11, 23))),
        ("week", "calendar", None, utc(2026, 11, 23), Period(utc(2026, 11, 23), utc(2026, 11, 30))),
        ("month", "calendar", None, utc(2026, 11, 30, 23, 59), Period(utc(2026, 11, 1), utc(2026, 12, 1))),
        ("month", "calendar", None, utc(2026, 12, 1), Period(utc(2026, 12, 1), utc(2027, 1, 1))),
        ("year", "calendar", None, utc(2026, 12, 31, 23), Period(utc(2026, 1, 1), utc(2027, 1, 1))),
        ("year", "calendar", None, utc(2027, 1, 1), Period(utc(2027, 1, 1), utc(2028, 1, 1))),
        # term anchors keep the term start's time of day
        (
            "day",
            "term",
            utc(2026, 11, 1, 14, 30),
            utc(2026, 11, 18, 14, 29),
            Period(utc(2026, 11, 17, 14, 30), utc(2026, 11, 18, 14, 30)),
        ),
        (
            "day",
            "term",
            utc(2026, 11, 1, 14, 30),
            utc(2026, 11, 18, 14, 30),
            Period(utc(2026, 11, 18, 14, 30), utc(2026, 11, 19, 14, 30)),
        ),
        (
            "week",
            "term",
            utc(2026, 11, 5, 8),
            utc(2026, 11, 19, 8),
            Period(utc(2026, 11, 19, 8), utc(2026, 11, 26, 8)),
        ),
        (
            "week",
            "term",
            utc(2026, 11, 5, 8),
            utc(2026, 11, 19, 7, 59),
            Period(utc(2026, 11, 12, 8), utc(2026, 11, 19, 8)),
        ),
        # month anchored on the 31st: clamped to February's and April's length
        (
            "month",
            "term",
            utc(2027, 1, 31, 10),
            utc(2027, 2, 28, 9, 59),
            Period(utc(2027, 1, 31, 10), utc(2027, 2, 28, 10)),
        ),
        (
            "month",
            "term",
            utc(2027, 1, 31, 10),
            utc(2027, 2, 28, 10),
            Period(utc(2027, 2, 28, 10), utc(2027, 3, 31, 10)),
        ),
        (
            "month",
            "term",
            utc(2027, 1, 31, 10),
            utc(2027, 4, 30, 10),
            Period(utc(2027, 4, 30, 10), utc(2027, 5, 31, 10)),
        ),
        ("year", "term", utc(2024, 2, 29), utc(2025, 2, 28), Period(utc(2025, 2, 28), utc(2026, 2, 28))),
        ("year", "term", utc(2024, 2, 29), utc(2025, 2, 27, 23), Period(utc(2024, 2, 29), utc(2025, 2, 28))),
        # term anchor without a term start: the calendar
        ("month", "term", None, utc(2026, 11, 18), Period(utc(2026, 11, 1), utc(2026, 12, 1))),
    ],
)
def test_period_boundaries(period, anchor, term_start, at, expected):
    # when
    found = period_containing(reset_period=period, reset_anchor=anchor, term_start=term_start, at=at)
    # then
    assert found == expected


@time_machine.travel(FROZEN_NOW, tick=False)
def test_term_anchored_used_counts_partial_days_exactly(workspace, product):
    # given: a monthly allowance anchored on a term that started 2026-10-18 14:30
    calls = metered(workspace, product, period="month", anchor="term", levels=[{"value": "100", "name": "100"}])
    acct = account(workspace)
    subscribe(workspace, acct, "s1", [plan(workspace, "team", {calls: "100"})], term_start=utc(2026, 10, 18, 14, 30))
    rows = [
        (utc(2026, 10, 18, 14, 29), 1000),  # previous period, same day
        (utc(2026, 10, 18, 14, 30), 1),  # first instant of the period
        (utc(2026, 10, 25, 3), 2),  # a whole day inside
        (utc(2026, 11, 18, 11, 59), 4),  # today, before now
        (utc(2026, 11, 18, 14, 30), 2000),  # next period starts today at 14:30
    ]
    allowance_usage_apply(
        workspace_id=workspace.pk, rows=[UsageRow(acct.pk, calls.pk, at, quantity) for at, quantity in rows]
    )
    # when
    answer = entitlement_check(workspace=workspace, account_key="acct-1", feature_key="api-calls", now=FROZEN_NOW)
    # then
    assert (answer["limit"], answer["used"], answer["remaining"], answer["resets_at"]) == (
        100,
        7,
        93,
        "2026-11-18T14:30:00Z",
    )


@time_machine.travel(FROZEN_NOW, tick=False)
def test_calendar_day_allowance_resets_at_midnight_utc(workspace, product):
    # given
    calls = metered(workspace, product, period="day", levels=[{"value": "10", "name": "10"}])
    acct = account(workspace)
    subscribe(workspace, acct, "s1", [plan(workspace, "team", {calls: "10"})])
    allowance_usage_apply(
        workspace_id=workspace.pk,
        rows=[
            UsageRow(acct.pk, calls.pk, utc(2026, 11, 17, 23, 59, 59), 9),
            UsageRow(acct.pk, calls.pk, utc(2026, 11, 18, 0, 0), 3),
        ],
    )
    # when
    answer = entitlement_check(
        workspace=workspace, account_key="acct-1", feature_key="api-calls", now=FROZEN_NOW, quantity=8
    )
    # then
    assert (answer["used"], answer["remaining"], answer["resets_at"]) == (3, 7, "2026-11-19T00:00:00Z")
    assert (answer["entitled"], answer["reason"]) == (False, "limit_exceeded")
