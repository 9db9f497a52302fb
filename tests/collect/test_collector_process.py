"""kill -9 of a collector process that was holding messages: the broker redelivers them to the same client id."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from hypothesis import given
from hypothesis import strategies as st

from sentinel.collect.mqtt import Backoff, CollectorConfig, MqttCollector, MqttMessage
from sentinel.testing.broker import PrivateMosquitto, publish

# A collector whose sink never returns; it prints how many messages it has read, then waits to be killed.
HOLDER = """
import asyncio, sys
from sentinel.collect.mqtt import CollectorConfig, MqttCollector

async def main(port, client_id, expected):
    async def sink(batch):
        await asyncio.Event().wait()
    collector = MqttCollector(CollectorConfig(port=port, client_id=client_id, batch_max_messages=10), sink)
    task = asyncio.create_task(collector.run())
    await collector.connected.wait()
    print("subscribed", flush=True)
    while collector.stats.received < expected:
        await asyncio.sleep(0.01)
    print("holding", collector.stats.received, collector.stats.acknowledged, flush=True)
    await task

asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
"""


def test_kill_9_with_unacknowledged_messages_in_hand(mosquitto: PrivateMosquitto, site: str) -> None:
    messages = [(f"sentinel/v1/{site}/dev-{i % 3}/telemetry", f"m{i}".encode()) for i in range(15)]
    client_id = f"kill-{site}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(mosquitto.port), client_id, str(len(messages))],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "subscribed"
        assert asyncio.run(publish(mosquitto.host, mosquitto.port, messages)) == len(messages)
        assert holder.stdout.readline().split() == ["holding", str(len(messages)), "0"]
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()

    stored: list[bytes] = []

    async def sink(batch: list[MqttMessage]) -> None:
        stored.extend(m.payload for m in batch)

    async def restart() -> None:
        collector = MqttCollector(CollectorConfig(port=mosquitto.port, client_id=client_id), sink)
        task = asyncio.create_task(collector.run())
        deadline = time.monotonic() + 20
        while collector.stats.acknowledged < len(messages) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await collector.stop()
        await task

    asyncio.run(restart())
    assert sorted(stored) == sorted(p for _, p in messages)


@given(
    initial=st.floats(0.001, 5),
    cap=st.floats(0.01, 60),
    attempts=st.integers(1, 80),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_jittered_grows_and_is_capped(initial: float, cap: float, attempts: int, seed: int) -> None:
    import random

    backoff = Backoff(initial, cap, random.Random(seed))
    for n in range(attempts):
        delay = backoff.next_delay()
        assert 0 <= delay <= min(cap, initial * 2**n)
    backoff.reset()
    assert backoff.next_delay() <= min(cap, initial)


def test_backoff_delays_are_spread_not_fixed() -> None:
    import random

    delays = {round(Backoff(1.0, 30.0, random.Random(seed)).next_delay(), 6) for seed in range(20)}
    assert len(delays) > 10  # jitter: twenty clients restarting together do not reconnect in step


def test_config_validation_names_the_field() -> None:
    import pytest

    from sentinel.errors import BrokerError

    with pytest.raises(BrokerError, match="batch_max_messages"):
        CollectorConfig(batch_max_messages=0)
    with pytest.raises(BrokerError, match="batch_max_wait_s"):
        CollectorConfig(batch_max_wait_s=0)
    assert CollectorConfig(batch_max_messages=40_000).receive_maximum == 65535
