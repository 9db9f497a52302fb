"""The private Mosquitto helper: starts, restarts on the same port, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from sentinel.testing.broker import BrokerUnavailable, PrivateMosquitto, publish


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_starts_restarts_and_cleans_up(mosquitto: PrivateMosquitto) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    assert accepts(mosquitto.port)
    assert asyncio.run(publish(mosquitto.host, mosquitto.port, [("sentinel/v1/s/d/status", b"online")])) == 1
    mosquitto.restart()
    assert accepts(mosquitto.port)
    directory = mosquitto.config_path.parent
    assert (directory / "data" / "mosquitto.db").exists()  # persistence written on the clean stop
    mosquitto.close()
    assert not mosquitto.running
    assert not accepts(mosquitto.port)
    assert not directory.exists()


def test_a_missing_binary_is_a_clear_skip_reason(tmp_path: Path) -> None:
    with pytest.raises(BrokerUnavailable, match="no such executable"):
        PrivateMosquitto(binary=str(tmp_path / "mosquitto"))


def test_publish_keeps_within_the_brokers_receive_maximum() -> None:
    """Mosquitto's default max_inflight_messages (20) is announced as Receive Maximum; a wider publish window made
    gmqtt run out of packet ids ("All ids has already used"), e.g. `sentinel simulate` against a stock broker."""
    broker = PrivateMosquitto(extra_config="max_inflight_messages 20\n").start()
    try:
        messages = [(f"sentinel-test/window/{i % 7}", b"x" * 64) for i in range(3000)]
        assert asyncio.run(publish(broker.host, broker.port, messages, window=500)) == 3000
    finally:
        broker.close()
