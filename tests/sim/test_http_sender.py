"""Simulated devices over HTTP (the demo's path without Mosquitto): NDJSON per township gateway with its token."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from sentinel.registry.repository import upsert_registry
from sentinel.sim.publish import HttpSender, paced_steps
from sentinel.sim.scenario import parse_scenario
from sentinel.sim.simulation import Simulation
from sentinel.testing.service import running_service


def test_a_simulation_sent_over_http_is_stored_whole_duplicates_dropped(migrated_db: str, tmp_path: Path) -> None:
    scenario = parse_scenario(
        {
            "name": "http",
            "seed": 4,
            "duration_s": 1200,
            "sites": {"gas": 2, "dust": 1, "casting": 1, "charging": 1},
            "delivery": {"duplicate_rate": 0.05},
        }
    )
    sim = Simulation(scenario)
    with psycopg.connect(migrated_db) as conn:
        upsert_registry(conn, sim.registry)
    with running_service(migrated_db, tmp_path / "spool") as service:
        service.call(service.sentinel.reload_registry)
        sender = HttpSender(service.url, sim.registry, {g.id: g.secret or "" for g in sim.registry.gateways})
        sent = 0
        for step in paced_steps(sim, 0):
            sender.send(step)
            sent += len(step)
        sender.close()
        give_up = time.monotonic() + 60
        while True:
            with psycopg.connect(migrated_db) as conn:
                row = conn.execute("SELECT count(*) FROM message_log").fetchone()
            if (row and row[0] >= sim.generated) or time.monotonic() > give_up:
                break
            time.sleep(0.1)
    assert sent > sim.generated  # duplicates went out too
    assert sender.accepted == sim.generated
    assert row is not None
    assert row[0] == sim.generated
