"""Anomaly rules inside the vectorised engine pass: models loaded from a directory, scored on micro-batches.

A rule of kind ``anomaly`` names a model file (relative to the engine's ``models_dir``) and the metrics of its
device class that are the model's features, in order::

    - id: dust.collector_anomaly
      kind: anomaly
      device_classes: [dust_collector]
      detector: pca                             # optional: the model file must be of this kind
      model: dust_collector.npz
      metrics: [dc_dp_pa, dc_inlet_temp_c, hopper_temp_c]
      levels:                                   # signal = normalised score (1.0 = on the model's limit)
        - {grade: blue, at: 1.0, for_s: 30}
        - {grade: yellow, at: 1.5, for_s: 60}

Feature rows (decided here, and the reference evaluator does the same): one row per reading of any of the rule's
metrics, in each device's merged order (effective time, metric, series order); the row holds the device's latest
value of every feature metric at that reading (carried forward across batches). No resampling: a row is scored at
every reading, so a metric that reports more often scores more often; the model should be trained on rows built
the same way (``sentinel anomaly train`` does). Until every feature metric of a device has reported, its rows are
not scored (NaN signal). Scored rows go through the model's detector and trailing mean exactly as
:class:`~sentinel.engine.anomaly.model.Scorer` does for one series, but for all devices of the class at once: the
windows of every device are gathered into one array (:func:`.windows.grouped_windows`). The first
``model.warmup_rows`` scored rows of a device have a NaN signal (scored, never raise). The model's own
``persistence`` is not used: how long the score must stay up is each level's ``for_s``, on device time.
The detector gets the model's used columns only (features slow in training are carried but not scored), and a
model that follows drift keeps one offset per device, moved by :func:`.drift.recentred_statistics`, the same
function the offline :class:`~sentinel.engine.anomaly.model.Scorer` calls (there with one device).

Findings are early warnings (预警): transitions of anomaly rules carry ``alert_class == "warning"``
(:attr:`~sentinel.engine.model.Rule.alert_class`), threshold alarms (报警) ``"alarm"``.

Models are loaded when the engine starts and again when a file changes (checked at each batch by its stat: size,
mtime, inode). A missing, corrupt, tampered-with or incompatible file (features other than the rule's metrics) is
refused with a :class:`~sentinel.errors.ModelError` kept in :attr:`AnomalyRules.errors` and logged; the rule then
stays off (at start) or keeps its previous model (on reload), and every other rule runs as usual. A new model
restarts the rule's windows (warm-up again); grades and latches carry on. Engine snapshots hold the windows with
a fingerprint of the model they were built with; a restore under another model (or from a snapshot without them)
starts that rule's windows afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.drift import recentred_statistics
from sentinel.engine.anomaly.drift_kernel import warm_up
from sentinel.engine.anomaly.model import AnomalyModel
from sentinel.engine.anomaly.model_file import load_model
from sentinel.engine.anomaly.robust_z import RobustZDetector
from sentinel.engine.anomaly.windows import carried_tails, grouped_windows
from sentinel.engine.catalog import METRIC_INDEX
from sentinel.engine.evaluate import SortedBatch, emit
from sentinel.engine.kernels import Segments, last_true
from sentinel.engine.model import Rule, RuleSet
from sentinel.engine.params import RuleParams
from sentinel.engine.state import Journal, RuleState
from sentinel.engine.transitions import Piece
from sentinel.errors import ModelError

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def load_rule_model(rule: Rule, models_dir: Path) -> AnomalyModel:
    """Load the model of an anomaly rule and check that its features are the rule's metrics, in order."""
    path = models_dir / (rule.model or "")
    model = load_model(path)
    if model.feature_names != rule.features:
        raise ModelError(
            f"{path}: model features ({', '.join(model.feature_names)}) are not the metrics of rule {rule.id} "
            f"({', '.join(rule.features)}); retrain it with `sentinel anomaly train`"
        )
    if rule.detector is not None and model.kind != rule.detector:
        raise ModelError(f"{path}: a {model.kind} model, but rule {rule.id} asks for detector {rule.detector}")
    return model


