"""The engine's output: alert transitions, columnar, plus a small record form for people and tests.

One transition says that rule ``rule`` moved its grade for ``subject`` from ``from_grade`` to ``to_grade`` (0 none, 1
blue, 2 yellow, 3 orange, 4 red) at device time ``ts_us``, caused by the reading of ``device`` with ``value`` and
``seq``. ``subject`` is a device index for device rules and a site index for site-scope composite rules
(``Transitions.site_scope`` tells which). Its ``move`` names the grade move: raise (from 0), escalate (up), de-escalate
(down, not to 0), clear (to 0). ``ts_us`` is the reading's effective device time: its own time, except for a late
reading the engine could no longer put back in order (see :mod:`sentinel.engine.engine`). After a late reading, a batch
may hold corrections: transitions at device times before ones already emitted, and a transition whose ``from_grade`` is
the grade last emitted rather than the one the re-evaluation passed through.

Transitions from :meth:`Engine.tick` (staleness) carry ``ts_us = now_us``, ``seq = -1`` and ``value`` = the
seconds since the device's newest reading. Within a batch the order is by (ts_us, rule, subject), ties in
evaluation order.

``alert_class`` says what the lifecycle stores the alert as (:attr:`Rule.alert_class`, column ``alerts.alert_class``):
``warning`` for anomaly rules (early warnings, 预警, from a model; their ``value`` is the normalised score) and rules
marked ``alert: warning``, ``comm`` for staleness, ``alarm`` (报警) for every other rule. ``Transitions.alert_classes``
gives it per rule index, :meth:`Transitions.warning` per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sentinel.engine.catalog import GRADE_NAMES, grade_move


@dataclass(frozen=True)
class Transition:
    """One alert transition with names instead of indices."""

    rule_id: str
    subject: str
    device_id: str
    from_grade: str
    to_grade: str
    move: str  # raise, escalate, de-escalate or clear (catalog.grade_move)
    ts_us: int
    value: float
    seq: int
    alert_class: str = "alarm"


@dataclass
class Transitions:
    """Columnar transitions of one batch or tick; ``names`` resolves indices to ids."""

    rule: npt.NDArray[np.int32]
    subject: npt.NDArray[np.int32]
    device: npt.NDArray[np.int32]
    from_grade: npt.NDArray[np.int8]
    to_grade: npt.NDArray[np.int8]
    ts_us: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    seq: npt.NDArray[np.int64]
    rule_ids: tuple[str, ...]
    site_scope: tuple[bool, ...]
    device_ids: list[str]
    site_ids: list[str]
    alert_classes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rule)

    def class_of(self, r: int) -> str:
        return self.alert_classes[r] if self.alert_classes else "alarm"

    def warning(self) -> npt.NDArray[np.bool_]:
        """Per row: is it an early warning (an anomaly rule's transition) rather than an alarm?"""
        warns = np.array([self.class_of(r) == "warning" for r in range(len(self.rule_ids))], dtype=np.bool_)
        return warns[self.rule] if len(warns) else np.zeros(len(self), dtype=np.bool_)

    def records(self) -> list[Transition]:
        out = []
        for i in range(len(self)):
            r, s = int(self.rule[i]), int(self.subject[i])
            f, t = int(self.from_grade[i]), int(self.to_grade[i])
            subject = self.site_ids[s] if self.site_scope[r] else self.device_ids[s]
            out.append(
                Transition(
                    self.rule_ids[r],
                    subject,
                    self.device_ids[int(self.device[i])],
                    GRADE_NAMES[f],
                    GRADE_NAMES[t],
                    grade_move(f, t),
                    int(self.ts_us[i]),
                    float(self.value[i]),
                    int(self.seq[i]),
                    self.class_of(r),
                )
            )
        return out


@dataclass
class Piece:
    """Transitions of one rule, before they are merged and ordered."""

    rule: int
    subject: npt.NDArray[np.int64]
    device: npt.NDArray[np.int64]
    from_grade: npt.NDArray[np.int8]
    to_grade: npt.NDArray[np.int8]
    ts_us: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    seq: npt.NDArray[np.int64]


def merge(
    pieces: list[Piece],
    rule_ids: tuple[str, ...],
    site_scope: tuple[bool, ...],
    devices: list[str],
    sites: list[str],
    alert_classes: tuple[str, ...] = (),
) -> Transitions:
    """Concatenate per-rule pieces and order them by (ts_us, rule, subject), keeping evaluation order in ties."""
    pieces = [p for p in pieces if len(p.subject)]
    if pieces:
        rule = np.concatenate([np.full(len(p.subject), p.rule, dtype=np.int32) for p in pieces])
        subject = np.concatenate([p.subject for p in pieces]).astype(np.int32)
        ts = np.concatenate([p.ts_us for p in pieces])
        order = np.lexsort((subject, rule, ts))
        cols = [
            np.concatenate([getattr(p, name) for p in pieces])[order]
            for name in ("device", "from_grade", "to_grade", "value", "seq")
        ]
        return Transitions(
            rule[order],
            subject[order],
            cols[0].astype(np.int32),
            cols[1],
            cols[2],
            ts[order],
            cols[3],
            cols[4],
            rule_ids,
            site_scope,
            devices,
            sites,
            alert_classes,
        )
    i32, i8 = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int8)
    return Transitions(
        i32,
        i32,
        i32,
        i8,
        i8,
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
        np.zeros(0, dtype=np.int64),
        rule_ids,
        site_scope,
        devices,
        sites,
        alert_classes,
    )
