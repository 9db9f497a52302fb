"""Nothing acknowledged is lost: 100k QoS 1 messages become exactly 800k rows; a kill -9 mid-stream and a 30 s
database outage lose nothing and store nothing twice. Real Mosquitto, real PostgreSQL, publisher in its own
process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from sentinel.collect.mqtt import CollectorConfig
from sentinel.registry.repository import upsert_registry
from sentinel.store import migrations
from sentinel.store.embedded import EmbeddedPostgres
from sentinel.testing.broker import PrivateMosquitto
from sentinel.testing.publisher import fleet_registry
from sentinel.testing.service import running_service
from sentinel.testing.waiting import wait_until

DEVICES = 1000


def start_publisher(broker: PrivateMosquitto, prefix: str, messages: int, rate: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sentinel.testing.publisher",
            "--port",
            str(broker.port),
            "--prefix",
            prefix,
            "--devices",
            str(DEVICES),
            "--messages",
            str(messages),
            "--metrics",
            "8",
            "--rate",
            str(rate),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def publisher_acked(proc: subprocess.Popen[str], timeout: float = 300) -> int:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0
    return int(json.loads(out.strip().splitlines()[-1])["acked"])


def counts(conninfo: str) -> tuple[int, int, int]:
    """(readings, distinct (device, metric, ts), messages logged)."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM readings),"
            " (SELECT count(*) FROM (SELECT DISTINCT device_id, metric_id, ts FROM readings) d),"
            " (SELECT count(*) FROM message_log)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def wait_for(conninfo: str, readings: int, timeout: float = 180) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout
    seen = counts(conninfo)
    while seen[0] < readings and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = counts(conninfo)
    time.sleep(1.0)  # anything extra (a duplicate) would arrive now
    return counts(conninfo)


@pytest.fixture
def fleet_db(migrated_db: str, prefix: str) -> str:
    with psycopg.connect(migrated_db) as conn:
        upsert_registry(conn, fleet_registry(prefix, DEVICES))
    return migrated_db


@pytest.mark.slow
def test_100k_messages_become_exactly_800k_rows(
    fleet_db: str, mosquitto: PrivateMosquitto, prefix: str, tmp_path: Path
) -> None:
    config = CollectorConfig(host=mosquitto.host, port=mosquitto.port, client_id=f"{prefix}-ingest")
    with running_service(fleet_db, tmp_path / "spool", mqtt=config) as svc:
        assert svc.sentinel.collector is not None
        svc.call(svc.sentinel.collector.connected.wait)
        acked = publisher_acked(start_publisher(mosquitto, prefix, 100_000))
        final = wait_for(fleet_db, 800_000)
    assert acked == 100_000
    assert final == (800_000, 800_000, 100_000)
    with psycopg.connect(fleet_db) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)


def _serve(db: str, broker: PrivateMosquitto, data_dir: Path, client_id: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env |= {
        "SENTINEL_DATABASE_URL": db,
        "SENTINEL_MQTT_URL": broker.url,
        "SENTINEL_DATA_DIR": str(data_dir),
        "SENTINEL_HTTP_PORT": "0",
        "SENTINEL_MQTT_CLIENT_ID": client_id,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen([sys.executable, "-m", "sentinel", "serve"], env=env, stdout=subprocess.PIPE, text=True)


def _wait_subscribed(serve: subprocess.Popen[str]) -> None:
    """Until the collector holds its subscription: serve's start lines name its URL, and its /metrics says
    sentinel_mqtt_connected 1 once the broker acknowledged the SUBSCRIBE (not merely the CONNECT)."""
    assert serve.stdout is not None
    url = ""
    for line in serve.stdout:
        if "HTTP API: " in line:
            url = line.split("HTTP API: ")[1].split()[0]
            break
    assert url, "sentinel serve exited before printing its URL"
    wait_until(lambda: "sentinel_mqtt_connected 1.0" in httpx.get(f"{url}/metrics").text, "the collector subscribed")


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_stores_every_acknowledged_message_once(
    fleet_db: str, mosquitto: PrivateMosquitto, prefix: str, tmp_path: Path
) -> None:
    messages = 60_000
    client_id = f"{prefix}-serve"
    serve = _serve(fleet_db, mosquitto, tmp_path, client_id)
    try:
        _wait_subscribed(serve)
        publisher = start_publisher(mosquitto, prefix, messages, rate=6000)
        deadline = time.monotonic() + 120
        while counts(fleet_db)[2] < messages // 4:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        killed_at = counts(fleet_db)
        serve = _serve(fleet_db, mosquitto, tmp_path, client_id)
        acked = publisher_acked(publisher)
        final = wait_for(fleet_db, acked * 8)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    assert 0 < killed_at[2] < messages
    assert acked == messages
    assert final == (messages * 8, messages * 8, messages)


@pytest.mark.slow
def test_database_away_30s_under_load_loses_nothing(
    own_postgres: tuple[EmbeddedPostgres, str], mosquitto: PrivateMosquitto, prefix: str, tmp_path: Path
) -> None:
    server, conninfo = own_postgres
    migrations.upgrade(conninfo)
    with psycopg.connect(conninfo) as conn:
        upsert_registry(conn, fleet_registry(prefix, DEVICES))
    messages, rate, outage_s = 100_000, 2000.0, 30.0
    config = CollectorConfig(host=mosquitto.host, port=mosquitto.port, client_id=f"{prefix}-ingest")
    with running_service(conninfo, tmp_path / "spool", mqtt=config) as svc:
        assert svc.sentinel.collector is not None
        svc.call(svc.sentinel.collector.connected.wait)
        publisher = start_publisher(mosquitto, prefix, messages, rate=rate)
        time.sleep(5)
        server.stop()  # pg_ctl stop -m fast: sessions terminated, then connections refused
        time.sleep(outage_s)
        spooled_during_outage = svc.sentinel.metrics.registry.get_sample_value("sentinel_ingest_spooled_batches_total")
        server.start()
        acked = publisher_acked(publisher)
        final = wait_for(conninfo, acked * 8, timeout=300)
        deadline = time.monotonic() + 60
        while svc.sentinel.sink.spooling and time.monotonic() < deadline:
            time.sleep(0.2)
        still_spooling = svc.sentinel.sink.spooling
    assert spooled_during_outage
    assert acked == messages
    assert final == (messages * 8, messages * 8, messages)
    assert not still_spooling
    assert not any((tmp_path / "spool").glob("*.spool"))
