"""Logging, configured once per process from settings: ``log_level`` and ``log_format`` ("text" or "json").

Text is one line per record for people (``2026-12-05T04:50:00+0800 WARNING sentinel.ingest.sink: ...``); JSON is
one object per line for log shippers (``{"ts", "level", "logger", "message"}``, plus ``exc`` with a traceback).
Everything Sentinel logs goes through the standard library's ``logging`` under the ``sentinel`` logger.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from sentinel.settings import Settings

_HANDLER_NAME = "sentinel"


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
        text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z")
        handler.setFormatter(text)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries: warnings only
    logging.getLogger("sentinel").setLevel(settings.log_level)
