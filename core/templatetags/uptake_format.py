"""Numbers, percentages and times for people, the one place every dashboard and alert page formats them.

`{% load uptake_format %}` then `{{ n|num }}` (47,213), `{{ x|pct }}` (90.0 %), `{{ t|when }}` (2026-12-01 15:56 in
the workspace's timezone, which workspace_page activates) and `{{ t|ago }}` ("3 days ago", the exact time on hover).
Times accept datetimes and ISO 8601 strings (entitlement payloads carry strings); CSV exports do not use these and
keep ISO 8601 and plain numbers."""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

register = template.Library()

DATETIME_FORMAT = "%Y-%m-%d %H:%M"
EMPTY = "—"


@register.filter
def num(value) -> str:
    """Thousands separators; floats keep one decimal."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, float):
        return f"{value:,.1f}"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def pct(value) -> str:
    """A percentage with its sign: 90.0 %."""
    if value is None or value == "":
        return EMPTY
    try:
        return f"{float(value):,.1f} %"
    except (TypeError, ValueError):
        return str(value)


def _as_datetime(value) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return timezone.localtime(value) if timezone.is_aware(value) else value
    return None


def _exact(moment: datetime) -> str:
    return f"{moment.strftime(DATETIME_FORMAT)} {timezone.get_current_timezone_name()}"


@register.filter
def when(value) -> str:
    """One date-time format, in the active (workspace) timezone; the zone's name on hover."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    moment = _as_datetime(value)
    if moment is None:
        return EMPTY if value in (None, "") else str(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', moment.isoformat(), _exact(moment), moment.strftime(DATETIME_FORMAT)
    )


@register.filter
def ago(value) -> str:
    """Relative time ("3 days ago", "in 5 hours"), the exact time in the workspace's timezone on hover."""
    moment = _as_datetime(value)
    if moment is None:
        return EMPTY if value in (None, "") else str(value)
    now = timezone.now()
    if moment <= now:
        text = "just now" if (now - moment).total_seconds() < 60 else f"{timesince(moment, now, depth=1)} ago"
    else:
        text = f"in {timeuntil(moment, now, depth=1)}"
    return format_html('<time datetime="{}" title="{}">{}</time>', moment.isoformat(), _exact(moment), text)


@register.simple_tag(takes_context=True)
def timezone_label(context) -> str:
    """'Times in Europe/Berlin', for the page header."""
    return f"Times in {timezone.get_current_timezone_name()}"


@register.filter
def as_kind(value, kind: str) -> str:
    """Format a table cell by its column's kind: num, pct, when, ago or text."""
    formatter = {"num": num, "pct": pct, "when": when, "ago": ago}.get(kind)
    if formatter is not None:
        return formatter(value)
    return EMPTY if value is None or value == "" else value
