"""Logging, configured once per process from settings: ``log_level`` and ``log_format`` ("text" or "json").

Text is one line per record for people, its time in ``display_tz`` like everything a person reads
(``2026-12-05T12:50:00+0800 WARNING sentinel.ingest.sink: ...``); JSON is one object per line for log shippers
(``{"ts", "level", "logger", "message"}``, ``ts`` in UTC ISO 8601, plus ``exc`` with a traceback). The MQTT client
library's own chatter (``sentinel.collect.gmqtt``: every SUBACK, every connect) is kept to warnings.
Everything Sentinel logs goes through the standard library's ``logging`` under the ``sentinel`` logger.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from sentinel.settings import Settings

_HANDLER_NAME = "sentinel"


class DisplayZoneFormatter(logging.Formatter):
    """Record times in the display time zone, with their offset."""

    def __init__(self, fmt: str, zone: str) -> None:
        super().__init__(fmt)
        self.zone = ZoneInfo(zone)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return datetime.fromtimestamp(record.created, self.zone).strftime("%Y-%m-%dT%H:%M:%S%z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Install Sentinel's one handler on the root logger (again: replaces it, so calling twice is harmless)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            DisplayZoneFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", settings.display_tz)
        )
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries: warnings only
    logging.getLogger("sentinel").setLevel(settings.log_level)
    gmqtt_level = max(logging.WARNING, logging.getLevelName(settings.log_level))
    logging.getLogger("sentinel.collect.gmqtt").setLevel(gmqtt_level)
