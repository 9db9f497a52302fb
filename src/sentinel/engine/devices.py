"""Devices as the engine sees them: dense indices, classes, sites and the dense series index.

A :class:`DeviceSpec` names a device, its class (defined by a rule pack), its site and sector, how often it
reports (``expected_interval_s``, used by staleness rules) and ``attrs``: setpoints, baselines and per-device
overrides of typical values (keys as in :mod:`sentinel.engine.model`). Devices get dense indices in the order they
are added; the batch's ``device`` column holds these indices. Adding devices later appends: every index, and so
all rule state, of the devices already known stays where it was.

Series: each device owns a contiguous block of series ids, one per metric its class reports
(``series = series_base[device] + slot[class, metric]``). Rules that apply to the same set of classes share a
*population*: a map from device index to a dense instance index in that population, so per-rule arrays hold
only the devices the rule applies to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sentinel.engine.catalog import METRIC_INDEX, METRICS
from sentinel.engine.model import RuleSet
from sentinel.errors import ConfigError

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DeviceSpec:
    """One monitored device. ``attrs`` hold setpoints, baselines and per-device overrides of typical values."""

    id: str
    device_class: str
    site: str
    sector: str
    expected_interval_s: float = 60.0
    attrs: dict[str, float] = field(default_factory=dict)


class DeviceTable:
    """Dense indices of devices, classes, sites and series; grows by appending."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.class_names = list(rules.classes)
        self.class_index = {name: i for i, name in enumerate(self.class_names)}
        n_metrics = len(METRICS)
        # slot[class, metric]: position of the metric within a device's series block, -1 when not reported.
        self.slot = np.full((max(len(self.class_names), 1), n_metrics), -1, dtype=np.int32)
        self.block = np.zeros(max(len(self.class_names), 1), dtype=np.int32)
        for c, name in enumerate(self.class_names):
            for i, metric in enumerate(rules.classes[name].metrics):
                self.slot[c, METRIC_INDEX[metric]] = i
            self.block[c] = len(rules.classes[name].metrics)
        self.specs: list[DeviceSpec] = []
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.sites: list[str] = []
        self.site_index: dict[str, int] = {}
        self.device_class = np.zeros(0, dtype=np.int32)
        self.device_site = np.zeros(0, dtype=np.int32)
        self.series_base = np.zeros(0, dtype=np.int64)
        self.interval_s = np.zeros(0, dtype=np.float64)
        self.n_series = 0
        self.attr_keys: set[str] = set()
        self._needs: dict[str, list[tuple[str, str]]] = {}
        self.populations: dict[tuple[str, ...], I32] = {}
        self.population_size: dict[tuple[str, ...], int] = {}

    def __len__(self) -> int:
        return len(self.specs)

    def add(self, specs: list[DeviceSpec]) -> range:
        """Append devices; returns their new dense indices. Unknown classes and duplicate ids are refused."""
        for spec in specs:
            if spec.device_class not in self.class_index:
                raise ConfigError(
                    f"device {spec.id!r}", f"device class {spec.device_class!r} is not defined by any rule pack"
                )
            if spec.id in self.index:
                raise ConfigError(f"device {spec.id!r}", "the device id is registered twice")
            if not spec.expected_interval_s > 0:
                raise ConfigError(f"device {spec.id!r}", "expected_interval_s must be positive")
            for rule, attr in self._needed(spec.device_class):
                if attr not in spec.attrs:
                    raise ConfigError(f"device {spec.id!r}", f"attribute {attr!r} is required by rule {rule}")
        start = len(self.specs)
        classes = np.array([self.class_index[s.device_class] for s in specs], dtype=np.int32)
        sites = []
        for spec in specs:
            if spec.site not in self.site_index:
                self.site_index[spec.site] = len(self.sites)
                self.sites.append(spec.site)
            sites.append(self.site_index[spec.site])
            self.index[spec.id] = len(self.specs)
            self.ids.append(spec.id)
            self.attr_keys.update(spec.attrs)
            self.specs.append(spec)
        blocks = self.block[classes].astype(np.int64)
        bases = self.n_series + np.concatenate(([0], np.cumsum(blocks)[:-1])).astype(np.int64)
        self.n_series += int(blocks.sum())
        self.device_class = np.concatenate((self.device_class, classes))
        self.device_site = np.concatenate((self.device_site, np.array(sites, dtype=np.int32)))
        self.series_base = np.concatenate((self.series_base, bases))
        intervals = np.array([s.expected_interval_s for s in specs], dtype=np.float64)
        self.interval_s = np.concatenate((self.interval_s, intervals))
        for key in list(self.populations):
            self._extend_population(key, start)
        return range(start, len(self.specs))

    def _needed(self, device_class: str) -> list[tuple[str, str]]:
        """(rule id, attribute) pairs a device of this class must carry (setpoints, baselines, scales)."""
        if device_class in self._needs:
            return self._needs[device_class]
        metrics = self.rules.classes[device_class].metrics
        out: list[tuple[str, str]] = []
        for rule in self.rules.rules:
            if device_class in rule.device_classes:
                out += [(rule.id, a) for a in (rule.relative_to, rule.baseline, rule.scale) if a]
                out += [(rule.id, t.relative_to) for t in rule.terms if t.relative_to and t.metric in metrics]
        self._needs[device_class] = out
        return out

    def population(self, classes: tuple[str, ...]) -> I32:
        """Device index → instance index among devices of these classes (-1 for the others)."""
        key = tuple(sorted(classes))
        if key not in self.populations:
            self.populations[key] = np.zeros(0, dtype=np.int32)
            self.population_size[key] = 0
            self._extend_population(key, 0)
        return self.populations[key]

    def _extend_population(self, key: tuple[str, ...], start: int) -> None:
        wanted = np.array([self.class_index[c] for c in key], dtype=np.int32)
        member = np.isin(self.device_class[start:], wanted)
        added = np.full(len(member), -1, dtype=np.int32)
        size = self.population_size[key]
        added[member] = size + np.arange(int(member.sum()), dtype=np.int32)
        self.population_size[key] = size + int(member.sum())
        self.populations[key] = np.concatenate((self.populations[key], added))

    def members(self, classes: tuple[str, ...]) -> I64:
        """Device indices of a population, in instance order."""
        pop = self.population(classes)
        return np.flatnonzero(pop >= 0).astype(np.int64)

    def series_of(self, device: I64, metric: I64) -> I64:
        """Series id per reading, -1 where the device's class does not report the metric."""
        slot = self.slot[self.device_class[device], metric]
        return np.where(slot >= 0, self.series_base[device] + slot, -1)
