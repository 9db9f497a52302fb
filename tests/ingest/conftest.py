"""Ingest fixtures: a migrated database with a small registry, a private Mosquitto, a unique prefix per test."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import upsert_registry
from sentinel.testing.registry import small_registry


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def registry(prefix: str) -> RegistryFile:
    return small_registry(prefix, sites=2, devices_per_site=3)


@pytest.fixture
def ingest_db(migrated_db: str, registry: RegistryFile) -> str:
    with psycopg.connect(migrated_db) as conn:
        upsert_registry(conn, registry)
    return migrated_db
