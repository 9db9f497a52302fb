"""A replayed scenario raises each alert once; a restart rebuilds engine state from the database and loses nothing.

In-process service (ServiceThread) with the engine stage; the kill -9 variant is in test_kill_restart.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import psycopg

from sentinel.alerts.watch import AlertWriter
from sentinel.engine.runner import EngineRunner
from sentinel.testing.service import ServiceThread, start_service
from tests.alerts.support import db_transitions, expected, make_plant, post_messages, scenario, wait_for


def _service(db: str, spool: Path, checkpoint_every_s: float = 0.0) -> ServiceThread:
    settings = {"engine_tick_s": 3600.0, "engine_checkpoint_s": checkpoint_every_s}
    return start_service(db, spool, engine=True, settings=settings)


def test_scenario_then_replays_raise_each_alert_once(migrated_db: str, tmp_path: Path) -> None:
    plant = make_plant(migrated_db)
    messages = scenario(plant.devices)
    want_keys, want_alerts = expected(plant, messages)
    assert want_alerts >= len(plant.devices)
    assert len(want_keys) >= 4 * len(plant.devices)

    svc = _service(migrated_db, tmp_path / "spool")
    try:
        post_messages(svc.url, plant.gateway_token, messages)
        wait_for(lambda: set(db_transitions(migrated_db)[0]) >= want_keys, "every transition written")
        # The same messages again (a gateway's retry): dropped as duplicates, nothing new.
        post_messages(svc.url, plant.gateway_token, messages)
    finally:
        svc.stop()
    events, alerts = db_transitions(migrated_db)
    assert sorted(events) == sorted(want_keys)
    assert len(alerts) == len(set(alerts)) == want_alerts

    # Restart from the checkpoint: nothing to catch up, nothing written.
    svc = _service(migrated_db, tmp_path / "spool")
    svc.stop()
    assert db_transitions(migrated_db) == (events, alerts)

    # Restart with no checkpoint at all: the stage re-evaluates the last hour of stored readings; every transition
    # it derives again is found by key and skipped.
    with psycopg.connect(migrated_db) as conn:
        conn.execute("DELETE FROM engine_checkpoint")
    svc = _service(migrated_db, tmp_path / "spool")
    svc.stop()
    assert sorted(db_transitions(migrated_db)[0]) == sorted(events)
    assert sorted(db_transitions(migrated_db)[1]) == sorted(alerts)


def test_readings_the_engine_never_saw_are_evaluated_on_start(migrated_db: str, tmp_path: Path) -> None:
    """Readings committed but never evaluated (as when killed between the two) are evaluated on the next start,
    from the checkpoint's position: nothing lost, nothing twice."""
    plant = make_plant(migrated_db)
    messages = scenario(plant.devices)
    want_keys, want_alerts = expected(plant, messages)
    quarter = len(messages) // 4
    svc = _service(migrated_db, tmp_path / "spool", checkpoint_every_s=3600.0)
    try:
        post_messages(svc.url, plant.gateway_token, messages[:quarter])
    finally:
        svc.stop()  # saves the checkpoint
    # Ingest alone: these readings become durable, the engine never sees them.
    bare = start_service(migrated_db, tmp_path / "spool")
    try:
        post_messages(bare.url, plant.gateway_token, messages[quarter : 2 * quarter])
    finally:
        bare.stop()
    svc = _service(migrated_db, tmp_path / "spool")
    try:
        post_messages(svc.url, plant.gateway_token, messages[2 * quarter :])
        wait_for(lambda: set(db_transitions(migrated_db)[0]) >= want_keys, "every transition written")
    finally:
        svc.stop()
    events, alerts = db_transitions(migrated_db)
    assert sorted(events) == sorted(want_keys)
    assert len(alerts) == len(set(alerts)) == want_alerts


