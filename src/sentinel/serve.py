"""``sentinel serve``: the composition root with everything on, until SIGINT, SIGTERM or SIGHUP.

The database must be migrated (``sentinel db upgrade``); serve refuses to start on a schema it does not know rather
than guessing. Without ``SENTINEL_MQTT_URL`` only HTTP ingest runs. At start it prints what it runs: version,
database and dialect, broker, the HTTP URL and where to look next.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from sentinel import __version__
from sentinel.app import Sentinel
from sentinel.settings import Settings
from sentinel.store.database import describe

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def start_lines(sentinel: Sentinel) -> list[str]:
    s = sentinel.settings
    db = sentinel.database
    where = "embedded PostgreSQL" if db is not None and db.embedded else describe(sentinel.conninfo)
    broker = sentinel.mqtt.host + f":{sentinel.mqtt.port}" if sentinel.mqtt is not None else "none (HTTP ingest only)"
    url = sentinel.url
    return [
        f"Sentinel {__version__} 已启动 (serving)",
        f"  数据库 database: {where} · dialect {sentinel.dialect}",
        f"  消息代理 MQTT broker: {broker}",
        f"  HTTP API: {url}  (ingest POST {url}/v1/telemetry)",
        f"  下一步 next: {url}/docs (API), {url}/readyz (ready?), {url}/metrics (Prometheus)",
        f"  日志 logs: level {s.log_level}, format {s.log_format} (SENTINEL_LOG_LEVEL, SENTINEL_LOG_FORMAT)",
    ]


async def serve(settings: Settings, say: Callable[[str], None] = print) -> None:
    """Run until SIGINT, SIGTERM or SIGHUP (its terminal closed: the embedded database must not outlive us). The
    handlers are in place before anything starts, so a signal during start-up stops it cleanly too."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with Sentinel.from_settings(settings) as sentinel:
            for line in start_lines(sentinel):
                say(line)
            await stop.wait()
            say("Sentinel 正在停止 (stopping)")
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
