"""`sentinel simulate` without a broker: with a running Sentinel it sends over HTTP (as the demo does); with
nothing to send to, --report scores in-process and says so, and without --report it says how to run it (exit 2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg

from sentinel.registry.repository import upsert_registry
from sentinel.sim.scenario import load_scenario
from sentinel.sim.simulation import Simulation
from sentinel.testing.service import running_service

SCENARIO = """name: tiny
seed: 3
duration_s: 600
county: {name: 示范县, lat: 31.62, lon: 120.28, townships: [城关镇]}
sites: {gas: 1, dust: 1}
faults:
  - {kind: gas_leak, site: gas-001, at_s: 120}
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _simulate(scenario: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SENTINEL_MQTT_URL"}
    env.update(SENTINEL_HTTP_HOST="127.0.0.1", SENTINEL_HTTP_PORT=str(port), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "simulate", str(scenario), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )


def test_without_broker_or_sentinel_report_scores_in_process_and_plain_run_says_how(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    port = _closed_port()
    reported = _simulate(scenario, port, "--report")
    assert reported.returncode == 0, reported.stderr
    assert f"no Sentinel at http://127.0.0.1:{port}: nothing is sent" in reported.stdout
    assert "generated (nothing sent)" in reported.stdout
    assert "gas_leak" in reported.stdout  # the detection report
    plain = _simulate(scenario, port)
    assert plain.returncode == 2
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1, plain.stderr
    assert "SENTINEL_MQTT_URL" in lines[0]
    assert "sentinel serve" in lines[0]


def test_without_broker_a_running_sentinel_gets_the_stream_over_http(migrated_db: str, tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    sim = Simulation(load_scenario(scenario))
    with psycopg.connect(migrated_db) as conn:
        upsert_registry(conn, sim.registry)
    with running_service(migrated_db, tmp_path / "spool") as service:
        service.call(service.sentinel.reload_registry)
        port = int(service.url.rsplit(":", 1)[1].strip("/"))
        ran = _simulate(scenario, port, "--report")
    assert ran.returncode == 0, ran.stderr
    assert f"sending over HTTP to http://127.0.0.1:{port}" in ran.stdout
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert row is not None
    assert row[0] > 0
