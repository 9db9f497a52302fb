"""`sentinel registry load FILE`: YAML and CSV upserts are idempotent; bad entries are named with file and path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

YAML = """
sites:
  - {id: gas-xz-01, name: 新庄燃气调压站, township: 新庄镇, sector: gas, lat: 31.61, lon: 120.21}
gateways:
  - {id: gw-xz-01, secret: "a-long-random-token-0123", sites: [gas-xz-01]}
devices:
  - {id: gas-xz-01-p1, site: gas-xz-01, class: gas_pipe_monitor, expected_interval_s: 30,
     attrs: {operating_pressure_mpa: 0.3}}
"""


def _load(db: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env["SENTINEL_DATABASE_URL"] = db
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "registry", "load", str(path)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_yaml_then_csv_upsert_idempotently(migrated_db: str, tmp_path: Path) -> None:
    (tmp_path / "county.yaml").write_text(YAML, encoding="utf-8")
    (tmp_path / "devices.csv").write_text(
        "id,site,class,expected_interval_s,attr:operating_pressure_mpa\n"
        "gas-xz-01-p1,gas-xz-01,gas_pipe_monitor,20,0.35\n"
        "gas-xz-01-p2,gas-xz-01,gas_pipe_monitor,20,0.25\n",
        encoding="utf-8",
    )
    for _ in range(2):
        assert _load(migrated_db, tmp_path / "county.yaml").returncode == 0
    result = _load(migrated_db, tmp_path / "devices.csv")
    assert result.returncode == 0, result.stderr
    with psycopg.connect(migrated_db) as conn:
        rows = conn.execute("SELECT device, expected_interval_s, attrs FROM devices ORDER BY device").fetchall()
        keys = conn.execute("SELECT name, role FROM api_keys").fetchall()
    assert rows == [
        ("gas-xz-01-p1", 20.0, {"operating_pressure_mpa": 0.35}),
        ("gas-xz-01-p2", 20.0, {"operating_pressure_mpa": 0.25}),
    ]
    assert keys == [("gateway:gw-xz-01", "gateway")]


def test_unknown_class_and_bad_type_are_named(migrated_db: str, tmp_path: Path) -> None:
    bad_class = tmp_path / "bad-class.yaml"
    bad_class.write_text(YAML.replace("class: gas_pipe_monitor", "class: gas_pipe_monitr"), encoding="utf-8")
    result = _load(migrated_db, bad_class)
    assert result.returncode == 2
    assert "$.devices[0].class" in result.stderr
    assert "gas_pipe_monitr" in result.stderr
    bad_type = tmp_path / "bad-type.yaml"
    bad_type.write_text(YAML.replace("lat: 31.61", "lat: north"), encoding="utf-8")
    result = _load(migrated_db, bad_type)
    assert result.returncode == 2
    assert "bad-type.yaml" in result.stderr
    assert "$.sites[0].lat" in result.stderr
