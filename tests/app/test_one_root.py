"""The composition root: serve's and the demo's configurations are one code path with different overrides; a slow
API request does not stall MQTT ingest or other requests."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import psycopg

from sentinel.app import Sentinel
from sentinel.collect.mqtt import CollectorConfig
from sentinel.demo import demo_sentinel
from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import create_api_key
from sentinel.settings import Settings
from sentinel.store.database import Database
from sentinel.testing.broker import PrivateMosquitto
from sentinel.testing.service import running_service
from sentinel.testing.waiting import wait_until
from sentinel.threaded import SentinelThread
from tests.app.conftest import publish_readings, stored_messages


def _serve_settings(db: str, broker: PrivateMosquitto, data_dir: Path) -> Settings:
    return Settings(database_url=db, mqtt_url=broker.url, data_dir=data_dir, http_port=0)


def _run(sentinel: Sentinel, db: str, broker: PrivateMosquitto, registry: RegistryFile, first: int) -> list[str]:
    """Start, ingest five readings over MQTT, check /readyz; the parts that ran."""
    service = SentinelThread(sentinel).start()
    try:
        assert sentinel.collector is not None
        service.call(sentinel.collector.connected.wait)
        assert publish_readings(broker, registry, first, 5) == 5
        wait_until(lambda: set(range(first, first + 5)) <= stored_messages(db, registry.devices[0].id), "stored")
        assert httpx.get(f"{service.url}/readyz").status_code == 200
        return sentinel.running()
    finally:
        service.stop()


def test_demo_and_serve_configurations_run_the_same_parts(
    ingest_db: str, registry: RegistryFile, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = _serve_settings(ingest_db, mosquitto, tmp_path)
    serve_parts = _run(Sentinel.from_settings(settings), ingest_db, mosquitto, registry, 1)
    with Database.open(settings.model_copy(update={"mqtt_url": None})) as db:
        demo = demo_sentinel(settings.model_copy(update={"mqtt_url": None}), db, mosquitto.url)
        demo_parts = _run(demo, ingest_db, mosquitto, registry, 100)
    assert serve_parts == demo_parts
    assert serve_parts == [
        "engine-runner",
        "ingest-sink",
        "registry-refresh",
        "mqtt-collector",
        "notifier",
        "alert-hazard-upkeep",
        "http-api",
    ]


def test_a_request_held_in_a_slow_query_stalls_neither_ingest_nor_other_requests(
    ingest_db: str, registry: RegistryFile, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    """PUT /v1/registry waits on a lock a test connection holds on ``sites`` (at least 3 s, until the facts below
    are seen); meanwhile MQTT readings are stored and other requests answer, and only then does the PUT finish."""
    with psycopg.connect(ingest_db) as conn:
        admin = create_api_key(conn, "slow-query-admin", "admin")
    body = {"sites": [{"id": registry.sites[0].id, "name": "renamed", "township": "town-0", "sector": "gas"}]}
    events: list[str] = []
    with running_service(ingest_db, tmp_path / "spool", mqtt=_serve_settings_mqtt(mosquitto)) as svc:
        assert svc.sentinel.collector is not None
        svc.call(svc.sentinel.collector.connected.wait)
        auth = {"Authorization": f"Bearer {admin}"}
        with psycopg.connect(ingest_db) as locker:
            locker.execute("LOCK TABLE sites IN ACCESS EXCLUSIVE MODE")
            held = threading.Event()

            def slow_put() -> None:
                held.set()
                answer = httpx.put(f"{svc.url}/v1/registry", json=body, headers=auth, timeout=60)
                events.append(f"put {answer.status_code}")

            put = threading.Thread(target=slow_put)
            put.start()
            held.wait()
            wait_until(lambda: _waiting_on_lock(ingest_db), "the PUT's upsert waiting on the lock")
            assert publish_readings(mosquitto, registry, 1, 20) == 20
            wait_until(lambda: set(range(1, 21)) <= stored_messages(ingest_db, registry.devices[0].id), "stored")
            events.append("mqtt stored")
            events.append(f"readyz {httpx.get(f'{svc.url}/readyz', timeout=30).status_code}")
            events.append(f"metrics {httpx.get(f'{svc.url}/metrics', timeout=30).status_code}")
            threading.Event().wait(3.0)  # hold the query for the 3 s the issue names; nothing is timed
            assert put.is_alive(), "the slow request must still be waiting"
            locker.rollback()
        put.join(60)
    assert events == ["mqtt stored", "readyz 200", "metrics 200", "put 200"]


def _serve_settings_mqtt(broker: PrivateMosquitto) -> CollectorConfig:
    return CollectorConfig(host=broker.host, port=broker.port, client_id="slow-query-test", batch_max_wait_s=0.05)


def _waiting_on_lock(db: str) -> bool:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%%sites%%'"
        ).fetchone()
    return bool(row and row[0])
