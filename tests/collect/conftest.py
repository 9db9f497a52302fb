"""Fixtures for the MQTT side: a private Mosquitto per test and a unique site per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from sentinel.testing.broker import BrokerUnavailable, PrivateMosquitto


@pytest.fixture
def mosquitto() -> Iterator[PrivateMosquitto]:
    try:
        with PrivateMosquitto() as broker:
            yield broker
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def site() -> str:
    return f"site-{uuid.uuid4().hex[:8]}"
