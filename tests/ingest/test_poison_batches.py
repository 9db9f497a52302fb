"""Poison batches: a batch PostgreSQL refuses for a reason of its data is not retried forever.

The good messages of the batch are stored, the refused ones land in ``dead_letters`` saying which message and what
PostgreSQL said, and the batch is acknowledged; a database that is away still means the local spool, and a store
that is broken (or refuses even the dead letters) still means no acknowledgement.

The refusals are genuine: a CHECK constraint on ``readings`` (a constraint an operator may add, and what any
future constraint looks like), a NUL character in an event note (PostgreSQL text cannot hold one; admission now
refuses it, so such a batch comes from a spool written before that, or from a direct writer call), a missing
table. Real PostgreSQL and Mosquitto throughout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from sentinel.app import prepare_catalogue
from sentinel.batch import DeviceEvent, IngestBatch, MessageKeys, ReadingBatch
from sentinel.collect.mqtt import CollectorConfig, MqttMessage
from sentinel.errors import StoreError
from sentinel.ingest.sink import IngestSink
from sentinel.observability import IngestMetrics
from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import RegistryView
from sentinel.store.ingest_writer import IngestWriter
from sentinel.store.spool import Spool
from sentinel.testing.broker import PrivateMosquitto, publish
from sentinel.testing.service import running_service, sentinel_for_tests, sink_for_tests
from sentinel.wire import Telemetry, device_topic, encode_batch, encode_telemetry, gateway_topic
from sentinel.wire.deadletter import STORE_REFUSED, DeadLetter
from sentinel.wire.messages import Event, encode_event

NOW_US = time.time_ns() // 1000
US = 1_000_000
RECEIVED = datetime.fromtimestamp(NOW_US / US, UTC)
# Values from 1000 up are refused by this constraint, as a plausibility constraint would refuse them.
PLAUSIBLE = "ALTER TABLE readings ADD CONSTRAINT plausible_value CHECK (value < 1000)"
# A constraint that refuses exactly the dead letters made for refused messages (their reason says "refused").
NO_REFUSALS = "ALTER TABLE dead_letters ADD CONSTRAINT no_refusals CHECK (reason NOT LIKE '%refused%')"


def _msg(device: str, seq: int, value: float = 0.3) -> Telemetry:
    return Telemetry(device, NOW_US - 60 * US + seq * 1000, seq, {"pipe_pressure_mpa": value, "ch4_pct_lel": 1.5})


def _sql(db: str, *statements: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _rows(db: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db) as conn:
        return conn.execute(query.encode()).fetchall()


def _count(db: str, table: str) -> int:
    return int(_rows(db, f"SELECT count(*) FROM {table}")[0][0])


def _letters(db: str) -> list[tuple[str, str, str, bytes]]:
    return [
        (str(s), str(p), str(r), bytes(raw))
        for s, p, r, raw in _rows(db, "SELECT source, path, reason, raw FROM dead_letters ORDER BY dead_letter_id")
    ]


def _counter(metrics: IngestMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _ids(db: str) -> tuple[dict[str, int], dict[str, int]]:
    prepare_catalogue(db)
    with psycopg.connect(db) as conn:
        view = RegistryView.load(conn)
    return {d: r.device_id for d, r in view.devices.items()}, view.metric_ids


def _batch(devices: list[int], metric: int, values: list[float], events: list[DeviceEvent]) -> IngestBatch:
    """Message k: device ``devices[k]``, one reading ``values[k]``, seq k."""
    n = len(values)
    ts = np.array([NOW_US - 60 * US + k * 1000 for k in range(n)], np.int64)
    dev = np.array(devices, np.int32)
    seq = np.arange(n, dtype=np.int64)
    readings = ReadingBatch(ts, dev, np.full(n, metric, np.int16), np.array(values, np.float64), seq)
    return IngestBatch(NOW_US, readings, MessageKeys(dev, seq, ts), events)


# ---------------------------------------------------------------------------------------------------- the writer
def test_writer_bisects_a_refused_batch_to_exactly_the_refused_messages(ingest_db: str, registry: RegistryFile) -> None:
    devices, metrics = _ids(ingest_db)
    _sql(ingest_db, PLAUSIBLE)
    bad = {3, 17, 18, 49}
    values = [5000.0 + k if k in bad else 0.1 * k for k in range(50)]
    device = devices[registry.devices[0].id]
    batch = _batch([device] * 50, metrics["pipe_pressure_mpa"], values, [])
    batch.dead_letters = [
        DeadLetter(b"{", "mqtt:x", RECEIVED, "malformed JSON: input ends early at byte 1", "", "malformed_json")
    ]
    writer = IngestWriter(ingest_db, "native")
    try:
        stored = writer.write(batch)
    finally:
        writer.close()

    assert _count(ingest_db, "readings") == 46 == len(stored.batch.readings)
    assert sorted(_seqs(ingest_db)) == sorted(set(range(50)) - bad)
    assert len(stored.refused) == 4
    assert {letter.code for letter in stored.refused} == {STORE_REFUSED}
    letters = _letters(ingest_db)
    assert len(letters) == 5  # the batch's own dead letter and one per refused message
    refused = [json.loads(raw) for _s, _p, reason, raw in letters if "violates check constraint" in reason]
    assert sorted(r["seq"] for r in refused) == sorted(bad)
    assert all(r["device"] == registry.devices[0].id and r["metrics"]["pipe_pressure_mpa"] >= 5000 for r in refused)
    for source, path, reason, _raw in letters[1:]:
        assert source == f"device:{registry.devices[0].id}"
        assert path == ""
        assert '"plausible_value"' in reason, reason
        assert "SQLSTATE 23514" in reason, reason


def _seqs(db: str) -> list[int]:
    return [int(s) for (s,) in _rows(db, "SELECT seq FROM message_log")]


def test_writer_dead_letters_an_event_postgresql_cannot_hold_and_keeps_the_spool_mark(
    ingest_db: str, registry: RegistryFile
) -> None:
    devices, metrics = _ids(ingest_db)
    d0, d1 = devices[registry.devices[0].id], devices[registry.devices[1].id]
    events = [
        DeviceEvent(d0, NOW_US - 5 * US, "event", "spark", 2.0, "detected", "zone 2"),
        DeviceEvent(d1, NOW_US - 4 * US, "event", "spark", None, None, "zone\x003"),  # NUL: PostgreSQL refuses it
        DeviceEvent(d1, NOW_US - 3 * US, "status", "offline"),
    ]
    batch = _batch([d0, d1, d1], metrics["pipe_pressure_mpa"], [0.3, 0.31, 0.32], events)
    writer = IngestWriter(ingest_db, "native")
    try:
        stored = writer.write(batch, spool_mark=("0000000000000000.spool", 1234))
    finally:
        writer.close()

    assert _count(ingest_db, "readings") == 3
    assert _count(ingest_db, "message_log") == 3
    assert _rows(ingest_db, "SELECT name, note FROM device_events ORDER BY ts") == [
        ("spark", "zone 2"),
        ("offline", None),
    ]
    assert _rows(ingest_db, "SELECT segment, applied_to FROM spool_progress") == [("0000000000000000.spool", 1234)]
    [(source, _path, reason, raw)] = _letters(ingest_db)
    assert source == f"device:{registry.devices[1].id}"
    assert "NUL" in reason, reason
    assert "'spark'" in reason, reason
    assert json.loads(raw)["note"] == "zone\x003"  # kept exactly: nothing of it is lost
    assert len(stored.refused) == 1
    assert len(stored.batch.events) == 2


# ---------------------------------------------------------------------------------------------------- MQTT
async def _run_mqtt(
    db: str, broker: PrivateMosquitto, spool: Path, messages: list[tuple[str, bytes]], later: list[tuple[str, bytes]]
) -> IngestMetrics:
    config = CollectorConfig(host=broker.host, port=broker.port, client_id="sentinel-poison", batch_max_wait_s=0.2)
    async with sentinel_for_tests(db, spool, mqtt=config, http=False) as pipeline:
        collector = pipeline.collector
        assert collector is not None
        await asyncio.wait_for(collector.connected.wait(), 10)
        for chunk, expect in ((messages, len(messages)), (later, len(messages) + len(later))):
            await publish(broker.host, broker.port, chunk)
            deadline = time.monotonic() + 30
            while collector.stats.acknowledged < expect and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert collector.stats.acknowledged == expect
        assert collector.stats.sink_failures == 0
        return pipeline.metrics


def test_mqtt_batch_with_refused_messages_is_stored_acknowledged_and_the_stream_goes_on(
    ingest_db: str, registry: RegistryFile, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    _sql(ingest_db, PLAUSIBLE)
    site = registry.sites[0].id
    d0, d1 = registry.devices[0].id, registry.devices[1].id
    gw = registry.gateways[0].id
    single = device_topic(site, d0, "telemetry")
    gateway = gateway_topic(site, gw, "telemetry")
    poison_single = encode_telemetry(_msg(d0, 20, value=5000.0))
    gateway_items = [_msg(d1, 1), _msg(d1, 2, value=7000.0), _msg(d1, 3)]
    messages = [(single, encode_telemetry(_msg(d0, i))) for i in range(10)]
    messages += [(single, poison_single), (gateway, encode_batch(gateway_items))]
    later = [(single, encode_telemetry(_msg(d0, 100 + i))) for i in range(5)]  # after the poison: not blocked
    metrics = asyncio.run(_run_mqtt(ingest_db, mosquitto, tmp_path / "spool", messages, later))

    assert _count(ingest_db, "readings") == (10 + 2 + 5) * 2
    assert _count(ingest_db, "message_log") == 10 + 2 + 5
    letters = _letters(ingest_db)
    assert len(letters) == 2, letters
    by_path = {path: (source, reason, raw) for source, path, reason, raw in letters}
    source, reason, raw = by_path[""]
    assert source == f"mqtt:{single}"
    assert raw == poison_single
    assert f"device {d0!r}, seq 20" in reason, reason
    assert '"plausible_value"' in reason, reason
    source, reason, raw = by_path["messages[1]"]
    assert source == f"mqtt:{gateway}"
    assert raw == encode_telemetry(gateway_items[1])
    assert "SQLSTATE 23514" in reason, reason
    assert _counter(metrics, "sentinel_ingest_messages_rejected_total", reason=STORE_REFUSED) == 2
    assert _counter(metrics, "sentinel_ingest_store_refused_batches_total") >= 1
    assert _counter(metrics, "sentinel_ingest_messages_stored_total") == 17


def test_mqtt_event_whose_note_holds_nul_is_refused_at_admission(
    ingest_db: str, registry: RegistryFile, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    site, d0 = registry.sites[0].id, registry.devices[0].id
    topic = device_topic(site, d0, "event")
    good = encode_event(Event(d0, NOW_US - 2 * US, 1, "spark", 2.0, "detected", "zone 2"))
    bad = encode_event(Event(d0, NOW_US - US, 2, "spark", None, None, "zone\x002"))
    assert b"\\u0000" in bad  # valid JSON, and valid by the wire contract: it gets through decoding
    telemetry = [(device_topic(site, d0, "telemetry"), encode_telemetry(_msg(d0, i))) for i in range(3)]
    metrics = asyncio.run(_run_mqtt(ingest_db, mosquitto, tmp_path / "spool", [(topic, good), (topic, bad)], telemetry))

    assert _rows(ingest_db, "SELECT name, note FROM device_events") == [("spark", "zone 2")]
    assert _count(ingest_db, "readings") == 6
    [(source, path, reason, raw)] = _letters(ingest_db)
    assert (source, path, raw) == (f"mqtt:{topic}", "note", bad)
    assert "NUL" in reason, reason
    assert "character 4" in reason, reason
    assert _counter(metrics, "sentinel_ingest_messages_rejected_total", reason="bad_value") == 1
    assert _counter(metrics, "sentinel_ingest_store_refused_batches_total") == 0


# ---------------------------------------------------------------------------------------------------- HTTP
def test_http_body_with_a_refused_item_is_accepted_with_that_item_dead_lettered(
    ingest_db: str, registry: RegistryFile, tmp_path: Path
) -> None:
    _sql(ingest_db, PLAUSIBLE)
    d0 = registry.devices[0].id
    secret = registry.gateways[0].secret
    body = b"[" + b",".join(encode_telemetry(_msg(d0, i, value=9999.0 if i == 1 else 0.3)) for i in range(3)) + b"]"
    with running_service(ingest_db, tmp_path / "spool") as svc:
        response = httpx.post(
            f"{svc.url}/v1/telemetry",
            content=body,
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        )
    assert response.status_code == 202, response.text
    assert _count(ingest_db, "message_log") == 2
    [(source, path, reason, raw)] = _letters(ingest_db)
    assert (source, path) == (f"http:{registry.gateways[0].id}", "[1]")
    assert raw == encode_telemetry(_msg(d0, 1, value=9999.0))
    assert '"plausible_value"' in reason


# ---------------------------------------------------------------------------------------------------- spool
def test_outage_still_spools_and_the_replay_stores_around_a_refused_record(
    ingest_db: str, registry: RegistryFile, tmp_path: Path
) -> None:
    _sql(ingest_db, PLAUSIBLE)
    site, d0 = registry.sites[0].id, registry.devices[0].id
    topic = device_topic(site, d0, "telemetry")
    away = IngestWriter("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2", "native")

    async def run() -> tuple[IngestSink, bool, int, int]:
        sink = sink_for_tests(ingest_db, tmp_path / "spool", away)
        await sink.start()
        received = time.time()
        first = [
            MqttMessage(topic, encode_telemetry(_msg(d0, i, value=5000.0 if i == 2 else 0.3)), received)
            for i in range(4)
        ]
        await sink.mqtt(first)  # returns: durable in the spool, so the collector would acknowledge
        await sink.mqtt([MqttMessage(topic, encode_telemetry(_msg(d0, 4)), received)])
        spooling, spooled = sink.spooling, int(sink.metrics.spooled._value.get())
        in_db = _count(ingest_db, "message_log")
        sink.writer = IngestWriter(ingest_db, "native")  # the database is back
        deadline = time.monotonic() + 30
        while sink.spooling and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await sink.stop()
        away.close()
        return sink, spooling, spooled, in_db

    sink, spooling_during_outage, spooled, in_db_during_outage = asyncio.run(run())
    assert spooling_during_outage
    assert spooled >= 1
    assert in_db_during_outage == 0
    assert not sink.spooling
    assert not any((tmp_path / "spool").glob("*.spool"))
    assert _count(ingest_db, "spool_progress") == 0
    assert sorted(_seqs(ingest_db)) == [0, 1, 3, 4]
    assert _count(ingest_db, "readings") == 8
    [(source, _path, reason, raw)] = _letters(ingest_db)
    assert source == f"device:{d0}"
    assert '"plausible_value"' in reason
    assert json.loads(raw)["seq"] == 2
    assert _counter(sink.metrics, "sentinel_ingest_messages_rejected_total", reason=STORE_REFUSED) == 1


def test_spool_written_before_the_admission_fix_replays_around_a_nul_note(
    ingest_db: str, registry: RegistryFile, tmp_path: Path
) -> None:
    devices, metrics = _ids(ingest_db)
    d0 = devices[registry.devices[0].id]
    spool = Spool(tmp_path / "spool")
    poison = DeviceEvent(d0, NOW_US - 3 * US, "event", "spark", None, None, "a\x00b")
    spool.append(_batch([d0, d0], metrics["ch4_pct_lel"], [1.0, 2.0], [poison]))
    spool.append(_batch([d0], metrics["ch4_pct_lel"], [3.0], []))

    async def run() -> bool:
        async with sentinel_for_tests(ingest_db, tmp_path / "spool", http=False) as pipeline:
            deadline = time.monotonic() + 30
            while pipeline.sink.spooling and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return pipeline.sink.spooling

    assert asyncio.run(run()) is False
    assert not any((tmp_path / "spool").glob("*.spool"))
    assert _count(ingest_db, "readings") == 3
    assert _count(ingest_db, "device_events") == 0
    [(_source, _path, reason, raw)] = _letters(ingest_db)
    assert "NUL" in reason
    assert json.loads(raw)["note"] == "a\x00b"


def test_a_replay_that_cannot_store_even_the_dead_letters_waits_loudly_then_resumes(
    ingest_db: str, registry: RegistryFile, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    devices, metrics = _ids(ingest_db)
    d0 = devices[registry.devices[0].id]
    _sql(
        ingest_db, PLAUSIBLE, "ALTER TABLE dead_letters ADD CONSTRAINT no_refusals CHECK (reason NOT LIKE '%refused%')"
    )
    spool = Spool(tmp_path / "spool")
    spool.append(_batch([d0, d0], metrics["ch4_pct_lel"], [1.0, 5000.0], []))
    spool.append(_batch([d0], metrics["ch4_pct_lel"], [3.0], []))
    writer = IngestWriter(ingest_db, "native")

    async def run() -> tuple[bool, bool]:
        sink = sink_for_tests(ingest_db, tmp_path / "spool", writer)
        await sink.start()
        deadline = time.monotonic() + 30
        while "spool replay stalled" not in caplog.text and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stalled = sink.spooling
        _sql(ingest_db, "ALTER TABLE dead_letters DROP CONSTRAINT no_refusals")  # the operator fixes it
        deadline = time.monotonic() + 30
        while sink.spooling and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        resumed = not sink.spooling
        await sink.stop()
        return stalled, resumed

    with caplog.at_level(logging.WARNING):
        stalled, resumed = asyncio.run(run())
    assert stalled
    assert resumed
    assert "INGEST BLOCKED" in caplog.text
    assert _count(ingest_db, "readings") == 2
    assert len(_letters(ingest_db)) == 1
    assert not any((tmp_path / "spool").glob("*.spool"))


# ---------------------------------------------------------------------------------------------------- not acknowledged
def test_when_even_the_dead_letters_are_refused_nothing_is_stored_and_the_batch_is_not_acknowledged(
    ingest_db: str, registry: RegistryFile, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _sql(
        ingest_db, PLAUSIBLE, "ALTER TABLE dead_letters ADD CONSTRAINT no_refusals CHECK (reason NOT LIKE '%refused%')"
    )
    site, d0 = registry.sites[0].id, registry.devices[0].id
    topic = device_topic(site, d0, "telemetry")
    payloads = [encode_telemetry(_msg(d0, i, value=5000.0 if i == 1 else 0.3)) for i in range(3)]

    async def run() -> None:
        async with sentinel_for_tests(ingest_db, tmp_path / "spool", http=False) as pipeline:
            batch = [MqttMessage(topic, p, time.time()) for p in payloads]
            with pytest.raises(StoreError, match="dead letters"):
                await pipeline.sink.mqtt(batch)
            assert not pipeline.sink.spooling
            assert _count(ingest_db, "message_log") == 0
            assert _count(ingest_db, "dead_letters") == 0
            _sql(ingest_db, "ALTER TABLE dead_letters DROP CONSTRAINT no_refusals")
            await pipeline.sink.mqtt(batch)  # the broker's redelivery: not mistaken for duplicates

    with caplog.at_level(logging.ERROR):
        asyncio.run(run())
    assert "INGEST BLOCKED" in caplog.text
    assert sorted(_seqs(ingest_db)) == [0, 2]
    assert len(_letters(ingest_db)) == 1


def test_a_broken_store_is_not_mistaken_for_bad_data(ingest_db: str, registry: RegistryFile, tmp_path: Path) -> None:
    site, d0 = registry.sites[0].id, registry.devices[0].id
    event = encode_event(Event(d0, NOW_US - US, 1, "spark", 1.0))
    batch_of = [
        (device_topic(site, d0, "telemetry"), encode_telemetry(_msg(d0, 1))),
        (device_topic(site, d0, "event"), event),
    ]

    async def run() -> None:
        async with sentinel_for_tests(ingest_db, tmp_path / "spool", http=False) as pipeline:
            batch = [MqttMessage(t, p, time.time()) for t, p in batch_of]
            _sql(ingest_db, "ALTER TABLE device_events RENAME TO device_events_moved")
            with pytest.raises(StoreError, match="device_events"):
                await pipeline.sink.mqtt(batch)
            assert _count(ingest_db, "message_log") == 0
            assert _count(ingest_db, "dead_letters") == 0
            assert pipeline.metrics.registry.get_sample_value("sentinel_ingest_store_refused_batches_total") == 0
            _sql(ingest_db, "ALTER TABLE device_events_moved RENAME TO device_events")
            await pipeline.sink.mqtt(batch)

    asyncio.run(run())
    assert _count(ingest_db, "message_log") == 1
    assert _count(ingest_db, "device_events") == 1
    assert _count(ingest_db, "dead_letters") == 0