def model_stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file: size, modification time and inode (a replaced file has a new one)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns, status.st_ino


@dataclass
class Windows:
    """Per device instance of one anomaly rule: latest feature values, detector history, statistics, rows seen."""

    latest: F64  # (instances, features)
    history: F64  # (instances, history_rows, features), oldest first, NaN where fewer
    statistics: F64  # (instances, smoothing - 1)
    seen: I64  # scored rows so far
    offset: F64  # (instances, 2, used features): drift offset and trend per row (zeros without drift)

    @classmethod
    def empty(cls, model: AnomalyModel, n: int) -> Windows:
        f, used = len(model.feature_names), model.detector.n_features
        return cls(
            np.full((n, f), np.nan),
            np.full((n, model.detector.history_rows, used), np.nan),
            np.full((n, model.smoothing - 1), np.nan),
            np.zeros(n, dtype=np.int64),
            np.zeros((n, 2, used)),
        )

    def grow(self, model: AnomalyModel, n: int) -> None:
        more = Windows.empty(model, n)
        self.latest = np.concatenate([self.latest, more.latest])
        self.history = np.concatenate([self.history, more.history])
        self.statistics = np.concatenate([self.statistics, more.statistics])
        self.seen = np.concatenate([self.seen, more.seen])
        self.offset = np.concatenate([self.offset, more.offset])


@dataclass
class LiveRule:
    """One anomaly rule's model (None while refused), where it comes from, and its windows."""

    rule: Rule
    path: Path | None
    model: AnomalyModel | None = None
    stamp: tuple[int, int, int] | None = None
    windows: Windows | None = None
    instances: int = 0


