"""End-to-end ingest throughput: MQTT and HTTP into PostgreSQL, beside a naive baseline in the same run.

    python bench/ingest.py [--messages 100000] [--baseline-messages 5000]

Each row is measured from the first message sent to the last one durable in PostgreSQL (message_log counted), with
the sender in its own process and a private Mosquitto on a free port:

  sentinel mqtt   the ingest pipeline (gmqtt collector, msgspec decode, admission, binary COPY, ack after commit);
                  publisher: sentinel.testing.publisher, QoS 1, 8 readings per message, 1,000 devices.
                  "live": publisher, broker, Sentinel and PostgreSQL share the two cores; "drain": the messages
                  were queued in Sentinel's persistent session while it was away, so only broker, Sentinel and
                  PostgreSQL run (the ingest path's own rate, measured from the collector's start, connect
                  included)
  sentinel http   POST /v1/telemetry with NDJSON bodies of 500 messages, 4 concurrent connections
  naive mqtt      the common way: paho-mqtt subscriber at QoS 1, json.loads, one INSERT per reading, autocommit
                  (fewer messages: it is slow)

Uses SENTINEL_TEST_DATABASE_URL's server when set, else an embedded PostgreSQL. Needs mosquitto.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from sentinel.app import prepare_catalogue
from sentinel.collect.mqtt import CollectorConfig
from sentinel.registry.repository import upsert_registry
from sentinel.store import migrations
from sentinel.testing.broker import PrivateMosquitto
from sentinel.testing.postgres import PostgresForTests, postgres_for_tests
from sentinel.testing.publisher import fleet_messages, fleet_registry
from sentinel.testing.service import running_service

DEVICES = 1000
METRICS = 8


class Logged:
    """Counts message_log rows over one connection: a new connection per poll would fork a PostgreSQL backend
    50 times a second on the same two cores the measured path runs on."""

    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo, autocommit=True)

    def __call__(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM message_log").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()


def _spool() -> Path:
    """A spool folder inside a private data folder: the test kit takes the spool's parent as the data folder, which
    holds the one-owner lock, so a bare mkdtemp() would make /tmp the data folder and collide with other runs."""
    return Path(tempfile.mkdtemp(prefix="sentinel-bench-")) / "spool"


def logged(conninfo: str) -> Logged:
    return Logged(conninfo)


def readings(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


def wait_count(count: Callable[[], int], target: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while count() < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count()} of {target} after {timeout} s")
        time.sleep(0.05)
    return time.perf_counter()


def fresh_db(pg: PostgresForTests, prefix: str) -> str:
    conninfo = pg.create_database("sentinel_bench")
    migrations.upgrade(conninfo)
    prepare_catalogue(conninfo)
    with psycopg.connect(conninfo) as conn:
        upsert_registry(conn, fleet_registry(prefix, DEVICES))
    return conninfo


def bench_sentinel_mqtt(pg: PostgresForTests, broker: PrivateMosquitto, n: int) -> tuple[float, int]:
    prefix = "bm"
    db = fresh_db(pg, prefix)
    config = CollectorConfig(host=broker.host, port=broker.port, client_id="bench-sentinel")
    with running_service(db, _spool(), mqtt=config) as svc:
        assert svc.sentinel.collector is not None
        svc.call(svc.sentinel.collector.connected.wait)
        started = time.perf_counter()
        publisher = subprocess.Popen(
            [sys.executable, "-m", "sentinel.testing.publisher", "--port", str(broker.port), "--prefix", prefix,
             "--devices", str(DEVICES), "--messages", str(n), "--metrics", str(METRICS)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        count = logged(db)
        while publisher.poll() is None and count() < n:
            time.sleep(0.05)
        if publisher.returncode not in (None, 0):
            raise RuntimeError(f"the publisher failed (exit {publisher.returncode})")
        done = wait_count(count, n)
        count.close()
        publisher.communicate(timeout=60)
    stored = readings(db)
    pg.drop_database(db)
    return done - started, stored


def bench_sentinel_mqtt_drain(pg: PostgresForTests, broker: PrivateMosquitto, n: int) -> tuple[float, int]:
    """The ingest path alone: N messages queued in Sentinel's persistent session while it was away, then drained
    (the publisher no longer competes for the two cores)."""
    prefix = "bd"
    db = fresh_db(pg, prefix)
    config = CollectorConfig(host=broker.host, port=broker.port, client_id="bench-drain")
    with running_service(db, _spool(), mqtt=config) as svc:  # creates the persistent session
        assert svc.sentinel.collector is not None
        svc.call(svc.sentinel.collector.connected.wait)
    subprocess.run(
        [sys.executable, "-m", "sentinel.testing.publisher", "--port", str(broker.port), "--prefix", prefix,
         "--devices", str(DEVICES), "--messages", str(n), "--metrics", str(METRICS)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    count = logged(db)
    with running_service(db, _spool(), mqtt=config):
        started = time.perf_counter()  # pipeline started; the collector is connecting
        done = wait_count(count, n)
    count.close()
    stored = readings(db)
    pg.drop_database(db)
    return done - started, stored


def _http_client(url: str, token: str, bodies: list[bytes], workers: int) -> None:
    chunks = [bodies[i::workers] for i in range(workers)]

    def send(part: list[bytes]) -> None:
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            for body in part:
                while True:
                    response = http.post("/v1/telemetry", content=body)
                    if response.status_code != 503:
                        break
                    time.sleep(float(response.headers.get("retry-after", "1")) / 10)
                if response.status_code != 202:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

    threads = [threading.Thread(target=send, args=(part,)) for part in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def bench_sentinel_http(pg: PostgresForTests, n: int) -> tuple[float, int]:
    prefix = "bh"
    registry = fleet_registry(prefix, DEVICES)
    db = fresh_db(pg, prefix)
    token = "bench-gateway-token-0123456789"
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO gateways (gateway_id) VALUES ('bench-gw')")
        conn.execute("INSERT INTO gateway_sites SELECT 'bench-gw', site_id FROM sites")
    from sentinel.registry.entries import GatewayEntry, RegistryFile

    with psycopg.connect(db) as conn:
        gateway = GatewayEntry("bench-gw", [s.id for s in registry.sites], secret=token)
        upsert_registry(conn, RegistryFile([], [gateway], []))
    lines = [payload for _topic, payload in fleet_messages(prefix, DEVICES, n, METRICS)]
    bodies = [b"\n".join(lines[i : i + 500]) + b"\n" for i in range(0, n, 500)]
    with running_service(db, _spool()) as svc:
        body_file = Path(tempfile.mkdtemp()) / "bodies.json"
        body_file.write_text(json.dumps([b.decode() for b in bodies]))
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--http-client", svc.url, token, str(body_file)], check=True, timeout=600
        )
        count = logged(db)
        done = wait_count(count, n)
        count.close()
    stored = readings(db)
    pg.drop_database(db)
    return done - started, stored


def bench_naive_mqtt(pg: PostgresForTests, broker: PrivateMosquitto, n: int) -> tuple[float, int]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    prefix = "bn"
    db = fresh_db(pg, prefix)
    conn = psycopg.connect(db, autocommit=True)
    devices = {r[1]: r[0] for r in conn.execute("SELECT device_id, device FROM devices")}
    metric_ids = {r[1]: r[0] for r in conn.execute("SELECT metric_id, metric FROM metrics")}
    received = threading.Event()
    count = [0]

    def on_message(_client: object, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        for metric, value in body["metrics"].items():
            conn.execute(
                "INSERT INTO readings (ts, device_id, metric_id, value) VALUES (%s, %s, %s, %s)",
                (body["ts"], devices[body["device"]], metric_ids[metric], float(value)),
            )
        conn.execute(
            "INSERT INTO message_log VALUES (%s, %s, %s, now())", (devices[body["device"]], body["seq"], body["ts"])
        )
        count[0] += 1
        if count[0] >= n:
            received.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", clean_session=False)
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe("sentinel/v1/#", qos=1)
    client.loop_start()
    time.sleep(1.0)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sentinel.testing.publisher", "--port", str(broker.port), "--prefix", prefix,
         "--devices", str(DEVICES), "--messages", str(n), "--metrics", str(METRICS)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    if not received.wait(600):
        raise TimeoutError(f"the naive subscriber stored {count[0]} of {n} messages")
    done = time.perf_counter()
    client.loop_stop()
    client.disconnect()
    conn.close()
    stored = readings(db)
    pg.drop_database(db)
    return done - started, stored


def main() -> None:
    parser = argparse.ArgumentParser(description="end-to-end ingest throughput")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--baseline-messages", type=int, default=5_000)
    parser.add_argument("--http-client", nargs=3, metavar=("URL", "TOKEN", "BODIES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.http_client:
        url, token, path = args.http_client
        bodies = [b.encode() for b in json.loads(Path(path).read_text())]
        _http_client(url, token, bodies, workers=4)
        return
    rows: list[tuple[str, int, float, int]] = []
    with postgres_for_tests(os.environ.get("SENTINEL_TEST_DATABASE_URL")) as pg, PrivateMosquitto() as broker:
        seconds, stored = bench_sentinel_mqtt(pg, broker, args.messages)
        rows.append(("sentinel mqtt (live publisher)", args.messages, seconds, stored))
        seconds, stored = bench_sentinel_mqtt_drain(pg, broker, args.messages)
        rows.append(("sentinel mqtt (drain backlog)", args.messages, seconds, stored))
        seconds, stored = bench_sentinel_http(pg, args.messages)
        rows.append(("sentinel http", args.messages, seconds, stored))
        seconds, stored = bench_naive_mqtt(pg, broker, args.baseline_messages)
        rows.append(("naive mqtt (INSERT per reading)", args.baseline_messages, seconds, stored))
    baseline = rows[-1][3] / rows[-1][2]
    print(f"{'path':<34}{'messages':>10}{'readings':>10}{'seconds':>9}{'msg/s':>10}{'readings/s':>12}{'vs naive':>10}")
    for name, n, seconds, stored in rows:
        rate = stored / seconds
        print(f"{name:<34}{n:>10}{stored:>10}{seconds:>9.2f}{n / seconds:>10.0f}{rate:>12.0f}{rate / baseline:>9.1f}x")


if __name__ == "__main__":
    main()
