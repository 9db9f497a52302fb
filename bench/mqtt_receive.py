"""MQTT receive throughput at QoS 1: Sentinel's collector against gmqtt baselines, same broker, same run.

A separate publisher process sends N QoS 1 messages of about 200 bytes (1,000 devices) to a private Mosquitto
(the configuration ``sentinel broker config`` generates). Each receiver uses a fresh persistent session and a
trivial sink that returns at once, and is measured two ways:

  live    subscriber connected, publisher running: received msg/s from the first message to the last one handed
          over and acknowledged (broker, publisher and subscriber share the machine's cores)
  drain   N messages queued in the subscriber's persistent session while it was away, then it connects: msg/s
          from CONNECT to the last acknowledgement (the receive path alone; the publisher is not running)

Receivers:
  sentinel     MqttCollector: batches of 5,000, PUBACKs of a batch written at once after the sink returns
  gmqtt-task   gmqtt's public deferred-ack API: optimistic_acknowledgement=False and a coroutine handler per
               message that awaits its batch's hand-over (gmqtt sends the PUBACK when that task ends): the same
               guarantee, one task per message
  gmqtt-early  gmqtt acknowledging on receipt (optimistic_acknowledgement=True), plain handler: no durability
               guarantee at all, shown as a ceiling for the client library

Run: ``python bench/mqtt_receive.py [N]`` (default 100,000; about a minute on 2 cores). Needs mosquitto.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

from sentinel.collect.mqtt import CollectorConfig, MqttCollector, MqttMessage
from sentinel.testing.broker import BrokerUnavailable, PrivateMosquitto

DEVICES = 1000
BATCH = 5000


def payload(i: int) -> bytes:
    body = {"device": f"dev-{i % DEVICES:04d}", "ts": 1_760_000_000_000 + i, "seq": i // DEVICES,
            "m": {"ch4_pct_lel": 1.25, "o2_pct": 20.9, "temp_c": 23.5, "pressure_kpa": 101.3}}  # fmt: skip
    raw = json.dumps(body, separators=(",", ":")).encode()
    return raw + b" " * max(0, 200 - len(raw))


def topic(site: str, i: int) -> str:
    return f"sentinel/v1/{site}/dev-{i % DEVICES:04d}/telemetry"


def run_publisher(port: int, site: str, n: int) -> float:
    """Publish from a separate process; return its own msg/s."""
    out = subprocess.run(
        [sys.executable, __file__, "--publish", str(port), site, str(n)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + _varint(len(body)) + body


def _publish_main(port: int, site: str, n: int, window: int = 5000) -> None:
    """A lean MQTT 5 publisher on a plain socket (a Python client library would be the bottleneck): packets are
    built before the clock starts, sent pipelined with at most ``window`` unacknowledged, PUBACKs counted.
    Prints its own msg/s."""
    client_id = f"bench-pub-{site}".encode()
    connect = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + struct.pack("!H", len(client_id)) + client_id
    packets = []
    for i in range(n):
        name = topic(site, i).encode()
        body = struct.pack("!H", len(name)) + name + struct.pack("!H", i % 60000 + 1) + b"\x00"
        packets.append(_packet(0x32, body + payload(i)))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(_packet(0x10, connect))
        connack = sock.recv(1024)
        if connack[:1] != b"\x20" or connack[3] != 0:
            raise SystemExit(f"CONNACK refused: {connack!r}")
        started = time.perf_counter()
        sent = acked = 0
        pending = b""
        while acked < n:
            room = min(n - sent, window - (sent - acked))
            if room > 0:
                sock.sendall(b"".join(packets[sent : sent + room]))
                sent += room
            pending += sock.recv(1 << 18)
            pos = 0
            while pos + 2 <= len(pending):  # PUBACKs (0x40) are the only packets the broker sends us here
                end = pos + 2 + pending[pos + 1]
                if end > len(pending):
                    break
                if pending[pos] != 0x40 or pending[pos + 1] & 0x80:
                    raise SystemExit(f"unexpected packet from the broker: {pending[pos : pos + 8]!r}")
                if end - pos > 4 and pending[pos + 4] >= 0x80:
                    raise SystemExit(f"PUBLISH refused with reason {pending[pos + 4]:#x}")
                acked += 1
                pos = end
            pending = pending[pos:]
        elapsed = time.perf_counter() - started
        sock.sendall(b"\xe0\x00")
    print(n / elapsed)


# --- receivers: each runs until `n` messages were handed over and acknowledged ---------------------------------

# Each returns wall-clock times (connect started, first message received, last one acknowledged).
Times = tuple[float, float, float]
Receiver = Callable[[int, str, int, asyncio.Event], Coroutine[Any, Any, Times]]


async def sentinel_receiver(port: int, client_id: str, n: int, ready: asyncio.Event) -> Times:
    first: list[float] = []

    async def sink(batch: list[MqttMessage]) -> None:
        if not first:
            first.append(batch[0].received_at)

    collector = MqttCollector(CollectorConfig(port=port, client_id=client_id, batch_max_messages=BATCH), sink)
    started = time.time()
    task = asyncio.create_task(collector.run())
    await collector.connected.wait()
    ready.set()
    while collector.stats.acknowledged < n:
        await asyncio.sleep(0.002)
    done = time.time()
    await collector.stop()
    await task
    return started, first[0] if first else done, done


async def gmqtt_receiver(port: int, client_id: str, n: int, ready: asyncio.Event, *, early: bool) -> Times:
    state = {"count": 0, "first": 0.0}
    finished = asyncio.Event()
    if n == 0:
        finished.set()
    pending: list[asyncio.Future[None]] = []

    async def hand_over_loop() -> None:  # the batch "sink": releases a batch's handlers at once
        while not finished.is_set():
            await asyncio.sleep(0.01)
            batch, pending[:] = list(pending), []
            for future in batch:
                future.set_result(None)

    async def deferred(_client: object, _topic: str, _payload: bytes, _qos: int, _props: object) -> int:
        if not state["first"]:
            state["first"] = time.time()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending.append(future)
        await future
        state["count"] += 1
        if state["count"] >= n:
            finished.set()
        return 0  # gmqtt sends PUBACK with this reason code when the task ends

    def at_once(_client: object, _topic: str, _payload: bytes, _qos: int, _props: object) -> None:
        if not state["first"]:
            state["first"] = time.time()
        state["count"] += 1
        if state["count"] >= n:
            finished.set()

    client = gmqtt.Client(client_id, clean_session=False, optimistic_acknowledgement=early,
                          session_expiry_interval=3600, receive_maximum=2 * BATCH)  # fmt: skip
    client.on_message = at_once if early else deferred
    started = time.time()
    await client.connect("127.0.0.1", port, version=MQTTv50)
    client.subscribe(gmqtt.Subscription("sentinel/v1/+/+/telemetry", qos=1))
    ready.set()
    helper = None if early else asyncio.create_task(hand_over_loop())
    await finished.wait()
    done = time.time()
    await asyncio.sleep(0.05)  # let the last PUBACKs go out before DISCONNECT
    await client.disconnect()
    if helper is not None:
        await helper
    return started, state["first"] or done, done


RECEIVERS: dict[str, Receiver] = {
    "sentinel": sentinel_receiver,
    "gmqtt-task": lambda p, c, n, r: gmqtt_receiver(p, c, n, r, early=False),
    "gmqtt-early": lambda p, c, n, r: gmqtt_receiver(p, c, n, r, early=True),
}


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) of another process, from /proc; 0 where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure_live(receiver: Receiver, broker: PrivateMosquitto, name: str, n: int) -> tuple[float, ...]:
    """(msg/s, receiver msg per CPU-second, broker cores busy, publisher msg/s) while the publisher runs."""
    ready = asyncio.Event()
    task = asyncio.create_task(receiver(broker.port, f"bench-live-{name}", n, ready))
    await ready.wait()
    cpu, broker_cpu = time.process_time(), cpu_seconds(broker.pid)
    pub_rate = await asyncio.to_thread(run_publisher, broker.port, f"live-{name}", n)
    _started, first, done = await task
    broker_cores = (cpu_seconds(broker.pid) - broker_cpu) / (done - first)
    return n / (done - first), n / (time.process_time() - cpu), broker_cores, pub_rate


async def measure_drain(receiver: Receiver, port: int, name: str, n: int) -> float:
    ready = asyncio.Event()
    await receiver(port, f"bench-drain-{name}", 0, ready)  # creates the session and its subscription
    await asyncio.to_thread(run_publisher, port, f"drain-{name}", n)
    started, _first, done = await receiver(port, f"bench-drain-{name}", n, asyncio.Event())
    return n / (done - started)


def main(n: int) -> None:
    try:
        broker = PrivateMosquitto(batch_max_messages=BATCH)
    except BrokerUnavailable as exc:
        print(f"skipped: {exc}")
        return
    rows: list[tuple[str, float, float, float, float, float]] = []
    with broker:
        for name, receiver in RECEIVERS.items():
            live, per_cpu, broker_cores, pub = asyncio.run(measure_live(receiver, broker, name, n))
            drain = asyncio.run(measure_drain(receiver, broker.port, name, n))
            rows.append((name, live, per_cpu, broker_cores, drain, pub))
    base = {row[0]: row for row in rows}["gmqtt-task"]
    print(f"\nMQTT QoS 1 receive, {n:,} messages of ~200 bytes, {DEVICES} devices, batch {BATCH}, Mosquitto "
          f"on loopback, {os.cpu_count()} cores\n")  # fmt: skip
    head = ("receiver", "live msg/s", "x task", "msg/CPU-s", "x task", "broker cores", "drain msg/s", "x task",
            "publisher msg/s")  # fmt: skip
    print("{:<12} {:>11} {:>7} {:>10} {:>7} {:>12} {:>12} {:>7} {:>16}".format(*head))
    for name, live, per_cpu, broker_cores, drain, pub in rows:
        print(f"{name:<12} {live:>11,.0f} {live / base[1]:>7.2f} {per_cpu:>10,.0f} {per_cpu / base[2]:>7.2f} "
              f"{broker_cores:>12.2f} {drain:>12,.0f} {drain / base[4]:>7.2f} {pub:>16,.0f}")  # fmt: skip
    print(
        "\nlive: first to last message while the publisher runs; msg/CPU-s: messages per CPU-second of the "
        "receiving process during the live run (its one-core ceiling); broker cores: Mosquitto's CPU-seconds per "
        "second of that run (near 1.0 = the broker is the limit); drain: a queued backlog, CONNECT to last ack"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        _publish_main(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