class AnomalyRules:
    """The anomaly rules of a rule set: their models, reloads and vectorised scoring."""

    def __init__(self, rules: RuleSet, models_dir: Path | None) -> None:
        self.models_dir = models_dir
        self.live = {
            ri: LiveRule(rule, models_dir / (rule.model or "") if models_dir else None)
            for ri, rule in enumerate(rules.rules)
            if rule.kind == "anomaly"
        }
        self.errors: dict[str, ModelError] = {}
        self.loads = 0
        self.journal: Journal | None = None  # set by the engine's Rewinder (reorder.py) while it keeps a rewind log
        self.refresh()

    def grow(self, ri: int, n: int) -> None:
        """The rule's population gained ``n`` device instances."""
        live = self.live[ri]
        live.instances += n
        if live.model is not None and live.windows is not None:
            live.windows.grow(live.model, n)

    def refresh(self) -> None:
        """Load each model whose file is new or changed since it was last read (cheap when nothing changed)."""
        if self.models_dir is None:
            return
        for live in self.live.values():
            assert live.path is not None
            stamp = model_stamp(live.path)
            if stamp is not None and stamp == live.stamp:
                continue
            if stamp is None and live.rule.id in self.errors:
                continue  # still missing: refused once, not again at every batch
            live.stamp = stamp
            try:
                model = load_rule_model(live.rule, self.models_dir)
            except ModelError as exc:
                self.errors[live.rule.id] = exc
                kept = "keeps its previous model" if live.model is not None else "is off"
                log.error("anomaly rule %s %s: %s", live.rule.id, kept, exc)
                continue
            self.errors.pop(live.rule.id, None)
            if model.drift_rows:
                warm_up(model.detector)  # compiled here, not in the first batch's latency
            live.model, live.windows = model, Windows.empty(model, live.instances)
            self.loads += 1
            log.info("anomaly rule %s: loaded %s model from %s", live.rule.id, model.kind, live.path)

    @staticmethod
    def _fingerprint(model: AnomalyModel, n: int) -> npt.NDArray[np.uint8]:
        """What must match for saved windows to fit a model: its identity as far as the windows depend on it."""
        text = repr(
            (
                model.kind, model.feature_names, model.limit, model.smoothing, model.detector.history_rows, n,
                model.columns, model.drift_rows,
            )
        )  # fmt: skip
        return np.frombuffer(text.encode(), dtype=np.uint8)

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """The windows of every rule with a model, for the engine snapshot."""
        out: dict[str, npt.NDArray[np.generic]] = {}
        for live in self.live.values():
            if live.model is None or live.windows is None:
                continue
            prefix = f"anomaly/{live.rule.id}/"
            w = live.windows
            out |= {prefix + "fingerprint": self._fingerprint(live.model, live.instances), prefix + "latest": w.latest}
            out |= {prefix + "history": w.history, prefix + "statistics": w.statistics, prefix + "seen": w.seen}
            out |= {prefix + "offset": w.offset}
        return out

    def restore(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        """Windows from a snapshot where they were built with the same model; fresh windows otherwise."""
        for live in self.live.values():
            if live.model is None:
                continue
            prefix = f"anomaly/{live.rule.id}/"
            saved = arrays.get(prefix + "fingerprint")
            fits = saved is not None and np.array_equal(saved, self._fingerprint(live.model, live.instances))
            if fits and prefix + "offset" in arrays:
                live.windows = Windows(
                    arrays[prefix + "latest"].astype(np.float64),
                    arrays[prefix + "history"].astype(np.float64),
                    arrays[prefix + "statistics"].astype(np.float64),
                    arrays[prefix + "seen"].astype(np.int64),
                    arrays[prefix + "offset"].astype(np.float64),
                )
            else:
                log.info("anomaly rule %s: snapshot windows not for this model; warming up afresh", live.rule.id)
                live.windows = Windows.empty(live.model, live.instances)

    def model(self, rule_id: str) -> AnomalyModel | None:
        return next((lv.model for lv in self.live.values() if lv.rule.id == rule_id), None)

    def evaluate(
        self, ri: int, rule: Rule, p: RuleParams, st: RuleState, pop: npt.NDArray[np.int32], b: SortedBatch
    ) -> Piece | None:
        """Score the batch's readings of the rule's metrics for every device of its classes, then grade."""
        live = self.live[ri]
        model, windows = live.model, live.windows
        if model is None or windows is None:
            return None
        metrics = [METRIC_INDEX[m] for m in rule.features]
        pos = np.concatenate([np.arange(b.bounds[m], b.bounds[m + 1], dtype=np.int64) for m in sorted(metrics)])
        inst = pop[b.device[pos]].astype(np.int64)
        if not (inst >= 0).all():
            pos, inst = pos[inst >= 0], inst[inst >= 0]
        if len(pos) == 0:
            return None
        # Per device: effective time, then metric, then series order (slices were concatenated in metric order).
        order = np.lexsort((b.te[pos], inst))
        pos, inst = pos[order], inst[order]
        start = np.ones(len(pos), dtype=np.bool_)
        start[1:] = inst[1:] != inst[:-1]
        sg = Segments.of(start)
        rows = self._feature_rows(metrics, windows, b, pos, inst, sg, self._journal(ri))
        signal = self._score(model, windows, rows, inst, self._journal(ri))
        scored = b.value.copy()
        scored[pos] = signal  # transitions of an anomaly rule report the score, not the reading's value
        return emit(
            ri, rule, st, inst, b.device[pos], signal, sg, replace(b, value=scored, streams={}), pos,
            p.per("at"), p.per("clear"), p.per("hold_us"),
        )  # fmt: skip

    def _journal(self, ri: int) -> Callable[[str, I64, F64 | I64], None]:
        """Records the old values of a window array before a write (for the engine's rewind log)."""

        def note(name: str, index: I64, old: F64 | I64) -> None:
            if self.journal is not None:
                self.journal.append((("anomaly", ri, name), -1, index, old))

        return note

    @staticmethod
    def _feature_rows(
        metrics: list[int],
        windows: Windows,
        b: SortedBatch,
        pos: I64,
        inst: I64,
        sg: Segments,
        note: Callable[[str, I64, F64 | I64], None],
    ) -> F64:
        """Each reading's row: the device's latest value of every feature metric (carried forward)."""
        rows = np.empty((len(pos), len(metrics)))
        metric, value = b.metric[pos], b.value[pos]
        heads, tails = inst[sg.heads], inst[sg.tails]
        note("latest", tails, windows.latest[tails])
        for j, m in enumerate(metrics):  # a loop over the model's few features, not over readings
            at = last_true(metric == m, sg.first)
            rows[:, j] = np.where(at >= 0, value[np.maximum(at, 0)], windows.latest[heads, j][sg.seg])
            windows.latest[tails, j] = rows[sg.tails, j]
        return rows

    @staticmethod
    def _score(
        model: AnomalyModel, windows: Windows, rows: F64, inst: I64, note: Callable[[str, I64, F64 | I64], None]
    ) -> F64:
        """Normalised score per row (NaN until every feature is known and the device's windows are warm)."""
        signal = np.full(len(rows), np.nan)
        complete = np.flatnonzero(np.isfinite(rows).all(axis=1))
        if len(complete) == 0:
            return signal
        rows, inst = rows[complete], inst[complete]
        if model.used is not None:
            rows = rows[:, list(model.used)]
        start = np.ones(len(rows), dtype=np.bool_)
        start[1:] = inst[1:] != inst[:-1]
        sg = Segments.of(start)
        heads, tails = inst[sg.heads], inst[sg.tails]
        detector = model.detector
        if model.drift_rows:
            assert model.centre is not None
            assert model.centre_scale is not None
            note("statistics", tails, windows.statistics[tails])
            note("offset", tails, windows.offset[tails])
            _, smoothed = recentred_statistics(
                detector, rows, inst, windows.offset, windows.statistics,
                limit=model.limit, drift_rows=model.drift_rows, centre=model.centre, scale=model.centre_scale,
            )  # fmt: skip
            return AnomalyRules._signal(model, windows, signal, complete, smoothed, sg, heads, tails, note)
        if detector.history_rows == 0:
            raw = detector.statistic(rows[:0], rows)
        elif isinstance(detector, RobustZDetector):
            batch = grouped_windows(windows.history[heads], rows, sg.seg)
            raw = detector.window_statistic(batch)
            note("history", tails, windows.history[tails])
            windows.history[tails] = carried_tails(windows.history[heads], batch, sg.tails)
        else:
            raise ModelError(f"{detector.kind} detector looks back {detector.history_rows} rows: not supported live")
        smoothing = grouped_windows(windows.statistics[heads], raw, sg.seg)
        smoothed = np.nanmean(smoothing, axis=1)
        note("statistics", tails, windows.statistics[tails])
        windows.statistics[tails] = carried_tails(windows.statistics[heads], smoothing, sg.tails)
        return AnomalyRules._signal(model, windows, signal, complete, smoothed, sg, heads, tails, note)

    @staticmethod
    def _signal(
        model: AnomalyModel,
        windows: Windows,
        signal: F64,
        complete: I64,
        smoothed: F64,
        sg: Segments,
        heads: I64,
        tails: I64,
        note: Callable[[str, I64, F64 | I64], None],
    ) -> F64:
        """Score = smoothed / limit for rows past the warm-up; counts the rows each device has seen."""
        count = windows.seen[heads][sg.seg] + np.arange(len(smoothed)) - sg.heads[sg.seg]
        note("seen", tails, windows.seen[tails])
        windows.seen[tails] += sg.tails - sg.heads + 1
        signal[complete] = np.where(count >= model.warmup_rows, smoothed / model.limit, np.nan)
        return signal
