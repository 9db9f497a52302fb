"""Fixtures: the dashboards and provisioning as files, and one database filled with the scenario for the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sentinel.store import migrations
from sentinel.testing.postgres import PostgresForTests
from tests.grafana import scenario

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARDS}


def load_provisioning(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((GRAFANA / "provisioning" / kind / "sentinel.yaml").read_text("utf-8"))
    return data


@pytest.fixture(scope="module")
def scenario_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def scenario_db(
    pg: PostgresForTests, tmp_path_factory: pytest.TempPathFactory, scenario_now: datetime
) -> Iterator[str]:
    """A migrated database filled with :mod:`tests.grafana.scenario` (once per module: it takes a few seconds)."""
    with pg.database("sentinel_grafana") as conninfo:
        migrations.upgrade(conninfo)
        scenario.fill(conninfo, tmp_path_factory.mktemp("spool"), scenario_now)
        yield conninfo
