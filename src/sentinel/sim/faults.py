"""Faults a scenario injects, each with its ground truth: the alert (rule id) it must raise, the grade, the deadline.

A fault acts on the readings of its target devices from ``start_s`` until ``end_s`` (device seconds since the
scenario start): it bends signals (a pressure ramp, a frozen value), forces states (casting on, a valve that does
not close) or silences devices (a gateway offline). :meth:`ActiveFault.apply` is called by the device models
with the normal values and returns the values the device really reports, or ``None`` when it sends nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

Values = dict[str, float | bool]


@dataclass(frozen=True)
class FaultKind:
    """What a kind of fault targets and what Sentinel must say about it."""

    kind: str
    target: Literal["site", "device"]
    classes: tuple[str, ...]  # device classes it applies to (site faults: the site must hold one)
    rule: str  # expected alert; "{sector}" and "{stuck_rule}" are filled in per target
    grade: str
    deadline_s: float
    hazardous: bool
    # What the expected alert is about; "either": the site (Sentinel groups a silent site into one alert,
    # sentinel.alerts.silence) or its devices (the engine alone, as `simulate --report` scores in-process).
    subject: Literal["site", "device", "either"] = "device"
    default_duration_s: float = 900.0
    summary: str = ""


# Stuck sensors: which metric freezes and which rule must notice, per class (times from the packs' "at").
STUCK = {
    "gas_pipe_monitor": ("pipe_pressure_mpa", "gas.pipe_pressure_stuck", 3600.0),
    "casting_machine": ("cw_pressure_mpa", "casting.cw_pressure_stuck", 600.0),
    "dust_collector": ("dc_dp_pa", "dust.dc_dp_stuck", 1800.0),
    "charging_port": ("port_temp_c", "charging.port_temp_stuck", 7200.0),
}

FAULT_KINDS: dict[str, FaultKind] = {
    k.kind: k
    for k in (
        FaultKind(
            "gas_leak",
            "site",
            ("gas_pipe_monitor",),
            "gas.leak_suspected",
            "orange",
            300,
            True,
            "site",
            summary="pipe pressure sags and methane climbs in the wells nearby",
        ),
        FaultKind(
            "pressure_loss",
            "device",
            ("gas_pipe_monitor",),
            "gas.pipe_pressure_deviation",
            "yellow",
            180,
            True,
            summary="pipe pressure falls to 70 % of its operating pressure",
        ),
        FaultKind(
            "filter_clogging",
            "device",
            ("dust_collector",),
            "dust.dc_dp_deviation",
            "yellow",
            1500,
            True,
            default_duration_s=1800,
            summary="bags clog: dP climbs 600 Pa over 15 min",
        ),
        FaultKind(
            "bag_burst",
            "device",
            ("dust_collector",),
            "dust.dc_dp_sudden_drop",
            "yellow",
            90,
            True,
            summary="a bag bursts: dP drops by almost half at once",
        ),
        FaultKind(
            "smouldering_hopper",
            "device",
            ("dust_collector",),
            "dust.hopper_hot_airlock_faulted",
            "orange",
            900,
            True,
            summary="the airlock faults and the hopper heats up",
        ),
        FaultKind(
            "spark_burst",
            "device",
            ("dust_collector",),
            "dust.spark_detected",
            "orange",
            120,
            True,
            default_duration_s=60,
            summary="several sparks within a minute; extinguishing acts",
        ),
        FaultKind(
            "cooling_water_loss",
            "device",
            ("casting_machine",),
            "casting.cw_interlock",
            "red",
            90,
            True,
            default_duration_s=300,
            summary="mould cooling water fails while casting; the shut-off valve does not close",
        ),
        FaultKind(
            "charger_thermal_runaway",
            "device",
            ("charging_port",),
            "charging.thermal_runaway_precursor",
            "orange",
            900,
            True,
            summary="power drawn after full, the port heats up, then smoke",
        ),
        FaultKind(
            "gateway_offline",
            "site",
            (),
            "{sector}.comm_loss",
            "blue",
            0,
            False,
            subject="either",
            default_duration_s=1200,
            summary="a site's gateway goes offline: no data from its devices",
        ),
        FaultKind(
            "stuck_sensor",
            "device",
            tuple(STUCK),
            "{stuck_rule}",
            "blue",
            0,
            False,
            default_duration_s=0,
            summary="a sensor keeps sending the same value",
        ),
    )
}

HAZARDOUS_KINDS = tuple(k for k, v in FAULT_KINDS.items() if v.hazardous)


@dataclass
class ActiveFault:
    """One injected fault, resolved against the registry: its targets, window and expected alert."""

    index: int
    kind: str
    start_s: float
    end_s: float
    site: str
    devices: tuple[str, ...]  # every device whose readings it changes
    subjects: tuple[str, ...]  # the ids the expected alert may be about (devices, or the site)
    rule: str
    grade: str
    deadline_s: float
    hazardous: bool
    frozen: dict[str, Values] = field(default_factory=dict)  # stuck sensors: the value held
    rng: random.Random = field(default_factory=random.Random)

    @property
    def spec(self) -> FaultKind:
        return FAULT_KINDS[self.kind]

    def covers(self, device: str, t_s: float) -> bool:
        return device in self.devices and self.start_s <= t_s < self.end_s

    def apply(self, device: str, device_class: str, attrs: dict[str, float], t_s: float, v: Values) -> Values | None:
        """The values ``device`` reports at ``t_s`` under this fault (``v`` are the normal ones)."""
        dt = t_s - self.start_s
        k = self.kind
        if k == "gateway_offline":
            return None
        if k == "stuck_sensor":
            metric = STUCK[device_class][0]
            held = self.frozen.setdefault(device, {metric: v[metric]})
            return {**v, metric: held[metric]}
        if k == "gas_leak":
            if device_class == "gas_pipe_monitor":
                op = attrs["operating_pressure_mpa"]
                sag = 0.15 * min(1.0, dt / 60.0)
                return {**v, "pipe_pressure_mpa": round(float(v["pipe_pressure_mpa"]) - op * sag, 5)}
            if device_class == "gas_well_monitor":
                return {**v, "ch4_pct_lel": round(float(v["ch4_pct_lel"]) + 35.0 * min(1.0, dt / 180.0), 2)}
            return v
        if k == "pressure_loss":
            op = attrs["operating_pressure_mpa"]
            return {**v, "pipe_pressure_mpa": round(float(v["pipe_pressure_mpa"]) - 0.3 * op * min(1.0, dt / 30), 5)}
        if k == "filter_clogging":
            rise = 0.4 * attrs["dc_dp_allowed_pa"] * min(1.0, dt / 900.0)
            return {**v, "dc_dp_pa": round(float(v["dc_dp_pa"]) + rise, 1)}
        if k == "bag_burst":
            return {**v, "dc_dp_pa": round(float(v["dc_dp_pa"]) - 0.45 * attrs["dc_dp_baseline_pa"], 1)}
        if k == "smouldering_hopper":
            return {
                **v,
                "airlock_fault": True,
                "hopper_temp_c": round(float(v["hopper_temp_c"]) + 40 * min(1.0, dt / 600), 2),
            }
        if k == "spark_burst":
            sparks = 1 + int(dt // 10) % 2 if dt < 40 else 0
            return {**v, "spark_count": float(sparks), "extinguish_active": sparks > 0}
        if k == "cooling_water_loss":
            setpoint = attrs["cw_pressure_setpoint_mpa"]
            frac = 1.0 - 0.45 * min(1.0, dt / 15.0)
            return {
                **v,
                "casting_active": True,
                "shutoff_valve_closed": False,  # the stuck interlock valve
                "cw_pressure_mpa": round(setpoint * frac + self.rng.gauss(0, 0.002), 5),
                "cw_flow_m3h": round(attrs["cw_flow_setpoint_m3h"] * (1.0 - 0.5 * min(1.0, dt / 15.0)), 2),
            }
        if k == "charger_thermal_runaway":
            temp = 38.0 + 52.0 * min(1.0, dt / 720.0) + self.rng.gauss(0, 0.2)
            return {
                **v,
                "port_power_w": round(160.0 + self.rng.gauss(0, 2.0), 1),
                "full_cutoff_ok": False,
                "port_output_off": False,
                "port_temp_c": round(temp, 1),
                "charge_minutes": round(240.0 + dt / 60.0, 1),
                "smoke": dt > 600,
            }
        return v
