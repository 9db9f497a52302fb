"""Fixtures for the composition root's tests: the ingest tests' registry and database (imported, not copied), and
a few helpers to publish readings and count what was stored."""

from __future__ import annotations

import asyncio
import time

import psycopg

from sentinel.registry.entries import RegistryFile
from sentinel.testing.broker import PrivateMosquitto, publish
from sentinel.wire import Telemetry, device_topic, encode_telemetry
from tests.ingest.conftest import ingest_db, prefix, registry

__all__ = ["ingest_db", "prefix", "publish_readings", "registry", "stored_messages"]


def publish_readings(broker: PrivateMosquitto, registry: RegistryFile, first_seq: int, count: int) -> int:
    """``count`` telemetry messages from the registry's first device at QoS 1; how many the broker acknowledged."""
    site, device = registry.sites[0].id, registry.devices[0].id
    now_us = time.time_ns() // 1000
    messages = [
        (
            device_topic(site, device, "telemetry"),
            encode_telemetry(Telemetry(device, now_us + seq, seq, {"pipe_pressure_mpa": 0.3})),
        )
        for seq in range(first_seq, first_seq + count)
    ]
    return asyncio.run(publish(broker.host, broker.port, messages))


def stored_messages(conninfo: str, device: str) -> set[int]:
    """The sequence numbers of ``device``'s messages in message_log."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT m.seq FROM message_log m JOIN devices d USING (device_id) WHERE d.device = %s", (device,)
        ).fetchall()
    return {int(r[0]) for r in rows}
