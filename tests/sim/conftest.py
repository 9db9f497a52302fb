"""Fixtures for the simulator tests: a Sentinel (the one root, with the engine runner on a device-time clock) that
a simulation is sent through over a private Mosquitto, judged on device time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from sentinel.engine import Transition
from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import upsert_registry
from sentinel.sim.publish import send_mqtt
from sentinel.sim.simulation import Outgoing
from sentinel.sim.tap import SimClock, stored_transitions
from sentinel.testing.broker import PrivateMosquitto
from sentinel.testing.service import start_service


@dataclass
class E2ERun:
    acknowledged: int
    stored_messages: int
    transitions: list[Transition]  # read back from alert_events


def run_through_sentinel(
    conninfo: str,
    registry: RegistryFile,
    steps: Iterable[list[Outgoing]],
    broker: PrivateMosquitto,
    spool_dir: Path,
    *,
    expect_messages: int,
) -> E2ERun:
    """Register the devices, start Sentinel with the engine runner on a device-time clock, publish every step
    through the broker, wait until the runner has evaluated everything stored, and read the alerts back."""
    with psycopg.connect(conninfo) as conn:
        upsert_registry(conn, registry)
    clock = SimClock()
    service = start_service(
        conninfo,
        spool_dir,
        settings={"engine_tick_s": 0.02, "mqtt_url": broker.url, "mqtt_client_id": f"sim-test-{uuid.uuid4().hex[:8]}"},
        engine=True,
        engine_clock=clock,
        on_durable=clock.wrap,
    )
    clock.stage = service.sentinel.runner
    try:
        acknowledged = send_mqtt(broker.host, broker.port, steps)
        give_up = time.monotonic() + 180
        while not (clock.messages >= expect_messages and clock.caught_up):
            if time.monotonic() > give_up:
                raise AssertionError(
                    f"Sentinel stored {clock.messages} of {expect_messages} messages "
                    f"(runner caught up: {clock.caught_up}) before giving up"
                )
            time.sleep(0.1)
        time.sleep(0.1)  # one more staleness tick on the final clock
    finally:
        service.stop()
    return E2ERun(acknowledged, clock.messages, stored_transitions(conninfo))
