"""/metrics scraped from a running service while telemetry is replayed into it (must-show 3): Prometheus names and
types, counters that count what was sent, and label sets that stay the same as the fleet grows from 100 to 10,000
devices (no device or site id ever becomes a label)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from prometheus_client import generate_latest

from sentinel.api.ingest import REGISTRY_CODES
from sentinel.collect.mqtt import CollectorConfig
from sentinel.engine.catalog import metric_index
from sentinel.engine.devices import DeviceSpec
from sentinel.engine.engine import Engine
from sentinel.engine.loader import load_rules
from sentinel.observability import ENGINE_SKIP_REASONS, MQTT_COUNTERS, IngestMetrics
from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import create_api_key, upsert_registry
from sentinel.testing.broker import PrivateMosquitto, publish
from sentinel.testing.publisher import device_name, fleet_registry
from sentinel.testing.service import ServiceThread, running_service
from sentinel.wire import RejectCode, Telemetry, device_topic, encode_telemetry
from tests.metrics.scrape import Scrape, health_board_metric_names

SITES = 100
FLEET = 10_000
CHUNK = 2_000
NOW_US = time.time_ns() // 1000
# Metric family (as the parser names it: counters without _total) -> type. These names are used by the boards.
EXPECTED = {
    "sentinel_ingest_messages_received": "counter",
    "sentinel_ingest_messages_stored": "counter",
    "sentinel_ingest_readings_stored": "counter",
    "sentinel_ingest_messages_rejected": "counter",
    "sentinel_ingest_duplicates": "counter",
    "sentinel_ingest_late_readings": "counter",
    "sentinel_ingest_queue_batches": "gauge",
    "sentinel_ingest_spooled_batches": "counter",
    "sentinel_ingest_spool_pending": "gauge",
    "sentinel_ingest_backpressure": "counter",
    "sentinel_ingest_batch_latency_seconds": "histogram",
    "sentinel_db_write_seconds": "histogram",
}
LABELS = {"transport", "reason", "le"}
REASONS = {c.value for c in RejectCode} | REGISTRY_CODES | {"unknown_gateway"}


def _lines(prefix: str, first: int, last: int, seq: int) -> list[bytes]:
    """One message per device in [first, last) plus two bad ones (a wrong type and an unknown device)."""
    lines = []
    for index in range(first, last):
        device = device_name(prefix, index, SITES)[1]
        ts = NOW_US - 120_000_000 + seq * 1_000_000
        lines.append(encode_telemetry(Telemetry(device, ts, seq, {"pipe_pressure_mpa": 0.3, "ch4_pct_lel": 1.0})))
    lines.append(
        b'{"device": "%s-s0-d0", "ts": %d, "seq": 1, "metrics": {"ch4_pct_lel": "x"}}'
        % (prefix.encode(), NOW_US // 1000)
    )
    lines.append(encode_telemetry(Telemetry(f"{prefix}-ghost-{first}", NOW_US, 1, {"ch4_pct_lel": 1.0})))
    return lines


@pytest.fixture
def fleet(migrated_db: str) -> tuple[str, str, str]:
    prefix = f"m{uuid.uuid4().hex[:6]}"
    with psycopg.connect(migrated_db) as conn:
        upsert_registry(conn, fleet_registry(prefix, FLEET, SITES))
        token = create_api_key(conn, f"{prefix}-admin", "admin")
    return migrated_db, prefix, token


@pytest.fixture
def service(fleet: tuple[str, str, str], tmp_path: Path) -> Iterator[ServiceThread]:
    with running_service(fleet[0], tmp_path / "spool") as svc:
        yield svc


def _send(http: httpx.Client, lines: list[bytes]) -> None:
    response = http.post("/v1/telemetry", content=b"\n".join(lines), headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    assert response.json()["rejected"] == 2, response.text


def test_names_types_and_bounded_labels_as_the_fleet_grows(service: ServiceThread, fleet: tuple[str, str, str]) -> None:
    _, prefix, token = fleet
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        _send(http, _lines(prefix, 0, 100, seq=1))
        small = Scrape.of(http.get("/metrics"))
        growing = []
        for first in range(0, FLEET, CHUNK):
            _send(http, _lines(prefix, first, first + CHUNK, seq=2))
            growing.append(Scrape.of(http.get("/metrics")))  # scraped during the replay, between chunks
    large = growing[-1]

    for scrape in (small, large):
        for name, kind in EXPECTED.items():
            assert scrape.types.get(name) == kind, f"{name}: {scrape.types.get(name)} (want {kind})"
        scrape.check_conventions()
        assert scrape.label_names() <= LABELS, scrape.label_names()
        assert scrape.label_values("reason") <= REASONS
        assert not [v for v in scrape.all_label_values() if prefix in v], "a device or site id became a label"
    # 100 devices or 10,000: the same series, not one more.
    assert small.series == large.series
    assert all(s.series == large.series for s in growing)
    assert len(large.series) < 100

    # The counters count what was sent: 100 + 10,000 good messages, two readings each, two refusals per post.
    assert small.value("sentinel_ingest_messages_stored_total") == 100
    assert large.value("sentinel_ingest_messages_stored_total") == 100 + FLEET
    assert large.value("sentinel_ingest_readings_stored_total") == 2 * (100 + FLEET)
    posts = 1 + FLEET // CHUNK
    assert large.value("sentinel_ingest_messages_rejected_total", reason="wrong_type") == posts
    assert large.value("sentinel_ingest_messages_rejected_total", reason="unknown_device") == posts
    assert large.value("sentinel_ingest_batch_latency_seconds_count") >= posts
    assert large.value("sentinel_db_write_seconds_count") >= 1


def test_engine_counters_are_exported_with_a_fixed_reason_set() -> None:
    engine = Engine(load_rules(), [DeviceSpec("port-1", "charging_port", "estate-1", "charging", 10.0)])
    metrics = IngestMetrics()
    metrics.watch_engine(lambda: engine.stats)
    port, pipe = metric_index("port_temp_c"), metric_index("pipe_pressure_mpa")  # a port has no pipe pressure
    n = 5
    engine.process(
        np.zeros(n, dtype=np.int32),
        np.array([port, port, pipe, port, port], dtype=np.int16),
        NOW_US + np.arange(n, dtype=np.int64) * 1_000_000,
        np.array([30.0, np.nan, 0.3, 31.0, np.inf]),
        np.arange(1, n + 1, dtype=np.int64),
    )
    scrape = Scrape.parse(generate_latest(metrics.registry).decode())
    assert scrape.types["sentinel_engine_readings"] == "counter"
    assert scrape.value("sentinel_engine_readings_total") == n
    assert scrape.value("sentinel_engine_readings_skipped_total", reason="invalid") == 2
    assert scrape.value("sentinel_engine_readings_skipped_total", reason="unmapped") == 1
    assert scrape.value("sentinel_engine_readings_skipped_total", reason="too_late") == 0
    assert scrape.label_values("reason") == set(ENGINE_SKIP_REASONS)
    # Renamed: readings *not* put back in order; the old name stays for one release, with the same count.
    assert scrape.value("sentinel_engine_readings_out_of_order_total") == 0
    assert scrape.value("sentinel_engine_readings_reordered_total") == 0
    scrape.check_conventions()


def test_mqtt_collector_counters_and_every_health_board_metric_are_scraped(
    migrated_db: str, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    prefix = f"q{uuid.uuid4().hex[:6]}"
    registry: RegistryFile = fleet_registry(prefix, 200, 10)
    with psycopg.connect(migrated_db) as conn:
        upsert_registry(conn, registry)
    config = CollectorConfig(host=mosquitto.host, port=mosquitto.port, client_id=f"{prefix}-c", batch_max_wait_s=0.05)
    messages = [
        (
            device_topic(d.site, d.id, "telemetry"),
            encode_telemetry(Telemetry(d.id, NOW_US - 60_000_000, 1, {"ch4_pct_lel": 2.0})),
        )
        for d in registry.devices
    ]
    # And one refused (wrong type), so the rejects series exists as it does on any real day.
    bad = b'{"device": "%s", "ts": %d, "seq": 2, "metrics": {"ch4_pct_lel": "x"}}' % (
        registry.devices[0].id.encode(),
        NOW_US // 1000,
    )
    messages.append((device_topic(registry.devices[0].site, registry.devices[0].id, "telemetry"), bad))
    with running_service(migrated_db, tmp_path / "spool", mqtt=config) as svc:
        collector = svc.sentinel.collector
        assert collector is not None
        # The pipeline exports its collector's counters itself; the engine stage is not part of running_service.
        engine = Engine(load_rules())
        svc.sentinel.metrics.watch_engine(lambda: engine.stats)

        async def replay() -> None:
            await asyncio.wait_for(collector.connected.wait(), 10)
            await publish(mosquitto.host, mosquitto.port, messages)
            while collector.stats.acknowledged < len(messages):
                await asyncio.sleep(0.05)

        svc.call(lambda: asyncio.wait_for(replay(), 30))
        scrape = Scrape.of(httpx.get(f"{svc.url}/metrics", timeout=30))
    for name, _ in MQTT_COUNTERS.values():
        assert scrape.types.get(name) == "counter", name
    assert scrape.value("sentinel_mqtt_messages_received_total") == len(messages)
    assert scrape.value("sentinel_mqtt_messages_acknowledged_total") == len(messages)
    assert scrape.value("sentinel_mqtt_connected") == 1
    assert scrape.value("sentinel_ingest_messages_received_total", transport="mqtt") == len(messages)
    scrape.check_conventions()
    # Every metric a Prometheus panel of the health board asks for is one Sentinel exports.
    wanted = health_board_metric_names()
    assert wanted, "the health board has no Prometheus panels"
    assert wanted <= scrape.sample_names(), wanted - scrape.sample_names()
