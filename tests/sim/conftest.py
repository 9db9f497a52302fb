"""Fixtures for the simulator tests: a private Mosquitto, and a Sentinel (pipeline + engine stage + API) that a
simulation is sent through, judged on device time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from sentinel.alerts.stage import EngineStage
from sentinel.collect.mqtt import CollectorConfig
from sentinel.engine import Transition
from sentinel.pipeline import IngestPipeline
from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import upsert_registry
from sentinel.sim.publish import send_mqtt
from sentinel.sim.simulation import Outgoing
from sentinel.sim.tap import SimClock, stored_transitions
from sentinel.testing.broker import PrivateMosquitto
from sentinel.testing.service import ServiceThread


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
    """Register the devices, start the pipeline with the engine stage on a device-time clock, publish every step
    through the broker, wait until the stage has evaluated everything stored, and read the alerts back."""
    with psycopg.connect(conninfo) as conn:
        upsert_registry(conn, registry)
    clock = SimClock()
    stage = EngineStage(conninfo, clock=clock, tick_s=0.02)
    clock.stage = stage
    mqtt = CollectorConfig.from_url(broker.url, client_id=f"sim-test-{uuid.uuid4().hex[:8]}")
    pipeline = IngestPipeline(
        conninfo, "native", spool_dir, mqtt=mqtt, stage=stage, on_durable=clock.wrap(stage.on_durable)
    )
    service = ServiceThread(pipeline).start()
    try:
        acknowledged = send_mqtt(broker.host, broker.port, steps)
        give_up = time.monotonic() + 180
        while not (clock.messages >= expect_messages and clock.caught_up):
            if time.monotonic() > give_up:
                raise AssertionError(
                    f"Sentinel stored {clock.messages} of {expect_messages} messages "
                    f"(stage caught up: {clock.caught_up}) before giving up"
                )
            time.sleep(0.1)
        time.sleep(0.1)  # one more staleness tick on the final clock
    finally:
        service.stop()
    return E2ERun(acknowledged, clock.messages, stored_transitions(conninfo))
