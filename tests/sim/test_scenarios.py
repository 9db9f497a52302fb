"""Scenario suite: every fault type sent end to end through a real Mosquitto, the ingest pipeline, PostgreSQL, the
engine stage and the alert lifecycle, accelerated (device time compressed; staleness judged on device time). The
report scores the alerts the lifecycle wrote (``alert_events``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from sentinel.engine import Transition
from sentinel.resources import data_dir
from sentinel.sim.faults import FAULT_KINDS
from sentinel.sim.publish import Recorder, paced_steps, read_recording, recording_steps
from sentinel.sim.report import DetectionReport, score
from sentinel.sim.scenario import load_scenario, parse_scenario
from sentinel.sim.simulation import Simulation
from sentinel.store import migrations
from sentinel.testing.broker import PrivateMosquitto
from sentinel.testing.postgres import PostgresForTests

from .conftest import run_through_sentinel

# One worker runs this module under pytest-xdist, so the quiet county's run (module-scoped fixture) is built once.
pytestmark = pytest.mark.xdist_group("sim-scenarios")

START_US = 1_795_000_000_000_000  # fixed, in the past, so replays of a recording compare exactly


def _report(sim: Simulation, transitions: list[Transition]) -> DetectionReport:
    return score(
        sim.scenario.name,
        sim.start_us,
        sim.scenario.duration_s,
        list(sim.entries),
        sim.faults,
        transitions,
        "alert_events written by the alert lifecycle",
    )


def test_every_fault_type_is_detected_at_its_grade_before_its_deadline(
    migrated_db: str, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    sim = Simulation(load_scenario(data_dir("simulators") / "every-fault.yaml"), start_us=START_US)
    assert {f.kind for f in sim.faults} == set(FAULT_KINDS)  # the scenario covers every kind
    # Paced (150x device time) so that staleness, ticked on the stage's clock, is judged every few device seconds.
    run = run_through_sentinel(
        migrated_db,
        sim.registry,
        paced_steps(sim, 150, step_s=2),
        mosquitto,
        tmp_path / "spool",
        expect_messages=sim.generated,
    )
    report = _report(sim, run.transitions)
    report.print(Console(width=160))  # shown with -s, and on failure
    failed = [f for f in report.faults if not f.ok]
    assert report.hazardous_all_ok, f"hazardous faults missed, wrong grade or late: {failed}"
    assert not failed, f"non-hazardous faults missed or late: {failed}"


@pytest.fixture(scope="module")
def quiet_report(pg: PostgresForTests, tmp_path_factory: pytest.TempPathFactory) -> DetectionReport:
    from sentinel.testing.broker import BrokerUnavailable

    scenario = load_scenario(data_dir("simulators") / "quiet-county.yaml")
    sim = Simulation(scenario, start_us=START_US)
    try:
        broker = PrivateMosquitto()
        broker.start()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        with pg.database() as conninfo:
            migrations.upgrade(conninfo)
            run = run_through_sentinel(
                conninfo,
                sim.registry,
                paced_steps(sim, 0),
                broker,
                tmp_path_factory.mktemp("spool"),
                expect_messages=sim.generated,
            )
    finally:
        broker.close()
    assert run.stored_messages == sim.generated  # the whole two days went through, not a part of them
    return _report(sim, run.transitions)


@pytest.mark.slow
def test_fault_free_county_raises_at_most_one_false_alert_per_100_device_days(quiet_report: DetectionReport) -> None:
    assert quiet_report.fault_free_device_days >= 100
    assert quiet_report.false_per_device_day <= 0.01, quiet_report.false_alert_examples


def test_replaying_one_recording_twice_gives_the_same_alerts(
    pg: PostgresForTests, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    scenario = parse_scenario(
        {
            "name": "replay",
            "seed": 3,
            "duration_s": 3600,
            "sites": {"gas": 2, "dust": 2, "casting": 1, "charging": 1},
            "faults": [
                {"kind": "gas_leak", "site": "gas-001", "at_s": 300},
                {"kind": "bag_burst", "device": "dust-001-c1", "at_s": 600},
                {"kind": "cooling_water_loss", "device": "casting-001-m2", "at_s": 900},
                {"kind": "charger_thermal_runaway", "device": "charging-001-port02", "at_s": 1200},
            ],
        }
    )
    sim = Simulation(scenario, start_us=START_US)
    path = tmp_path / "run.jsonl.gz"
    recorder = Recorder(path, sim)
    for _ in recorder.tee(paced_steps(sim, 0)):
        pass
    recorder.close()
    rec = read_recording(path)
    alerts = []
    for attempt in range(2):
        with pg.database() as conninfo:
            migrations.upgrade(conninfo)
            run = run_through_sentinel(
                conninfo,
                rec.registry,
                recording_steps(rec, 0),
                mosquitto,
                tmp_path / f"spool{attempt}",
                expect_messages=sim.generated,
            )
        alerts.append(sorted((t.rule_id, t.subject, t.from_grade, t.to_grade, t.ts_us) for t in run.transitions))
    assert alerts[0], "the faults raised nothing"
    assert {a[0] for a in alerts[0]} >= {
        "gas.leak_suspected",
        "dust.dc_dp_sudden_drop",
        "casting.cw_interlock",
        "charging.thermal_runaway_precursor",
    }
    assert alerts[0] == alerts[1]
