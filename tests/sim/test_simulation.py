"""The simulation itself: deterministic from the seed however it is stepped, realistic delivery, scenario errors
that name the file and field, recordings that round-trip, and the report as a table and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from sentinel.errors import ScenarioError
from sentinel.registry.entries import load_registry_file
from sentinel.resources import data_dir
from sentinel.sim.publish import Recorder, paced_steps, read_recording
from sentinel.sim.report import score
from sentinel.sim.scenario import load_scenario, parse_scenario
from sentinel.sim.simulation import Simulation
from sentinel.sim.tap import run_offline

START_US = 1_795_000_000_000_000
SMALL = {
    "name": "small",
    "seed": 9,
    "duration_s": 1800,
    "sites": {"gas": 2, "dust": 1, "casting": 1, "charging": 1},
    "delivery": {"duplicate_rate": 0.05, "late_rate": 0.05, "dropout_rate": 0.02},
    "faults": [{"kind": "bag_burst", "device": "dust-001-c1", "at_s": 600}],
}


def _bytes(sim: Simulation, step: float) -> list[tuple[int, str, bytes]]:
    out, t = [], 0.0
    while t < sim.scenario.duration_s:
        t = min(t + step, sim.scenario.duration_s)
        out += [(m.arrival_us, m.topic, m.payload) for m in sim.advance(t)]
    return out + [(m.arrival_us, m.topic, m.payload) for m in sim.drain()]


@settings(max_examples=8, deadline=None)
@given(step=st.floats(min_value=0.5, max_value=900))
def test_same_seed_gives_the_same_stream_however_it_is_stepped(step: float) -> None:
    scenario = parse_scenario(SMALL)
    assert _bytes(Simulation(scenario, START_US), step) == _bytes(Simulation(scenario, START_US), 60.0)


def test_another_seed_gives_another_stream() -> None:
    a = _bytes(Simulation(parse_scenario(SMALL), START_US), 60)
    b = _bytes(Simulation(parse_scenario({**SMALL, "seed": 10}), START_US), 60)
    assert a != b


def test_devices_deliver_like_real_ones_duplicates_late_out_of_order_and_gaps() -> None:
    sim = Simulation(parse_scenario(SMALL), START_US)
    msgs = sim.all_messages()
    arrivals = [m.arrival_us for m in msgs]
    assert arrivals == sorted(arrivals)
    keys = [(m.device, m.seq) for m in msgs]
    assert len(keys) > len(set(keys)), "no duplicates"
    per_device: dict[str, list[int]] = {}
    for m in msgs:
        per_device.setdefault(m.device, []).append(m.ts_us)
    assert any(ts != sorted(ts) for ts in per_device.values()), "nothing arrived out of order"
    assert sim.dropped > 0
    seqs = {d: sorted({s for dd, s in keys if dd == d}) for d in per_device}
    assert any(s != list(range(s[0], s[0] + len(s))) for s in seqs.values()), "no sequence gaps from drop-outs"


def test_registry_has_every_sector_coordinates_in_jiangsu_and_the_attrs_rules_need(tmp_path: Path) -> None:
    sim = Simulation(load_scenario(Path(__file__).parents[2] / "simulators" / "demo-county.yaml"), START_US)
    reg = sim.registry
    assert {s.sector for s in reg.sites} == {"gas", "dust", "casting", "charging"}
    assert len(reg.devices) >= 300
    assert all(30.7 < (s.lat or 0) < 35.2 and 116.3 < (s.lon or 0) < 121.9 for s in reg.sites)
    assert len({s.township for s in reg.sites}) >= 5
    # the engine accepts every device (it checks required attributes) and the registry file format round-trips
    run_offline(reg, [])
    import msgspec
    import yaml

    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(msgspec.to_builtins(reg), allow_unicode=True), encoding="utf-8")
    assert load_registry_file(path) == reg


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"name": "x", "faults": [{"kind": "meteor", "at_s": 1}]}, "$.faults[0].kind: unknown fault 'meteor'"),
        ({"name": "x", "duration_s": -1}, "duration_s"),
        ({"name": "x", "intervals_s": {"toaster": 5}}, "$.intervals_s: unknown device class 'toaster'"),
        ({"name": "x", "faults": [{"kind": "bag_burst", "at_s": 99999}]}, "$.faults[0].at_s"),
    ],
)
def test_bad_scenarios_name_the_file_and_the_field(tmp_path: Path, data: dict[str, object], where: str) -> None:
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value)
    assert where in str(err.value)


def test_a_fault_on_the_wrong_kind_of_device_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"casting-001-m1.*is a casting_machine"):
        Simulation(parse_scenario({**SMALL, "faults": [{"kind": "bag_burst", "device": "casting-001-m1", "at_s": 5}]}))


def test_a_recording_round_trips_and_scores_like_the_live_stream(tmp_path: Path) -> None:
    sim = Simulation(parse_scenario(SMALL), START_US)
    path = tmp_path / "r.jsonl.gz"
    rec = Recorder(path, sim)
    sent = [m.payload for step in rec.tee(paced_steps(sim, 0)) for m in step]
    rec.close()
    back = read_recording(path)
    assert [p for _, _, p in back.messages] == sent
    assert back.registry == sim.registry
    assert [f.rule for f in back.faults] == [f.rule for f in sim.faults]
    live = run_offline(sim.registry, sent, end_us=sim.end_us)
    again = run_offline(back.registry, [p for _, _, p in back.messages], end_us=sim.end_us)
    assert live == again
    assert any(t.rule_id == "dust.dc_dp_sudden_drop" for t in live)


def test_a_recording_that_is_not_one_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"format": "something else"}\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"x\.jsonl:1: not a Sentinel recording"):
        read_recording(path)


def test_report_prints_as_a_table_and_writes_json(tmp_path: Path) -> None:
    sim = Simulation(parse_scenario(SMALL), START_US)
    transitions = run_offline(sim.registry, [m.payload for m in sim.all_messages()], end_us=sim.end_us)
    report = score("small", sim.start_us, 1800, list(sim.entries), sim.faults, transitions, "offline engine")
    console = Console(record=True, width=200)
    report.print(console)
    text = console.export_text()
    for expected in ("bag_burst", "dust.dc_dp_sudden_drop", "per 100 device-days"):
        assert expected in text
    out = tmp_path / "report.json"
    report.write_json(out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["faults"][0]["kind"] == "bag_burst"
    assert data["faults"][0]["detected"] is True
    assert data["faults"][0]["time_to_detect_s"] <= data["faults"][0]["deadline_s"]
    assert {"false_alerts", "fault_free_device_days", "false_alerts_per_device_day"} <= set(data)


def test_a_missed_fault_is_reported_as_missed() -> None:
    sim = Simulation(parse_scenario(SMALL), START_US)
    report = score("small", sim.start_us, 1800, list(sim.entries), sim.faults, [], "nothing")
    assert not report.faults[0].detected
    assert not report.hazardous_all_ok
    assert report.false_alerts == 0


def test_a_bundled_scenario_is_found_by_name_and_a_wrong_name_lists_them() -> None:
    assert load_scenario(Path("every-fault")).name == load_scenario(data_dir("simulators") / "every-fault.yaml").name
    with pytest.raises(ScenarioError, match=r"nope: cannot read.*bundled scenarios: .*every-fault"):
        load_scenario(Path("nope"))
