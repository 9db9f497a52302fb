"""What a newcomer meets first: `sentinel --help` imports no heavy library (it starts fast; speed itself is in
bench/, not asserted here), every command is still listed and reachable, and `rules list` never breaks a rule id."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sentinel.engine import load_rules

HEAVY = ("numpy", "polars", "sklearn", "scipy", "numba", "fastapi", "pydantic_settings", "psycopg", "uvicorn")

_PROBE = """
import json, sys
from sentinel.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy})), file=sys.stderr)
"""


def _imported(*args: str) -> tuple[str, list[str]]:
    probe = _PROBE.replace("{heavy}", repr(set(HEAVY)))
    ran = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120, check=False)
    return ran.stdout, json.loads(ran.stderr.strip().splitlines()[-1])


def test_root_help_imports_no_heavy_library_and_lists_every_command() -> None:
    out, heavy = _imported("--help")
    assert heavy == []
    for command in ("serve", "demo", "simulate", "replay", "db", "registry", "keys", "broker", "anomaly", "rules",
                    "alerts", "hazards"):  # fmt: skip
        assert f" {command} " in out, command
    assert "major-hazard register" in out  # a group's help shows without importing it


@pytest.mark.parametrize("group", ["db", "broker"])
def test_a_group_imports_only_its_own_module(group: str) -> None:
    out, heavy = _imported(group, "--help")
    assert "Usage" in out
    assert not [m for m in heavy if m.split(".")[0] in ("numpy", "sklearn", "polars", "fastapi")]


def test_an_unknown_command_names_the_choices() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "sentinel", "hazard"], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 2
    assert "No such command 'hazard'" in ran.stdout + ran.stderr


def test_rules_list_keeps_every_rule_id_on_one_line_at_150_columns() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "sentinel", "rules", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "150"},
    )
    assert ran.returncode == 0, ran.stderr
    first_cells = {line.split("│")[1].strip() for line in ran.stdout.splitlines() if line.startswith("│")}
    ids = {rule.id for rule in load_rules().rules}
    assert ids <= first_cells, sorted(ids - first_cells)[:5]
    assert max(len(line) for line in ran.stdout.splitlines()) <= 150
