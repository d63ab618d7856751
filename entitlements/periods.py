"""Allowance periods: the [start, end) window of a reset period that contains a moment.

Calendar anchors use UTC calendar periods (day from midnight, ISO week from Monday, month from the 1st, year
from 1 January). Term anchors count from the subscription's current term start: days and weeks are whole
multiples of 24 h / 7 days from it; months and years keep its day of month (clamped to the month's length:
a term starting on the 31st resets on 28/29 February and on 30 April) and its time of day.
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

NONE, DAY, WEEK, MONTH, YEAR = "none", "day", "week", "month", "year"
TERM, CALENDAR = "term", "calendar"


@dataclass(frozen=True)
class Period:
    start: datetime | None  # None: since the beginning (reset period "none")
    end: datetime | None  # None: never resets


def _add_months(anchor: datetime, months: int) -> datetime:
    total = anchor.month - 1 + months
    year, month = anchor.year + total // 12, total % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_containing(*, reset_period: str, reset_anchor: str, term_start: datetime | None, at: datetime) -> Period:
    """The period of `reset_period` containing `at`. A term anchor without a term start uses the calendar."""
    at = at.astimezone(UTC)
    if reset_period == NONE:
        return Period(None, None)
    if reset_anchor == TERM and term_start is not None:
        anchor = term_start.astimezone(UTC)
        if reset_period in (DAY, WEEK):
            step = timedelta(days=1 if reset_period == DAY else 7)
            n = (at - anchor) // step
            start = anchor + n * step
            return Period(start, start + step)
        months = 1 if reset_period == MONTH else 12
        # Estimate the number of steps, then correct: clamping can move a boundary by a few days.
        n = ((at.year - anchor.year) * 12 + at.month - anchor.month) // months
        while _add_months(anchor, n * months) > at:
            n -= 1
        while _add_months(anchor, (n + 1) * months) <= at:
            n += 1
        return Period(_add_months(anchor, n * months), _add_months(anchor, (n + 1) * months))
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if reset_period == DAY:
        return Period(midnight, midnight + timedelta(days=1))
    if reset_period == WEEK:
        start = midnight - timedelta(days=midnight.weekday())
        return Period(start, start + timedelta(days=7))
    if reset_period == MONTH:
        start = midnight.replace(day=1)
        return Period(start, _add_months(start, 1))
    start = midnight.replace(month=1, day=1)
    return Period(start, start.replace(year=start.year + 1))
