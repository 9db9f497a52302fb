"""Per-instance parameters of a rule: pack defaults, replaced by site overrides, replaced by device attributes.

Both evaluators read the same resolved numbers, so a disagreement between them is always about evaluation.
Thresholds of ``relative_to`` rules and terms are multiplied by the device attribute here (``at × setpoint``),
so evaluation compares raw values. Durations are turned into integer microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.engine.devices import DeviceTable
from sentinel.engine.model import Param, Rule
from sentinel.errors import ConfigError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
NEVER = np.iinfo(np.int64).min  # "no time": no run open, no window, no data yet


# (level k, instance per reading) → the level's value per reading, or one scalar shared by all instances
Per = Callable[[int, "I64"], "float | npt.NDArray[Any]"]


@dataclass
class RuleParams:
    """Arrays indexed by the rule's device instance (see DeviceTable.population).

    ``at``, ``clear`` are (levels, instances); ``hold_us`` (levels, instances) is the sustained-for time;
    ``term_at`` is (terms, instances); ``baseline`` / ``scale`` serve deviation rules, ``window_us`` count rules.
    """

    at: F64
    clear: F64
    hold_us: I64
    term_at: F64
    baseline: F64
    scale: F64
    window_us: I64
    shared: dict[str, list[bool]] = field(default_factory=dict)  # per level: one value for all instances?

    def per(self, name: str) -> Per:
        """Row ``k`` of ``name`` (at, clear, hold_us; term_at) for each reading's instance; a scalar when all agree."""
        table = getattr(self, name)
        if name not in self.shared:
            self.shared[name] = [bool(len(row)) and bool((row == row[0]).all()) for row in table]
        shared = self.shared[name]

        def value(k: int, inst: I64) -> float | npt.NDArray[Any]:
            return table[k][0].item() if shared[k] else table[k][inst]  # type: ignore[no-any-return]

        return value


def _param(table: DeviceTable, devices: I64, param: Param, overrides: dict[str, dict[str, float]]) -> F64:
    out = np.full(len(devices), param.value, dtype=np.float64)
    for site, values in overrides.items():
        if param.key in values and site in table.site_index:
            out[table.device_site[devices] == table.site_index[site]] = values[param.key]
    if param.key not in table.attr_keys:
        return out
    for i, device in enumerate(devices.tolist()):
        attrs = table.specs[device].attrs
        if param.key in attrs:
            out[i] = attrs[param.key]
    return out


def _attr(table: DeviceTable, devices: I64, name: str, rule: Rule, metric: str | None = None) -> F64:
    """A device attribute per device; with ``metric``, only devices whose class reports it need it (NaN)."""
    out = np.full(len(devices), np.nan, dtype=np.float64)
    for i, device in enumerate(devices.tolist()):
        spec = table.specs[device]
        if metric is not None and metric not in table.rules.classes[spec.device_class].metrics:
            continue
        if name not in spec.attrs:
            raise ConfigError(f"device {spec.id!r}", f"attribute {name!r} is required by rule {rule.id}")
        out[i] = spec.attrs[name]
    return out


def resolve(rule: Rule, table: DeviceTable, devices: I64, overrides: dict[str, dict[str, float]]) -> RuleParams:
    """Resolve every number of ``rule`` for ``devices`` (device indices in instance order)."""
    n, n_levels = len(devices), len(rule.levels)
    at = np.zeros((n_levels, n), dtype=np.float64)
    clear = np.zeros((n_levels, n), dtype=np.float64)
    hold = np.zeros((n_levels, n), dtype=np.int64)
    factor = _attr(table, devices, rule.relative_to, rule) if rule.relative_to else None
    for k, level in enumerate(rule.levels):
        at[k] = _param(table, devices, level.at, overrides)
        clear[k] = _param(table, devices, level.clear, overrides) if level.clear else at[k]
        if factor is not None:
            at[k] = at[k] * factor
            clear[k] = clear[k] * factor
        if level.for_s is not None:
            hold[k] = np.rint(_param(table, devices, level.for_s, overrides) * 1e6).astype(np.int64)
    term_at = np.zeros((len(rule.terms), n), dtype=np.float64)
    for t, term in enumerate(rule.terms):
        term_at[t] = _param(table, devices, term.at, overrides)
        if term.relative_to:
            term_at[t] = term_at[t] * _attr(table, devices, term.relative_to, rule, term.metric)
    baseline = _attr(table, devices, rule.baseline, rule) if rule.baseline else np.zeros(n)
    scale = _attr(table, devices, rule.scale, rule) if rule.scale else baseline.copy() if rule.baseline else np.ones(n)
    if rule.baseline and not np.all(scale > 0):
        bad = table.specs[int(devices[np.flatnonzero(~(scale > 0))[0]])].id
        raise ConfigError(f"device {bad!r}", f"rule {rule.id} needs a positive deviation scale")
    window = np.zeros(n, dtype=np.int64)
    if rule.window_s is not None:
        window = np.rint(_param(table, devices, rule.window_s, overrides) * 1e6).astype(np.int64)
        if not np.all(window > 0):
            raise ConfigError(f"rule {rule.id}", "window_s must be positive for every device")
    if rule.kind == "staleness":
        # Staleness levels are multiples of the device's expected interval: threshold in microseconds.
        at = at * (table.interval_s[devices] * 1e6)[None, :]
        clear = at.copy()
    return RuleParams(at, clear, hold, term_at, baseline, scale, window)


def concat(a: RuleParams, b: RuleParams) -> RuleParams:
    """Parameters of instances added later go after the ones already resolved."""
    return RuleParams(
        np.concatenate((a.at, b.at), axis=1),
        np.concatenate((a.clear, b.clear), axis=1),
        np.concatenate((a.hold_us, b.hold_us), axis=1),
        np.concatenate((a.term_at, b.term_at), axis=1),
        np.concatenate((a.baseline, b.baseline)),
        np.concatenate((a.scale, b.scale)),
        np.concatenate((a.window_us, b.window_us)),
    )
