"""Times as a person reads them: in ``SENTINEL_DISPLAY_TZ`` (settings.display_tz), never in the storage zone.

Every table or line the CLI prints for a person goes through :func:`cell` (or :func:`local_time`); machine
outputs (JSON, CSV, the HTTP API) keep ISO 8601 with offset and do not use this module.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# An ISO 8601 time with an offset as services hand it over in dicts (e.g. report windows): shown local too.
_ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$")


def local_time(value: datetime, tz: ZoneInfo) -> str:
    """``2026-12-05 14:03:07`` in the display zone (a naive value is taken as UTC, as storage is)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any, tz: ZoneInfo) -> str:
    """One value of a printed table or record: times in the display zone, None as empty, the rest as text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return local_time(value, tz)
    if isinstance(value, str) and _ISO_WITH_OFFSET.match(value):
        try:
            return local_time(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def record(values: dict[str, Any], tz: ZoneInfo) -> dict[str, str]:
    """A record (``alerts show``, ``hazards show``) with every value as :func:`cell` shows it."""
    return {k: cell(v, tz) for k, v in values.items()}


def zone_note(tz: ZoneInfo) -> str:
    """The caption under a table that shows times: which zone they are in."""
    return f"时间 times: {tz.key}"


def parse_local(text: str, tz: ZoneInfo) -> datetime:
    """A time a person typed (ISO date or date-time); without an offset it is in the display zone.

    Raises ValueError for text that is not ISO 8601.
    """
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def month_of(moment: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``[first day 00:00, first day of the next month 00:00)`` of ``moment``'s month in the display zone."""
    local = moment.astimezone(tz)
    start = datetime(local.year, local.month, 1, tzinfo=tz)
    days = monthrange(local.year, local.month)[1]
    return start, start + timedelta(days=days)
