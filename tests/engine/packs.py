"""Small rule packs for tests: one rule per kind on one device class, written as YAML like the real packs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentinel.engine.anomaly import FitSettings, fit_model, save_model
from sentinel.engine.devices import DeviceSpec
from sentinel.engine.loader import load_rules
from sentinel.engine.model import RuleSet

KIND_PACK = """
pack: test
device_classes:
  probe: {metrics: [port_temp_c, port_power_w, spark_count, smoke, port_output_off, charge_minutes]}
rules:
  - id: t.threshold
    name: {zh: 阈值, en: graded threshold with hysteresis}
    kind: threshold
    device_classes: [probe]
    metric: port_temp_c
    source: T
    levels:
      - {grade: blue, at: 60, clear: 55, source: T}
      - {grade: yellow, at: 70, clear: 65, source: T}
      - {grade: red, at: 100, source: T}
  - id: t.sustained
    name: {zh: 持续, en: sustained-for}
    kind: threshold
    device_classes: [probe]
    metric: port_temp_c
    source: T
    levels:
      - {grade: orange, at: 60, for_s: 3, source: T}
  - id: t.setpoint
    name: {zh: 设定值比例, en: below a ratio of a setpoint}
    kind: threshold
    device_classes: [probe]
    metric: port_power_w
    direction: below
    relative_to: power_setpoint
    source: T
    levels:
      - {grade: blue, at: 0.9, clear: 0.95, source: T}
      - {grade: orange, at: 0.5, for_s: 2, source: T}
  - id: t.deviation
    name: {zh: 基线偏差, en: deviation from a baseline}
    kind: deviation
    device_classes: [probe]
    metric: port_power_w
    baseline: power_setpoint
    scale: power_allowed
    source: T
    levels:
      - {grade: yellow, at: 0.2, clear: 0.1, source: T}
  - id: t.rate
    name: {zh: 变化率, en: rate of change}
    kind: rate
    device_classes: [probe]
    metric: port_temp_c
    per_s: 1
    source: T
    levels:
      - {grade: blue, at: 5, clear: 1, source: T}
      - {grade: yellow, at: 20, source: T}
  - id: t.stuck
    name: {zh: 卡死, en: stuck sensor}
    kind: stuck
    device_classes: [probe]
    metric: port_power_w
    eps: 0.5
    source: T
    levels:
      - {grade: blue, at: 4, source: T}
  - id: t.count
    name: {zh: 窗口计数, en: count in window}
    kind: count
    device_classes: [probe]
    metric: spark_count
    window_s: 5
    source: T
    levels:
      - {grade: yellow, at: 1, source: T}
      - {grade: orange, at: 3, source: T}
  - id: t.stale
    name: {zh: 通信中断, en: staleness}
    kind: staleness
    device_classes: [probe]
    source: T
    levels:
      - {grade: blue, at: 3, source: T}
      - {grade: yellow, at: 6, source: T}
  - id: t.composite
    name: {zh: 组合, en: composite on a device}
    kind: composite
    device_classes: [probe]
    all:
      - {metric: port_temp_c, above: 60, source: T}
      - {metric: smoke, above: 0.5, source: T}
    grade: orange
    for_s: 2
    source: T
  - id: t.site
    name: {zh: 场所组合, en: composite across a site}
    kind: composite
    scope: site
    device_classes: [probe]
    all:
      - {metric: smoke, above: 0.5, source: T}
      - {metric: charge_minutes, above: 50, source: T}
    grade: red
    source: T
  - id: t.interlock
    name: {zh: 联锁, en: interlock failure}
    kind: interlock
    device_classes: [probe]
    trip:
      - {metric: port_power_w, above: 70, source: T}
    acted: {metric: port_output_off, above: 0.5, source: T}
    within_s: 2
    source: T
  - id: t.anomaly_pca
    name: {zh: 多变量异常, en: multivariate anomaly (PCA)}
    kind: anomaly
    device_classes: [probe]
    model: pca.npz
    metrics: [port_temp_c, port_power_w, charge_minutes]
    source: T
    levels:
      - {grade: blue, at: 1.0, clear: 0.8, source: T}
      - {grade: yellow, at: 1.5, for_s: 2, source: T}
      - {grade: red, at: 3, source: T}
  - id: t.anomaly_iforest
    name: {zh: 孤立森林异常, en: anomaly (isolation forest)}
    kind: anomaly
    device_classes: [probe]
    model: iforest.npz
    metrics: [port_power_w, port_temp_c]
    source: T
    levels:
      - {grade: blue, at: 1.0, source: T}
      - {grade: orange, at: 1.2, for_s: 1, source: T}
  - id: t.anomaly_z
    name: {zh: 单变量稳健Z异常, en: anomaly (robust z)}
    kind: anomaly
    device_classes: [probe]
    model: z.npz
    metrics: [port_temp_c]
    source: T
    levels:
      - {grade: blue, at: 1.0, for_s: 1, source: T}
      - {grade: yellow, at: 2.0, clear: 1.5, source: T}
"""

KINDS = (
    "t.threshold",
    "t.sustained",
    "t.setpoint",
    "t.deviation",
    "t.rate",
    "t.stuck",
    "t.count",
    "t.stale",
    "t.composite",
    "t.site",
    "t.interlock",
)

ANOMALY_KINDS = ("t.anomaly_pca", "t.anomaly_iforest", "t.anomaly_z")


def write_probe_models(models_dir: Path) -> None:
    """Fit the three anomaly models of the test pack on normal probe data (temperature ~50, power ~60, ~50 min)."""
    rng = np.random.default_rng(7)
    temp, power, minutes = rng.normal(50, 5, 400), rng.normal(60, 10, 400), rng.normal(50, 10, 400)
    fits = {
        "pca.npz": (np.column_stack([temp, power, minutes]), ["port_temp_c", "port_power_w", "charge_minutes"],
                    FitSettings("pca", smoothing=3, pca_variance=0.7)),
        "iforest.npz": (np.column_stack([power, temp]), ["port_power_w", "port_temp_c"],
                        FitSettings("iforest", smoothing=2, trees=20, max_samples=64)),
        "z.npz": (temp[:, None], ["port_temp_c"], FitSettings("robust_z", smoothing=2, window=4)),
    }  # fmt: skip
    for name, (rows, features, settings) in fits.items():
        save_model(fit_model(rows, features, settings), models_dir / name)


def kind_rules(tmp: Path, only: tuple[str, ...] = KINDS) -> RuleSet:
    path = tmp / "test.yaml"
    path.write_text(KIND_PACK, encoding="utf-8")
    rules = load_rules(path)
    rules.rules = [r for r in rules.rules if r.id in only]
    return rules


def probes(n: int, sites: int = 2) -> list[DeviceSpec]:
    return [
        DeviceSpec(f"p{i}", "probe", f"s{i % sites}", "test", 1.0, {"power_setpoint": 100.0, "power_allowed": 50.0})
        for i in range(n)
    ]
