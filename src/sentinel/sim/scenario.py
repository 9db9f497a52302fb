"""Scenario files: a county map of sites, the devices each sector brings, delivery habits and faults with ground truth.

A scenario is YAML in ``simulators/``::

    name: demo-county
    seed: 7
    duration_s: 3600             # device time the run covers
    county: {name: 示范县, lat: 31.62, lon: 120.28, townships: [城关镇, 新庄镇, 东港镇]}
    sites: {gas: 30, dust: 12, casting: 4, charging: 20}
    intervals_s: {charging_port: 30}               # optional, per device class
    delivery: {jitter_s: 0.3, duplicate_rate: 0.002, late_rate: 0.002, late_s: [20, 120], dropout_rate: 0.001}
    faults:
      - {kind: gas_leak, site: gas-003, at_s: 120}
      - {kind: cooling_water_loss, device: cast-001-m1, at_s: 300, duration_s: 120}
    fault_every_s: 180           # optional: more faults, one every so often, on random targets

Sites are placed around the county centre, each in a township; ids are ``<sector>-<nnn>`` and devices
``<site>-<tag>``. Every fault names its expected alert (rule id), grade and deadline (:mod:`sentinel.sim.faults`).
Problems name the file and the field.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Annotated

import msgspec
import yaml

from sentinel.errors import ScenarioError
from sentinel.registry.entries import DeviceEntry, GatewayEntry, RegistryFile, Sector, SiteEntry
from sentinel.resources import data_dir
from sentinel.sim.faults import FAULT_KINDS

SECTORS: tuple[Sector, ...] = ("gas", "dust", "casting", "charging")

# How often each class reports, in device seconds (a scenario may override per class).
DEFAULT_INTERVALS_S: dict[str, float] = {
    "gas_pipe_monitor": 30.0,
    "gas_well_monitor": 30.0,
    "tunnel_gas_monitor": 60.0,
    "restaurant_gas_detector": 60.0,
    "dust_collector": 10.0,
    "wet_collector": 30.0,
    "casting_machine": 5.0,
    "charging_port": 30.0,
}

SECTOR_NAMES = {"gas": "燃气调压站", "dust": "粉尘涉爆企业", "casting": "铝深井铸造厂", "charging": "集中充电点"}


class County(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str = "示范县"
    lat: float = 31.62
    lon: float = 120.28
    townships: list[str] = msgspec.field(default_factory=lambda: ["城关镇", "新庄镇", "东港镇", "西湖镇", "南塘镇"])
    radius_km: Annotated[float, msgspec.Meta(gt=0)] = 18.0


class Delivery(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How devices deliver: clock jitter, network delay, duplicates, late (delayed) messages and drop-outs."""

    jitter_s: Annotated[float, msgspec.Meta(ge=0)] = 0.3
    delay_s: tuple[float, float] = (0.05, 0.5)
    duplicate_rate: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.002
    late_rate: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.002
    late_s: tuple[float, float] = (20.0, 120.0)
    dropout_rate: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.001


class FaultSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    kind: str
    at_s: Annotated[float, msgspec.Meta(ge=0)]
    device: str | None = None
    site: str | None = None
    duration_s: Annotated[float, msgspec.Meta(gt=0)] | None = None


