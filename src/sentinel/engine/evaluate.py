"""Vectorised evaluation of one rule over one sorted micro-batch (see :mod:`sentinel.engine.engine`).

Level rules (threshold, deviation, rate, stuck, count) turn each reading of their metric into a *signal*; group
rules (composite, interlock) turn the merged readings of their metrics into a 0/1 signal (all terms hold). Then
every level latches on when its condition has held for ``for_s`` and off when the signal passes the clear value
(or simply no longer passes ``at`` when the level has no ``clear``); the grade is that of the highest level on.
A NaN signal (a rate with no previous reading) never raises; it clears levels without a ``clear`` value.

Everything is judged at readings, on device time: a level with ``for_s`` (and an interlock's ``within_s``)
latches at the first reading of its metrics at or after the condition has held that long, not in between.
A device that goes silent while a condition holds is caught by its staleness rule instead.

Per kind, the signal: threshold = the value (thresholds of ``relative_to`` rules are ``at × setpoint``);
deviation = (value − baseline) / scale (``up``), its negative (``down``) or its absolute value (``both``); rate =
(value − previous) × per_s / seconds between them; stuck = seconds since the value last moved by more than
``eps``; count = sum of the integer parts of positive values in the current tumbling window (aligned to the
epoch; a reading in a new window starts a new sum).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sentinel.engine.catalog import METRIC_INDEX
from sentinel.engine.kernels import (
    Segments,
    changes,
    first_index,
    last_true,
    latch,
    order_by,
    segment_cumsum,
    sustained,
)
from sentinel.engine.model import Rule
from sentinel.engine.params import NEVER, Per, RuleParams
from sentinel.engine.state import RuleState
from sentinel.engine.transitions import Piece

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass
class SortedBatch:
    """The batch's usable readings sorted by (metric, device, ts, seq): each series is contiguous.

    ``te`` is the effective device time (never before the series' previous reading), ``pv``/``pt`` the value and
    effective time of the previous reading of the same series (NaN / NEVER when there is none), ``bounds[m]`` the
    start of metric ``m``'s slice and ``start`` the first reading of each series.
    """

    device: I64
    metric: I64
    value: F64
    seq: I64
    te: I64
    pv: F64
    pt: I64
    start: B
    bounds: I64
    segments: Segments
    streams: dict[tuple[int, tuple[str, ...]], tuple[I64, I64, Segments] | None] = field(default_factory=dict)


def _signal(rule: Rule, p: RuleParams, st: RuleState, inst: I64, b: SortedBatch, pos: I64, sg: Segments) -> F64:
    v, te = b.value[pos], b.te[pos]
    if rule.kind == "threshold":
        return v
    if rule.kind == "deviation":
        d = v - p.baseline[inst]
        if rule.deviation == "up":
            return d / p.scale[inst]
        if rule.deviation == "down":
            return (p.baseline[inst] - v) / p.scale[inst]
        return np.abs(d) / p.scale[inst]
    if rule.kind == "rate":
        pv, pt = b.pv[pos], b.pt[pos]
        dt = te - np.where(pt == NEVER, te, pt)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = (v - pv) * (1e6 * rule.per_s) / dt.astype(np.float64)
        return np.where(dt > 0, rate, np.nan)
    if rule.kind == "stuck":
        pv = b.pv[pos]
        changed = np.isnan(pv) | (np.abs(v - pv) > rule.eps)
        at = last_true(changed, sg.first)
        change_ts = np.where(at >= 0, te[np.maximum(at, 0)], st.mark[inst[sg.heads]][sg.seg])
        st.put("mark", inst[sg.tails], change_ts[sg.tails])
        return (te - change_ts) / 1e6
    if rule.kind == "count":
        amount = np.trunc(np.clip(v, 0.0, 2.0**31)).astype(np.int64)
        window = te // p.window_us[inst]
        new_window = sg.start.copy()
        new_window[1:] |= window[1:] != window[:-1]
        starts, carried = inst[sg.heads], np.zeros(len(inst), dtype=np.int64)
        carried[sg.heads] = np.where(window[sg.heads] == st.mark[starts], st.total[starts], 0)
        amount = amount + carried
        total = segment_cumsum(amount, first_index(new_window))
        tails = inst[sg.tails]
        st.put("mark", tails, window[sg.tails])
        st.put("total", tails, total[sg.tails])
        return total.astype(np.float64)
    raise ValueError(f"rule kind {rule.kind!r} has no per-reading signal")


def _busy(rule: Rule, st: RuleState, inst: I64, signal: F64, sg: Segments, at: Per) -> B | None:
    """Readings of instances that can move this batch (a raise condition holds somewhere, or state carried in
    is not at rest); None when that is every reading. Instances left out stay at grade 0 with nothing open."""
    heads = inst[sg.heads]
    carried = st.on[heads] != 0
    for row in st.since:
        carried |= row[heads] != NEVER
    raised = np.zeros(len(signal), dtype=np.bool_)
    for k in range(len(rule.levels)):
        raised |= signal <= at(k, inst) if rule.direction == "below" else signal >= at(k, inst)
    seen = np.cumsum(raised, dtype=np.int64)  # a running count beats ufunc.reduceat over many short segments
    busy = carried | (seen[sg.tails] - seen[sg.heads] + raised[sg.heads] > 0)
    return None if busy.all() else busy[sg.seg]


def emit(
    ri: int,
    rule: Rule,
    st: RuleState,
    inst: I64,
    subject: I64,
    signal: F64,
    sg: Segments,
    b: SortedBatch,
    pos: I64,
    at: Per,
    clear: Per,
    hold_us: Per,
) -> Piece | None:
    """Latch each level per reading, take the grade of the highest level on, and return where it moves.

    ``at``/``clear``/``hold_us`` give a level's value for given instances (a scalar when all share it).
    """
    keep = _busy(rule, st, inst, signal, sg, at)
    if keep is not None:
        if not keep.any():
            return None
        rows = np.flatnonzero(keep)
        inst, subject, signal, pos = inst[rows], subject[rows], signal[rows], pos[rows]
        sg = Segments.of(sg.start[rows])
    te, first = b.te[pos], sg.first
    grade = np.zeros(len(signal), dtype=np.int8)
    bits = np.zeros(len(signal), dtype=np.uint8)
    starts, tails = inst[sg.heads], inst[sg.tails]
    on_before = st.on[starts][sg.seg]
    for k, level in enumerate(rule.levels):
        if rule.direction == "below":
            cond, past_clear = signal <= at(k, inst), signal > clear(k, inst)
        else:
            cond, past_clear = signal >= at(k, inst), signal < clear(k, inst)
        reset = past_clear if level.clear is not None else ~cond
        if level.for_s is not None:
            row = st.hold_rows[k]
            cond, since = sustained(cond, te, sg, st.since[row][starts], hold_us(k, inst))
            st.put("since", tails, since[sg.tails], row)
        on = latch(cond, reset, ((on_before >> k) & 1).astype(np.bool_), first)
        grade[on] = level.grade
        bits |= on.astype(np.uint8) << np.uint8(k)
    st.put("on", tails, bits[sg.tails])
    idx, before = changes(grade, sg.heads, st.active[starts])
    st.put("active", tails, grade[sg.tails])
    p = pos[idx]
    return Piece(ri, subject[idx], b.device[p], before[idx], grade[idx], b.te[p], b.value[p], b.seq[p])


def level_rule(
    ri: int, rule: Rule, p: RuleParams, st: RuleState, pop: npt.NDArray[np.int32], b: SortedBatch
) -> Piece | None:
    """Evaluate a threshold/deviation/rate/stuck/count rule on the readings of its metric."""
    m = METRIC_INDEX[rule.metric or ""]
    key = (m, tuple(sorted(rule.device_classes)))
    if key not in b.streams:  # rules on the same metric and device classes share the stream
        lo, hi = int(b.bounds[m]), int(b.bounds[m + 1])
        inst = pop[b.device[lo:hi]].astype(np.int64)
        keep = inst >= 0
        pos = np.arange(lo, hi, dtype=np.int64)
        if not keep.all():
            rows = np.flatnonzero(keep)
            pos, inst = pos[rows], inst[rows]
        b.streams[key] = (pos, inst, Segments.of(b.start[pos])) if len(pos) else None
    stream = b.streams[key]
    if stream is None:
        return None
    pos, inst, sg = stream
    signal = _signal(rule, p, st, inst, b, pos, sg)
    return emit(ri, rule, st, inst, b.device[pos], signal, sg, b, pos, p.per("at"), p.per("clear"), p.per("hold_us"))


def group_rule(
    ri: int,
    rule: Rule,
    p: RuleParams,
    st: RuleState,
    pop: npt.NDArray[np.int32],
    b: SortedBatch,
    site_of: npt.NDArray[np.int32],
    site_hold_us: I64,
) -> Piece | None:
    """Evaluate a composite or interlock rule: merged readings of its metrics per device (or site).

    Merged order per group: (effective time, device, metric, series order). Each term keeps how many series
    of the group satisfy it; the signal is 1 while every term count is positive.
    """
    metrics = sorted(METRIC_INDEX[m] for m in rule.metrics)
    pos = np.concatenate([np.arange(b.bounds[m], b.bounds[m + 1], dtype=np.int64) for m in metrics])
    dev = b.device[pos]
    inst = pop[dev].astype(np.int64)
    if not (inst >= 0).all():
        rows = np.flatnonzero(inst >= 0)
        pos, dev, inst = pos[rows], dev[rows], inst[rows]
    if len(pos) == 0:
        return None
    site = rule.scope == "site"
    group = site_of[dev].astype(np.int64) if site else inst
    te = b.te[pos]
    since = te.min()
    te_bits = int(te.max() - since).bit_length()
    if not site and int(group.max()).bit_length() + te_bits <= 63:
        # Each metric's slice is already sorted by (device, te) and devices and instances share an order, so
        # this is a merge of a few sorted runs: a stable sort on (instance, te) does it in near-linear time,
        # and keeps ties in concatenation order, i.e. by metric (slices were taken in metric order), then series.
        order = np.argsort((group << te_bits) | (te - since), kind="stable")
    else:
        columns = [group, te - since, dev, b.metric[pos]] if site else [group, te - since, b.metric[pos]]
        order = order_by(columns, pos)
    pos, dev, inst, group = pos[order], dev[order], inst[order], group[order]
    start = np.ones(len(pos), dtype=np.bool_)
    start[1:] = group[1:] != group[:-1]
    sg = Segments.of(start)
    heads, tails = group[sg.heads], group[sg.tails]
    v, pv, metric = b.value[pos], b.pv[pos], b.metric[pos]
    holds = np.ones(len(pos), dtype=np.bool_)
    term_at = p.per("term_at")
    for t, term in enumerate(rule.terms):
        mine = np.flatnonzero(metric == METRIC_INDEX[term.metric])
        thr, now_v, before_v = term_at(t, inst[mine]), v[mine], pv[mine]
        if term.direction == "above":
            now, before = now_v >= thr, before_v >= thr
        else:
            now, before = now_v <= thr, before_v <= thr
        if term.negate:
            now, before = ~now, ~before
        delta = np.zeros(len(pos), dtype=np.int64)
        delta[mine] = now.astype(np.int64) - before
        count = st.counts[t][heads][sg.seg] + segment_cumsum(delta, sg.first)
        st.put("counts", tails, count[sg.tails], t)
        holds &= count > 0

    def half(k: int, _: I64) -> float:
        return 0.5

    def site_hold(k: int, sites: I64) -> I64:
        return site_hold_us[sites]

    # Group state (grade, latch, since) is per group: instance index for device rules, site index for site rules.
    device_hold = p.per("hold_us")
    hold: Per = site_hold if site else device_hold
    return emit(ri, rule, st, group, group if site else dev, holds.astype(np.float64), sg, b, pos, half, half, hold)
