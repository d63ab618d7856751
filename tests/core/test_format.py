"""People-ready numbers and times (core.templatetags.uptake_format), in the active (workspace) timezone."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from core.templatetags.uptake_format import ago, as_kind, num, pct, when

AT = datetime(2026, 12, 1, 14, 56, 7, 123456, tzinfo=UTC)


def test_numbers_get_thousands_separators_and_percentages_their_sign():
    assert [num(47213), num(1000000), num(0), num(None), num(12.345), num("7")] == [
        "47,213",
        "1,000,000",
        "0",
        "—",
        "12.3",
        "7",
    ]
    assert [pct(90.0), pct(1234.56), pct(None), pct(-88.9)] == ["90.0 %", "1,234.6 %", "—", "-88.9 %"]


def test_times_are_shown_in_the_workspace_timezone_with_the_zone_on_hover():
    with timezone.override(ZoneInfo("Europe/Berlin")):
        # a datetime and the ISO string an entitlement payload carries read the same
        expected = (
            '<time datetime="2026-12-01T15:56:07.123456+01:00" title="2026-12-01 15:56 Europe/Berlin">'
            "2026-12-01 15:56</time>"
        )
        assert when(AT) == expected
        assert when("2026-12-01T14:56:07.123456Z") == expected
        assert when(date(2026, 12, 1)) == "2026-12-01"
        assert when(None) == "—"


def test_relative_times_keep_the_exact_time_on_hover():
    now = timezone.now()
    with timezone.override(ZoneInfo("UTC")):
        three_days = ago(now - timedelta(days=3, minutes=5))
        assert ">3\xa0days ago</time>" in three_days
        assert f'title="{timezone.localtime(now - timedelta(days=3, minutes=5)):%Y-%m-%d %H:%M} UTC"' in three_days
        assert ">in 5\xa0hours</time>" in ago(now + timedelta(hours=5, minutes=1))
        assert ago(None) == "—"


def test_table_cells_format_by_column_kind():
    assert [as_kind(1500, "num"), as_kind(85.0, "pct"), as_kind(None, "text"), as_kind("team", "text")] == [
        "1,500",
        "85.0 %",
        "—",
        "team",
    ]