class Scenario(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    seed: int = 1
    duration_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    county: County = msgspec.field(default_factory=County)
    sites: dict[Sector, Annotated[int, msgspec.Meta(ge=0, le=10_000)]] = msgspec.field(
        default_factory=lambda: {"gas": 4, "dust": 2, "casting": 1, "charging": 2}
    )
    intervals_s: dict[str, Annotated[float, msgspec.Meta(gt=0)]] = msgspec.field(default_factory=dict)
    delivery: Delivery = msgspec.field(default_factory=Delivery)
    faults: list[FaultSpec] = msgspec.field(default_factory=list)
    fault_every_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    fault_kinds: list[str] | None = None  # which kinds fault_every_s draws from (default: the hazardous ones)

    def interval_s(self, device_class: str) -> float:
        return self.intervals_s.get(device_class, DEFAULT_INTERVALS_S[device_class])


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file; errors say which file and which field. A bare name that is not a file
    (``every-fault``) means the bundled ``simulators/<name>.yaml``."""
    path = _bundled(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        known = ", ".join(sorted(p.stem for p in _bundled_dir().glob("*.yaml")))
        raise ScenarioError(f"{path}: cannot read: {exc.strerror} (bundled scenarios: {known})") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping with at least `name`")
    return parse_scenario(data, str(path))


def parse_scenario(data: object, where: str = "scenario") -> Scenario:
    try:
        scenario = msgspec.convert(data, Scenario, strict=False)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{where}: {exc}") from exc
    unknown_classes = sorted(set(scenario.intervals_s) - set(DEFAULT_INTERVALS_S))
    if unknown_classes:
        raise ScenarioError(
            f"{where}: $.intervals_s: unknown device class {unknown_classes[0]!r} "
            f"(known: {', '.join(DEFAULT_INTERVALS_S)})"
        )
    for i, fault in enumerate(scenario.faults):
        if fault.kind not in FAULT_KINDS:
            raise ScenarioError(
                f"{where}: $.faults[{i}].kind: unknown fault {fault.kind!r} (known: {', '.join(FAULT_KINDS)})"
            )
        if fault.at_s >= scenario.duration_s:
            raise ScenarioError(
                f"{where}: $.faults[{i}].at_s: {fault.at_s} is not before duration_s {scenario.duration_s}"
            )
    for kind in scenario.fault_kinds or []:
        if kind not in FAULT_KINDS:
            raise ScenarioError(f"{where}: $.fault_kinds: unknown fault {kind!r} (known: {', '.join(FAULT_KINDS)})")
    return scenario


# ---------------------------------------------------------------------------------------------- county layout
def _device_templates(sector: Sector, n: int) -> list[tuple[str, str, dict[str, float]]]:
    """(tag, class, attrs) of the devices a site of this sector brings; ``n`` varies the mix between sites."""
    if sector == "gas":
        op = (0.1, 0.3, 0.3, 0.6)[n % 4]  # medium B, medium A (most), sub-high B
        class_max = {0.1: 0.2, 0.3: 0.4, 0.6: 0.8}[op]
        out = [
            ("p1", "gas_pipe_monitor", {"operating_pressure_mpa": op, "pressure_class_max_mpa": class_max}),
            ("w1", "gas_well_monitor", {}),
            ("w2", "gas_well_monitor", {}),
        ]
        if n % 4 == 1:
            out.append(("t1", "tunnel_gas_monitor", {}))
        if n % 3 == 2:
            out.append(("r1", "restaurant_gas_detector", {}))
        return out
    if sector == "dust":
        baseline = 900.0 + 100.0 * (n % 5)
        dc = {"dc_dp_baseline_pa": baseline, "dc_dp_allowed_pa": 1500.0}
        return [
            ("c1", "dust_collector", dict(dc)),
            ("c2", "dust_collector", dict(dc)),
            ("wet1", "wet_collector", {"wet_tank_design_level": 100.0, "wet_flow_design_m3h": 55.0}),
        ]
    if sector == "casting":
        attrs = {
            "cw_pressure_setpoint_mpa": 0.5,
            "cw_flow_setpoint_m3h": 120.0,
            "launder_level_high_mm": 120.0,
            "launder_level_low_mm": 60.0,
        }
        return [("m1", "casting_machine", dict(attrs)), ("m2", "casting_machine", dict(attrs))]
    return [(f"port{k:02d}", "charging_port", {}) for k in range(1, 11)]


def build_registry(scenario: Scenario) -> RegistryFile:
    """Sites on the county map (townships, coordinates), one gateway per township, devices with the attrs the rules
    need. Deterministic from the scenario's seed."""
    rng = random.Random(f"{scenario.seed}:layout")
    county = scenario.county
    townships = county.townships or ["城关镇"]
    # Township centres on a ring around the county seat (the first township sits at the centre).
    centres: list[tuple[float, float]] = []
    for i, _ in enumerate(townships):
        if i == 0:
            centres.append((county.lat, county.lon))
            continue
        angle = 2 * math.pi * (i - 1) / max(len(townships) - 1, 1)
        r_deg = county.radius_km * 0.6 / 111.0
        centres.append((county.lat + r_deg * math.sin(angle), county.lon + r_deg * math.cos(angle) / 0.85))
    sites: list[SiteEntry] = []
    devices: list[DeviceEntry] = []
    by_township: dict[int, list[str]] = {}
    for sector in SECTORS:
        for n in range(scenario.sites.get(sector, 0)):
            t = (n + SECTORS.index(sector)) % len(townships)
            lat0, lon0 = centres[t]
            spread = county.radius_km * 0.25 / 111.0
            site_id = f"{sector}-{n + 1:03d}"
            sites.append(
                SiteEntry(
                    site_id,
                    f"{townships[t]}{SECTOR_NAMES[sector]}{n + 1}号",
                    townships[t],
                    sector,
                    round(lat0 + rng.uniform(-spread, spread), 5),
                    round(lon0 + rng.uniform(-spread, spread), 5),
                )
            )
            by_township.setdefault(t, []).append(site_id)
            for tag, device_class, attrs in _device_templates(sector, n):
                devices.append(
                    DeviceEntry(f"{site_id}-{tag}", site_id, device_class, scenario.interval_s(device_class), attrs)
                )
    gateways = [
        GatewayEntry(f"gw-{scenario.name}-{t:02d}"[:64], ids, secret=gateway_secret(scenario, t))
        for t, ids in sorted(by_township.items())
    ]
    return RegistryFile(sites, gateways, devices)


def gateway_secret(scenario: Scenario, township: int) -> str:
    """The HTTP token of a township's gateway: derived from the scenario, so a replay can log in again. A
    simulation's gateways are test identities, not production secrets."""
    return f"sim-{scenario.name}-{scenario.seed}-gw{township:02d}-token"


def _bundled_dir() -> Path:
    return data_dir("simulators")


def _bundled(path: Path) -> Path:
    if path.exists() or path.parent != Path() or path.suffix:
        return path
    candidate = _bundled_dir() / f"{path.name}.yaml"
    return candidate if candidate.exists() else path
