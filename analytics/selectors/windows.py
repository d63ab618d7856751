"""The analytics window: an inclusive range of UTC dates, and the prior window of equal length."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from core.errors import DomainError

DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 366
# Windows (and the prior windows before them) stay far from the ends of Python's and PostgreSQL's calendars.
WINDOW_FIRST_DATE = date(1970, 1, 1)
WINDOW_LAST_DATE = date(2999, 12, 31)


@dataclass(frozen=True)
class Window:
    """Inclusive range of UTC dates."""

    start: date
    end: date

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.length)]

    @property
    def prior(self) -> Window:
        """The window of equal length just before this one."""
        return Window(self.start - timedelta(days=self.length), self.start - timedelta(days=1))

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


def analytics_window(*, date_from: date | None, date_to: date | None, today: date) -> Window:
    """Resolve from/to: `to` defaults to today (inclusive), `from` to 29 days before `to` (30 days in all)."""
    for name, value in (("from", date_from), ("to", date_to)):
        if value is not None and not WINDOW_FIRST_DATE <= value <= WINDOW_LAST_DATE:
            raise DomainError(
                f"'{name}' ({value.isoformat()}) must be a UTC date from {WINDOW_FIRST_DATE.isoformat()} to "
                f"{WINDOW_LAST_DATE.isoformat()}.",
                code="date_out_of_range",
                field=name,
            )
    end = date_to or today
    start = date_from or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    if end < start:
        raise DomainError(
            f"'to' ({end.isoformat()}) is before 'from' ({start.isoformat()}).", code="invalid_range", field="to"
        )
    if (end - start).days + 1 > MAX_WINDOW_DAYS:
        raise DomainError(
            f"The window from {start.isoformat()} to {end.isoformat()} is longer than {MAX_WINDOW_DAYS} days.",
            code="window_too_long",
            field="from",
        )
    return Window(start, end)
