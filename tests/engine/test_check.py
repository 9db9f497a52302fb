"""`sentinel rules check`: every problem with file and line, exit code 2; the shipped packs are valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentinel.engine.commands import rules_app
from sentinel.engine.loader import check_rules, default_rules_dir, load_rules
from sentinel.errors import RulePackError

THREE_ERRORS = """\
pack: broken
device_classes:
  probe: {metrics: [port_temp_c]}
rules:
  - id: broken.temp
    name: {zh: 温度, en: temperature}
    kind: threshold
    device_classes: [probe]
    metric: port_temp_c
    direction: above
    source: T
    levles:
      - {grade: blue, at: 60, source: T}
  - id: broken.power
    name: {zh: 功率, en: power}
    kind: threshold
    device_classes: [probe]
    metric: port_temp_c
    source: T
    levels:
      - {grade: blue, at: sixty, source: T}
  - id: broken.metric
    name: {zh: 指标, en: metric}
    kind: threshold
    device_classes: [probe]
    metric: port_tempc
    source: T
    levels:
      - {grade: blue, at: 60, source: T}
"""


def test_shipped_packs_are_valid() -> None:
    result = CliRunner().invoke(rules_app, ["check", str(default_rules_dir())])
    assert result.exit_code == 0, result.output
    rules = load_rules()
    assert {r.pack for r in rules.rules} == {"gas", "dust", "casting", "charging"}
    kinds = {r.kind for r in rules.rules}
    assert kinds == {
        "threshold", "deviation", "rate", "stuck", "count", "staleness", "composite", "interlock", "anomaly"
    }  # fmt: skip


def test_typo_wrong_type_and_unknown_metric_give_three_lines_and_exit_2(tmp_path: Path) -> None:
    pack = tmp_path / "broken.yaml"
    pack.write_text(THREE_ERRORS, encoding="utf-8")
    result = CliRunner().invoke(rules_app, ["check", str(pack)])
    assert result.exit_code == 2
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines == [
        f"{pack}:12: unknown key 'levles' in a rule (did you mean 'levels'?)",
        f"{pack}:21: at must be a number, got a string 'sixty'",
        f"{pack}:26: unknown metric 'port_tempc' (did you mean 'port_temp_c'?)",
    ]


def test_engine_refuses_an_invalid_pack(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(THREE_ERRORS, encoding="utf-8")
    with pytest.raises(RulePackError) as caught:
        load_rules(tmp_path)
    assert len(caught.value.problems) == 3


def test_duplicate_rule_id_names_its_line(tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text(THREE_ERRORS.replace("id: broken.power", "id: broken.temp"), encoding="utf-8")
    _, problems = check_rules(pack)
    assert any("duplicate rule id 'broken.temp'" in p.what and p.where == f"{pack}:14" for p in problems)
    assert all(p.where.startswith(f"{pack}:") for p in problems)


def test_missing_source_mark_and_bad_grade(tmp_path: Path) -> None:
    text = THREE_ERRORS.replace("levles", "levels").replace("at: sixty", "at: 60").replace("port_tempc", "port_temp_c")
    text = text.replace(
        "{grade: blue, at: 60, source: T}\n  - id: broken.metric", "{grade: crimson, at: 60}\n  - id: broken.metric"
    )
    text = text.replace(
        "    source: T\n    levels:\n      - {grade: blue, at: 60, source: T}\n",
        "    source: maybe\n    levels:\n      - {grade: blue, at: 60, source: T}\n",
        1,
    )
    pack = tmp_path / "p.yaml"
    pack.write_text(text, encoding="utf-8")
    _, problems = check_rules(pack)
    whats = [str(p) for p in problems]
    assert any("source must start with the mark S" in w for w in whats), whats
    assert any("grade 'crimson' is not one of" in w for w in whats), whats
    assert any("missing the key 'source'" in w for w in whats), whats
    assert len(problems) == 3, whats


def test_params_lists_every_override_key_with_its_mark() -> None:
    result = CliRunner().invoke(rules_app, ["params", "--pack", "casting"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "casting.cw_interlock.within_s" in result.output
    assert "casting.cw_pressure_low.blue.clear" in result.output
    typical = CliRunner().invoke(rules_app, ["params", "--typical"], env={"COLUMNS": "250"})
    assert "charging.charge_too_long.blue" not in typical.output  # 8 h is sourced (Beijing group standard)
    assert "charging.port_temp.yellow" in typical.output


def test_list_shows_rules_and_refuses_an_unknown_pack() -> None:
    result = CliRunner().invoke(rules_app, ["list", "--pack", "dust"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "dust.spark_detected" in result.output
    assert "gas.ch4_lel" not in result.output
    assert CliRunner().invoke(rules_app, ["list", "--pack", "nope"]).exit_code == 2


def test_alert_class_key_is_checked(tmp_path: Path) -> None:
    text = THREE_ERRORS.replace("levles", "levels").replace("at: sixty", "at: 60").replace("port_tempc", "port_temp_c")
    text = text.replace("    kind: threshold\n", "    kind: threshold\n    alert: warnin\n", 1)
    pack = tmp_path / "p.yaml"
    pack.write_text(text, encoding="utf-8")
    _, problems = check_rules(pack)
    assert [str(p) for p in problems] == [
        f"{pack}:8: alert 'warnin' is not one of alarm, warning (did you mean 'warning'?)"
    ]
    pack.write_text(text.replace("alert: warnin", "alert: warning"), encoding="utf-8")
    rules = load_rules(pack)
    assert [r.alert_class for r in rules.rules] == ["warning", "alarm", "alarm"]
