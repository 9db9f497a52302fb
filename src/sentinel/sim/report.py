"""The detection report: how well the alerts of a run match the faults the scenario injected.

Per fault: detected or not (the expected rule raised on the fault's subject after the fault began), the highest
grade reached by the deadline and whether it is the expected one, and the time to detect (device time from the
fault's start to the first transition reaching the expected grade). False alerts: raises on subjects no fault was
acting on (a fault covers its devices and its site from its start until :data:`SETTLE_S` after its end), per
device-day of fault-free device time. Printed as a rich table; written as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sentinel.engine import Transition
from sentinel.engine.catalog import GRADE_INDEX
from sentinel.sim.faults import ActiveFault

SETTLE_S = 900.0


@dataclass(frozen=True)
class FaultOutcome:
    index: int
    kind: str
    site: str
    subjects: list[str]
    rule: str
    expected_grade: str
    hazardous: bool
    start_s: float
    deadline_s: float
    detected: bool
    grade_reached: str
    grade_ok: bool
    time_to_detect_s: float | None
    in_time: bool

    @property
    def ok(self) -> bool:
        return self.detected and self.grade_ok and self.in_time


@dataclass
class DetectionReport:
    scenario: str
    source: str  # where the alerts came from
    devices: int
    duration_s: float
    faults: list[FaultOutcome]
    false_alerts: int
    fault_free_device_days: float
    false_alert_examples: list[dict[str, object]] = field(default_factory=list)

    @property
    def false_per_device_day(self) -> float:
        return self.false_alerts / self.fault_free_device_days if self.fault_free_device_days > 0 else 0.0

    @property
    def hazardous_all_ok(self) -> bool:
        return all(f.ok for f in self.faults if f.hazardous)

    def to_json(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "source": self.source,
            "devices": self.devices,
            "duration_s": self.duration_s,
            "faults": [asdict(f) | {"ok": f.ok} for f in self.faults],
            "false_alerts": self.false_alerts,
            "fault_free_device_days": round(self.fault_free_device_days, 3),
            "false_alerts_per_device_day": round(self.false_per_device_day, 5),
            "false_alert_examples": self.false_alert_examples,
            "hazardous_all_ok": self.hazardous_all_ok,
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    def table(self) -> Table:
        table = Table(title=f"Detection report: {self.scenario} ({self.source})")
        for name in (
            "#",
            "fault",
            "subject",
            "expected alert",
            "grade",
            "reached",
            "detected",
            "time to detect",
            "deadline",
        ):
            table.add_column(name, justify="right" if name in ("#", "time to detect", "deadline") else "left")
        for f in self.faults:
            ttd = "—" if f.time_to_detect_s is None else f"{f.time_to_detect_s:.0f} s"
            mark = "[green]yes[/]" if f.ok else ("[yellow]late/grade[/]" if f.detected else "[red]no[/]")
            table.add_row(
                str(f.index),
                f.kind + ("" if f.hazardous else " (non-hazard)"),
                ",".join(f.subjects)[:40],
                f.rule,
                f.expected_grade,
                f.grade_reached,
                mark,
                ttd,
                f"{f.deadline_s:.0f} s",
            )
        table.caption = (
            f"{self.false_alerts} false alert(s) over {self.fault_free_device_days:.1f} fault-free device-days "
            f"= {self.false_per_device_day * 100:.2f} per 100 device-days · {self.devices} devices, "
            f"{self.duration_s / 3600:.1f} h device time"
        )
        return table

    def print(self, console: Console | None = None) -> None:
        (console or Console()).print(self.table())


def score(
    scenario: str,
    start_us: int,
    duration_s: float,
    device_ids: Sequence[str],
    faults: Sequence[ActiveFault],
    transitions: Sequence[Transition],
    source: str,
) -> DetectionReport:
    by_subject: dict[tuple[str, str], list[Transition]] = {}
    for t in transitions:
        by_subject.setdefault((t.rule_id, t.subject), []).append(t)
    outcomes = []
    for f in faults:
        t0 = start_us + round(f.start_s * 1e6)
        deadline_us = t0 + round(f.deadline_s * 1e6)
        window_end = start_us + round((f.end_s + SETTLE_S) * 1e6)
        moves = sorted(
            (
                t
                for s in f.subjects
                for t in by_subject.get((f.rule, s), [])
                if t0 - 1_000_000 <= t.ts_us <= window_end and GRADE_INDEX[t.to_grade] > GRADE_INDEX[t.from_grade]
            ),
            key=lambda t: t.ts_us,
        )
        want = GRADE_INDEX[f.grade]
        reaching = [t for t in moves if GRADE_INDEX[t.to_grade] >= want]
        by_deadline = [t for t in moves if t.ts_us <= deadline_us]
        reached = max((GRADE_INDEX[t.to_grade] for t in by_deadline), default=0)
        reached_name = next(k for k, v in GRADE_INDEX.items() if v == reached)
        ttd = (reaching[0].ts_us - t0) / 1e6 if reaching else None
        outcomes.append(
            FaultOutcome(
                f.index,
                f.kind,
                f.site,
                list(f.subjects),
                f.rule,
                f.grade,
                f.hazardous,
                f.start_s,
                f.deadline_s,
                detected=bool(moves),
                grade_reached=reached_name,
                grade_ok=reached == want,
                time_to_detect_s=None if ttd is None else max(ttd, 0.0),
                in_time=ttd is not None and ttd <= f.deadline_s,
            )
        )
    false: list[Transition] = []
    for t in transitions:
        if t.move != "raise":
            continue
        rel = (t.ts_us - start_us) / 1e6
        if not any(
            (t.subject in f.devices or t.subject == f.site or t.device_id in f.devices)
            and f.start_s - 1 <= rel <= f.end_s + SETTLE_S
            for f in faults
        ):
            false.append(t)
    covered = sum(len(f.devices) * (min(f.end_s + SETTLE_S, duration_s) - f.start_s) for f in faults)
    device_days = max(0.0, len(device_ids) * duration_s - covered) / 86400.0
    examples = [
        {
            "rule": t.rule_id,
            "subject": t.subject,
            "grade": t.to_grade,
            "at_s": round((t.ts_us - start_us) / 1e6, 1),
            "value": t.value,
        }
        for t in false[:20]
    ]
    return DetectionReport(scenario, source, len(device_ids), duration_s, outcomes, len(false), device_days, examples)
