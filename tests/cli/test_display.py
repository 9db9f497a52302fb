"""Times for people (sentinel.display): the display zone decides the day and the month, not UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sentinel.display import cell, month_of, parse_local

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_the_month_is_the_display_zones_month() -> None:
    moment = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # already 1 December in Shanghai
    start, end = month_of(moment, SHANGHAI)
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00")
    assert month_of(moment, ZoneInfo("UTC"))[0].month == 11


def test_cells_show_local_times_and_leave_the_rest() -> None:
    stored = datetime(2026, 12, 5, 4, 0, 7, tzinfo=UTC)
    assert cell(stored, SHANGHAI) == "2026-12-05 12:00:07"
    assert cell("2026-12-05T04:00:07+00:00", SHANGHAI) == "2026-12-05 12:00:07"  # ISO text from a service
    assert cell("gas-xz-01", SHANGHAI) == "gas-xz-01"
    assert cell(date(2027, 1, 1), SHANGHAI) == "2027-01-01"
    assert cell(None, SHANGHAI) == ""
    assert parse_local("2026-12-01", SHANGHAI) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
