"""`sentinel rules check` through the real console entry point: every error with file and line, exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sentinel.resources import data_dir


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "rules", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_shipped_packs_are_valid() -> None:
    result = _check(data_dir("rules"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_typo_wrong_type_and_unknown_metric_are_three_errors_with_lines(tmp_path: Path) -> None:
    text = (data_dir("rules") / "gas.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    typo = next(i for i, line in enumerate(lines) if line.strip().startswith("direction:"))
    lines[typo] = lines[typo].replace("direction:", "direcion:")
    metric = next(i for i, line in enumerate(lines) if line.strip() == "metric: ch4_pct_lel")
    lines[metric] = lines[metric].replace("ch4_pct_lel", "ch4_pct_lell")
    rate = next(i for i, line in enumerate(lines) if "per_s:" in line)
    lines[rate] = re.sub(r"per_s: *[0-9.]+", "per_s: sixty", lines[rate])
    (tmp_path / "gas.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _check(tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stdout.splitlines() if re.match(r".*gas\.yaml:\d+: ", line)]
    assert len(errors) == 3, result.stdout
    reported = sorted(int(line.split(":")[1]) for line in errors)
    assert reported == sorted([typo + 1, metric + 1, rate + 1])
