"""Rule state in numpy arrays, and its snapshot as bytes.

Per series (device × metric, see :mod:`sentinel.engine.devices`): the last applied value, effective device time
and seq. Per device: the frontier (newest device time seen; staleness and lateness are judged from it). Per rule
instance (a device, or a site for site-scope composites): the active grade, a bit per level that is latched on,
the condition-since time of each level with a ``for_s``, and what the kind needs besides (stuck: time of the last
change; count: current window id and sum; composite: per term, how many series satisfy it).

``snapshot()`` writes every array into one ``.npz`` (no pickle) with the device and rule ids it belongs to;
``restore()`` refuses a snapshot made for other devices or rules, so a restart rebuilds exactly this state.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.engine.model import Rule
from sentinel.engine.params import NEVER
from sentinel.errors import ConfigError

#: Old values of state written during a batch, in write order, for :mod:`sentinel.engine.rewind`:
#: (("rule" | "anomaly", rule index, array name), row of a 2-D rule array or -1, indices, values before).
Journal = list[tuple[tuple[str, int, str], int, npt.NDArray[np.int64], npt.NDArray[Any]]]


@dataclass
class RuleState:
    """State of one rule over its instances (columns)."""

    active: npt.NDArray[np.int8]
    on: npt.NDArray[np.uint8]
    since: npt.NDArray[np.int64]  # (levels with for_s, instances)
    mark: npt.NDArray[np.int64]  # stuck: last change time; count: window id
    total: npt.NDArray[np.int64]  # count: sum in the current window
    counts: npt.NDArray[np.int32]  # composite: (terms, instances)
    hold_rows: dict[int, int] = field(default_factory=dict)  # level → row of ``since``

    @classmethod
    def empty(cls, rule: Rule) -> RuleState:
        rows = {k: i for i, k in enumerate(k for k, lv in enumerate(rule.levels) if lv.for_s is not None)}
        return cls(
            np.zeros(0, dtype=np.int8),
            np.zeros(0, dtype=np.uint8),
            np.zeros((len(rows), 0), dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros((len(rule.terms), 0), dtype=np.int32),
            rows,
        )

    def grow(self, n: int, initial_counts: npt.NDArray[np.int32] | None = None) -> None:
        """Add ``n`` fresh instances at the end."""
        self.active = np.concatenate((self.active, np.zeros(n, dtype=np.int8)))
        self.on = np.concatenate((self.on, np.zeros(n, dtype=np.uint8)))
        self.since = np.concatenate((self.since, np.full((len(self.since), n), NEVER, dtype=np.int64)), axis=1)
        self.mark = np.concatenate((self.mark, np.full(n, NEVER, dtype=np.int64)))
        self.total = np.concatenate((self.total, np.zeros(n, dtype=np.int64)))
        fresh = np.zeros((len(self.counts), n), dtype=np.int32) if initial_counts is None else initial_counts
        self.counts = np.concatenate((self.counts, fresh), axis=1)

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "active": self.active,
            "on": self.on,
            "since": self.since,
            "mark": self.mark,
            "total": self.total,
            "counts": self.counts,
        }

    def nbytes(self) -> int:
        used: list[npt.NDArray[Any]] = [self.active, self.on, self.since, self.counts]
        return sum(a.nbytes for a in used) + (self.mark.nbytes + self.total.nbytes if self.extra else 0)

    extra: bool = False  # whether mark/total are used by the rule's kind (for byte accounting)
    rule_index: int = -1
    journal: Journal | None = None  # set by the engine's Rewinder (reorder.py) while it keeps a rewind log

    def put(self, name: str, index: npt.NDArray[np.int64], values: Any, row: int = -1) -> None:
        """``self.<name>[(row,) index] = values``, journalling the old values first (every evaluation write
        goes through here, so a batch can be undone per device)."""
        array = getattr(self, name)
        target = array if row < 0 else array[row]
        if self.journal is not None:
            self.journal.append((("rule", self.rule_index, name), row, index, target[index]))
        target[index] = values


@dataclass
class SeriesState:
    """Per-series last applied reading and per-device frontier."""

    last_value: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    last_ts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last_seq: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    frontier: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def grow(self, n_series: int, n_devices: int) -> None:
        add_s, add_d = n_series - len(self.last_value), n_devices - len(self.frontier)
        self.last_value = np.concatenate((self.last_value, np.full(add_s, np.nan)))
        self.last_ts = np.concatenate((self.last_ts, np.full(add_s, NEVER, dtype=np.int64)))
        self.last_seq = np.concatenate((self.last_seq, np.full(add_s, -1, dtype=np.int64)))
        self.frontier = np.concatenate((self.frontier, np.full(add_d, NEVER, dtype=np.int64)))

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "last_value": self.last_value,
            "last_ts": self.last_ts,
            "last_seq": self.last_seq,
            "frontier": self.frontier,
        }


def dump(
    header: dict[str, object],
    series: SeriesState,
    rules: dict[str, RuleState],
    extra: dict[str, npt.NDArray[np.generic]] | None = None,
) -> bytes:
    """Everything as one ``.npz``; ``extra`` members (names starting ``extra/``) come back from :func:`load`."""
    arrays: dict[str, npt.NDArray[np.generic]] = {f"series/{k}": v for k, v in series.arrays().items()}
    arrays.update({f"extra/{k}": v for k, v in (extra or {}).items()})
    for rule_id, state in rules.items():
        arrays.update({f"rule/{rule_id}/{k}": v for k, v in state.arrays().items()})
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def load(
    data: bytes, header: dict[str, object], series: SeriesState, rules: dict[str, RuleState]
) -> dict[str, npt.NDArray[np.generic]]:
    """Fill ``series`` and ``rules`` from a snapshot made for the same header (devices and rules); return the
    ``extra`` members it holds."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        found = json.loads(archive["header"].tobytes().decode())
        if found != header:
            raise ConfigError("engine snapshot", "it was taken for other devices or rules; rebuild from history")
        for key in series.arrays():
            setattr(series, key, archive[f"series/{key}"].copy())
        for rule_id, state in rules.items():
            for key in state.arrays():
                setattr(state, key, archive[f"rule/{rule_id}/{key}"].copy())
        return {
            name.removeprefix("extra/"): archive[name].copy() for name in archive.files if name.startswith("extra/")
        }
