"""bench/skab.py's command line: scoring --holdout files, refusing unusable ones, and leave-one-out's selection.

The runs use --quick (small grids) and a two-file development set, so they take seconds; the benchmark's own
figures come from running the script. Tests that read SKAB files skip when ../shared/data/skab is absent.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import pytest

# One worker runs this module under pytest-xdist, so the module-scoped benchmark run is built once.
pytestmark = pytest.mark.xdist_group("bench-skab_cli")

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "skab.py"
# ../shared/data beside the checkout (or beside the folder of worktrees the checkout is in).
SKAB = next(
    (p / "shared" / "data" / "skab" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared").is_dir()),
    ROOT.parent / "shared" / "data" / "skab",
)
needs_skab = pytest.mark.skipif(not SKAB.is_dir(), reason=f"SKAB data not found at {SKAB}")
DETECTORS = ("defaults (no tuning)", "pca", "iforest", "robust_z", "pca, any feature subset")
FIGURES = r"F1 (\d\.\d{3})  FAR +([\d.]+) %  MAR +([\d.]+) %"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """bench/skab.py as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("skab_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look up their module while the class is built
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def sections(output: str) -> dict[str, str]:
    """The text of each detector's '== kind: ...' section, keyed by kind."""
    found = re.findall(r"^== (.+?): \d+ settings x \d+ files.*?\n(.*?)(?=^== |^Published)", output, re.M | re.S)
    return dict(found)


@needs_skab
def test_holdout_files_are_scored_with_the_setting_tuned_on_all_development_files(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Development: the same recording twice, so that "tuned on file 0" and "tuned on all development files" pick
    # the same setting (doubled counts, the same rates). A holdout copy of that recording must then score exactly
    # what the A-tuned setting scores on file 0: a check on the rows, labels and setting the holdout path uses.
    development = tmp_path / "dev" / "valve1"
    development.mkdir(parents=True)
    for name in ("0.csv", "1.csv"):
        shutil.copy(SKAB / "valve1" / "3.csv", development / name)
    repeat, unseen = tmp_path / "repeat", tmp_path / "unseen"
    repeat.mkdir()
    unseen.mkdir()
    shutil.copy(SKAB / "valve1" / "3.csv", repeat / "3.csv")
    shutil.copy(SKAB / "valve1" / "13.csv", unseen / "13.csv")

    code = bench.main(["--data", str(tmp_path / "dev"), "--holdout", str(repeat), str(unseen), "--quick"])
    output = capsys.readouterr().out

    assert code == 0
    found = sections(output)
    assert list(found) == list(DETECTORS)
    for kind, text in found.items():
        seen = re.search(r"on 0-0 \(seen\) : " + FIGURES, text)
        on_repeat = re.search(rf"1 files in {re.escape(str(repeat))}: " + FIGURES, text)
        on_unseen = re.search(rf"1 files in {re.escape(str(unseen))}: " + FIGURES, text)
        overall = re.search(r"2 holdout files  : " + FIGURES, text)
        assert seen, f"{kind}: no 'on 0-0 (seen)' line in\n{text}"
        assert on_repeat, f"{kind}: no line for the repeat folder in\n{text}"
        assert on_unseen, f"{kind}: no line for the unseen folder in\n{text}"
        assert overall, f"{kind}: no line for all holdout files in\n{text}"
        assert on_repeat.groups() == seen.groups(), kind
    summary = output[output.index("Target: ") :]
    for kind in DETECTORS:
        assert re.search(rf"^  {re.escape(kind)} +LOO, 2 files +{FIGURES}  -> (yes|no: .+)$", summary, re.M), kind
    assert len(re.findall(rf"^ +holdout, 2 files +{FIGURES}  -> (yes|no: .+)$", summary, re.M)) == len(DETECTORS)
    assert "NOT UNSEEN: 1 of the 2 holdout files repeat development files" in summary


@needs_skab
def test_unusable_holdout_files_are_refused_before_any_tuning(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pl.read_csv(SKAB / "valve1" / "0.csv", separator=";")
    holdout = tmp_path / "valve9"
    holdout.mkdir()
    frame.drop("Pressure").write_csv(holdout / "0.csv", separator=";")
    frame.drop("anomaly", "changepoint").write_csv(holdout / "1.csv", separator=";")
    frame.write_csv(holdout / "2.csv", separator=";")  # a good one: refused files are named, not this

    code = bench.main(["--holdout", str(holdout), "--quick"])
    captured = capsys.readouterr()

    assert code == 2
    assert captured.out == ""  # nothing was tuned or printed before the refusal
    problems = captured.err.splitlines()
    assert problems[0] == "skab: 2 problem(s) with the input files:"
    assert problems[1].startswith("  valve9/0.csv: no sensor column 'Pressure'")
    assert problems[2].startswith("  valve9/1.csv: no 'anomaly' label column")
    assert len(problems) == 3


def test_leave_one_out_chooses_without_the_held_out_file(bench: ModuleType) -> None:
    table = np.random.default_rng(7).integers(0, 300, size=(30, 6, 4)).astype(np.int64)
    _, chosen = bench.leave_one_out(table)
    for held_out, best in enumerate(chosen):
        # On the held-out file, make its chosen setting hopeless and every other setting perfect: a choice that
        # looked at that file would move.
        tampered = table.copy()
        tampered[:, held_out] = [500, 0, 0, 500]
        tampered[best, held_out] = [0, 500, 500, 0]
        counts, again = bench.leave_one_out(tampered)
        assert again[held_out] == best
        assert list(counts) == list(sum(tampered[c, j] for j, c in enumerate(again)))
