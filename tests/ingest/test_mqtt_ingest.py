"""MQTT end to end on a real Mosquitto and PostgreSQL: good readings stored, every bad message dead-lettered with a
precise reason, duplicates dropped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg

from sentinel.collect.mqtt import CollectorConfig
from sentinel.registry.entries import RegistryFile
from sentinel.testing.broker import PrivateMosquitto, publish
from sentinel.testing.service import sentinel_for_tests
from sentinel.wire import Telemetry, WireLimits, device_topic, encode_batch, encode_telemetry, gateway_topic

NOW_US = time.time_ns() // 1000


def _msg(device: str, seq: int, **metrics: float) -> Telemetry:
    return Telemetry(device, NOW_US - 60_000_000 + seq * 1000, seq, dict(metrics) or {"pipe_pressure_mpa": 0.3})


async def _run(db: str, broker: PrivateMosquitto, spool: Path, messages: list[tuple[str, bytes]], expect: int) -> None:
    config = CollectorConfig(host=broker.host, port=broker.port, client_id="sentinel-test", batch_max_wait_s=0.05)
    async with sentinel_for_tests(db, spool, mqtt=config, http=False) as pipeline:
        assert pipeline.collector is not None
        await asyncio.wait_for(pipeline.collector.connected.wait(), 10)
        await publish(broker.host, broker.port, messages)
        deadline = time.monotonic() + 20
        while pipeline.collector.stats.acknowledged < expect and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert pipeline.collector.stats.acknowledged == expect


def test_mixed_stream(
    ingest_db: str, registry: RegistryFile, mosquitto: PrivateMosquitto, tmp_path: Path, prefix: str
) -> None:
    s0, s1 = registry.sites[0].id, registry.sites[1].id
    d0, d1 = registry.devices[0].id, registry.devices[3].id  # d0 at s0, d1 at s1
    gw = registry.gateways[0].id
    good = [
        (device_topic(s0, d0, "telemetry"), encode_telemetry(_msg(d0, i, pipe_pressure_mpa=0.3 + i / 1000)))
        for i in range(50)
    ]
    bad = [
        (device_topic(s0, d0, "telemetry"), b'{"device": "x", "ts": '),  # malformed JSON
        (
            device_topic(s0, d0, "telemetry"),
            b'{"device": "%s", "ts": 1780000000000, "seq": 1, "metrics": {"pipe_pressure_mpa": "high"}}' % d0.encode(),
        ),  # wrong type
        (device_topic(s0, f"{prefix}-ghost", "telemetry"), encode_telemetry(_msg(f"{prefix}-ghost", 1))),  # unknown
        (device_topic(s0, d1, "telemetry"), encode_telemetry(_msg(d1, 1))),  # d1 belongs to s1, topic says s0
        (gateway_topic(s1, gw, "telemetry"), encode_batch([_msg(d1, 2)])),  # gateway not bound to s1
        (device_topic(s0, d0, "telemetry"), b'{"pad": "' + b"x" * WireLimits().max_payload_bytes + b'"}'),  # oversized
    ]
    duplicates = good[:5]
    messages = good + bad + duplicates
    asyncio.run(_run(ingest_db, mosquitto, tmp_path / "spool", messages, len(messages)))

    with psycopg.connect(ingest_db) as conn:
        readings = conn.execute("SELECT count(*), count(DISTINCT ts) FROM readings").fetchone()
        letters = conn.execute("SELECT source, path, reason FROM dead_letters ORDER BY dead_letter_id").fetchall()
    assert readings == (50, 50)
    assert len(letters) == len(bad)
    reasons = " | ".join(f"{p}: {r}" for _s, p, r in letters)
    for expected in (
        "malformed",
        "metrics.pipe_pressure_mpa",
        "unknown device",
        "belongs to site",
        "not bound to site",
        "oversized",
    ):
        assert expected in reasons, (expected, letters)
    assert all(src.startswith("mqtt:sentinel/v1/") for src, _p, _r in letters)
