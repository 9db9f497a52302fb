"""Fixtures for the MQTT side: a unique site per test (the private Mosquitto comes from tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def site() -> str:
    return f"site-{uuid.uuid4().hex[:8]}"