def test_devices_the_engine_cannot_judge_are_refused_once_not_fatal(migrated_db: str) -> None:
    """A pipe monitor registered without the operating pressure its rules need: its readings pass by, logged once."""
    from sentinel.batch import ReadingBatch
    from sentinel.registry.entries import DeviceEntry, RegistryFile, SiteEntry
    from sentinel.registry.repository import upsert_registry

    with psycopg.connect(migrated_db) as conn:
        upsert_registry(
            conn,
            RegistryFile([SiteEntry("r-s", "s", "town-r", "gas")], [], [DeviceEntry("r-p", "r-s", "gas_pipe_monitor")]),
        )
        (device_id,) = conn.execute("SELECT device_id FROM devices WHERE device = 'r-p'").fetchone() or (0,)
        (metric_id,) = conn.execute("SELECT metric_id FROM metrics WHERE metric = 'pipe_pressure_mpa'").fetchone() or (
            0,
        )
    stage = EngineRunner(migrated_db, write_transitions=AlertWriter())
    with psycopg.connect(migrated_db) as conn:
        stage.load(conn)
        batch = ReadingBatch(
            ts_us=np.array([1_764_300_000_000_000], dtype=np.int64),
            device_id=np.array([device_id], dtype=np.int32),
            metric_id=np.array([metric_id], dtype=np.int16),
            value=np.array([9.0]),
            seq=np.array([1], dtype=np.int64),
        )
        assert stage.evaluate(conn, batch, 1) == 0
        assert stage.evaluate(conn, batch, 2) == 0
    assert device_id in stage.refused


def test_catch_up_follows_commit_order_not_arrival(migrated_db: str) -> None:
    """A batch committed after the checkpoint but received before the batch the checkpoint covers (an MQTT batch
    that was still filling while an HTTP batch committed, or a spool replay) is caught up after a crash: the stage's
    position is the commit stamp, not the arrival time."""
    from sentinel.app import prepare_catalogue
    from sentinel.batch import IngestBatch, MessageKeys, ReadingBatch
    from sentinel.store.ingest_writer import IngestWriter

    plant = make_plant(migrated_db)
    prepare_catalogue(migrated_db)
    device = plant.devices[0]
    with psycopg.connect(migrated_db) as conn:
        (device_id,) = conn.execute("SELECT device_id FROM devices WHERE device = %s", (device,)).fetchone() or (0,)
        (metric_id,) = conn.execute("SELECT metric_id FROM metrics WHERE metric = 'ch4_pct_lel'").fetchone() or (0,)
    t0 = 1_764_300_000_000_000

    def batch(received_at_us: int, ts_us: int, seq: int, value: float) -> IngestBatch:
        readings = ReadingBatch(
            np.array([ts_us], dtype=np.int64),
            np.array([device_id], dtype=np.int32),
            np.array([metric_id], dtype=np.int16),
            np.array([value]),
            np.array([seq], dtype=np.int64),
        )
        keys = MessageKeys(np.array([device_id], np.int32), np.array([seq], np.int64), np.array([ts_us], np.int64))
        return IngestBatch(received_at_us, readings, keys)

    writer = IngestWriter(migrated_db, "native")
    try:
        now_us = time.time_ns() // 1000
        newer = writer.write(batch(now_us + 10_000_000, t0, 1, 2.0))  # received later, committed first
        stage = EngineRunner(migrated_db, write_transitions=AlertWriter())
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            stage.load(conn)
            stage.evaluate(conn, newer.batch.readings, newer.batch.received_at_us, newer.commit_seq)
            stage.save_checkpoint(conn)
        older = writer.write(batch(now_us + 5_000_000, t0 + 1_000_000, 2, 60.0))  # received earlier, committed after
        assert older.commit_seq > newer.commit_seq
    finally:
        writer.close()
    # The stage "crashed" before it evaluated the second batch: a new one catches up from the checkpoint.
    restarted = EngineRunner(migrated_db, write_transitions=AlertWriter())
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        restarted.load(conn)
        assert (restarted.position_us, restarted.position_seq) == (now_us + 10_000_000, newer.commit_seq)
        assert restarted.catch_up(conn) >= 1  # 60 %LEL raises gas.ch4_lel
    events, _ = db_transitions(migrated_db)
    assert any(key.startswith(f"gas.ch4_lel|{device}|{t0 + 1_000_000}|none|") for key in events), events
