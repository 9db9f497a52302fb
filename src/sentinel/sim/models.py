"""Device models: what a healthy device of each class reports at a given device time.

Each device draws from its own random stream (seeded from the scenario seed and the device id), so its readings do
not depend on how many other devices there are or how a run is cut into steps. Signals, by sector:

- gas: pipe pressure follows the daily demand (sags at the morning, noon and evening peaks) with noise scaled to
  its pressure class; methane in valve wells and tunnel compartments stays near zero; restaurant detectors quiet;
- dust: collector dP sits on its baseline with a pulse-cleaning sawtooth and a slow clogging drift; inlet and
  hopper temperatures follow the day; airlock, sparks and valves idle; wet scrubbers hold level and flow;
- casting: casting cycles (about an hour on, half an hour off, staggered between machines) with cooling-water
  pressure and flow at their setpoints, launder level and casting speed while casting, the shut-off valve closed
  between casts, the pit dry;
- charging: charging sessions (plug in, constant power, a warm port, the drop to standby power at full charge and
  the cut-off, unplug) separated by idle spells.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable

from sentinel.registry.entries import DeviceEntry
from sentinel.sim.faults import Values

CST_OFFSET_S = 8 * 3600  # Asia/Shanghai: the county's day, for demand and temperatures


def _hour(t_abs_s: float) -> float:
    return ((t_abs_s + CST_OFFSET_S) / 3600.0) % 24.0


def gas_demand(hour: float) -> float:
    """0..1: town-gas demand through the day, with morning, noon and evening peaks."""
    peaks = ((7.0, 1.2, 0.6), (11.8, 1.0, 0.8), (18.3, 1.5, 1.0))
    return min(1.0, 0.15 + sum(a * math.exp(-(((hour - c) / w) ** 2)) for c, w, a in peaks))


def _daily(hour: float, low_hour: float = 5.0) -> float:
    """-1..1, lowest at ``low_hour``."""
    return -math.cos(2 * math.pi * (hour - low_hour) / 24.0)


class DeviceModel:
    """One simulated device: ``values(t_s)`` gives its healthy readings ``t_s`` device seconds into the run."""

    def __init__(self, entry: DeviceEntry, seed: int, start_s: float, horizon_s: float) -> None:
        self.id = entry.id
        self.site = entry.site
        self.device_class = entry.device_class
        self.attrs = dict(entry.attrs)
        self.interval_s = entry.expected_interval_s
        self.start_s = start_s  # absolute epoch seconds of t = 0
        self.rng = random.Random(f"{seed}:{entry.id}")
        self.phase = self.rng.random()
        self._sessions: list[tuple[float, float, float, float]] = []  # (plug, full, unplug, power)
        self._session_starts: list[float] = []
        if self.device_class == "charging_port":
            self._plan_sessions(horizon_s)
        self._sample: Callable[[float], Values] = getattr(self, f"_{self.device_class}")

    def values(self, t_s: float) -> Values:
        return self._sample(t_s)

    # -- gas ------------------------------------------------------------------------------------------------------
    def _gas_pipe_monitor(self, t: float) -> Values:
        op = self.attrs["operating_pressure_mpa"]
        demand = gas_demand(_hour(self.start_s + t))
        p = op * (1.0 - 0.04 * demand) + self.rng.gauss(0.0, 0.004 * op)
        return {"pipe_pressure_mpa": round(p, 5)}

    def _gas_well_monitor(self, t: float) -> Values:
        return {"ch4_pct_lel": round(max(0.0, self.rng.gauss(0.6, 0.35)), 2)}

    def _tunnel_gas_monitor(self, t: float) -> Values:
        return {"tunnel_gas_pct_lel": round(max(0.0, self.rng.gauss(0.5, 0.3)), 2), "tunnel_fan_on": False}

    def _restaurant_gas_detector(self, t: float) -> Values:
        return {"restaurant_gas_alarm": False, "gas_cutoff_closed": False}

    # -- dust -----------------------------------------------------------------------------------------------------
    def _dust_collector(self, t: float) -> Values:
        base = self.attrs["dc_dp_baseline_pa"]
        cleaning = ((t / 1200.0 + self.phase) % 1.0) * 15.0  # pulse cleaning every 20 min resets the cake
        drift = 0.5 * t / 3600.0  # slow clogging, Pa per hour
        day = _daily(_hour(self.start_s + t))
        return {
            "dc_dp_pa": round(base + cleaning + drift + self.rng.gauss(0.0, 4.0), 1),
            "dc_inlet_temp_c": round(32.0 + 4.0 * day + self.rng.gauss(0.0, 0.3), 2),
            "hopper_temp_c": round(36.0 + 3.0 * day + self.rng.gauss(0.0, 0.3), 2),
            "airlock_fault": False,
            "spark_count": 0.0,
            "extinguish_active": False,
            "isolation_valve_closed": False,
        }

    def _wet_collector(self, t: float) -> Values:
        level = self.attrs.get("wet_tank_design_level", 100.0) * 0.92
        flow = self.attrs.get("wet_flow_design_m3h", 55.0) * 0.98
        return {
            "wet_tank_level": round(level + self.rng.gauss(0.0, 0.8), 2),
            "wet_flow_m3h": round(flow + self.rng.gauss(0.0, 0.6), 2),
        }

    # -- casting --------------------------------------------------------------------------------------------------
    CAST_PERIOD_S = 5400.0
    CAST_ACTIVE_S = 3600.0

    def casting(self, t: float) -> bool:
        return ((t / self.CAST_PERIOD_S + self.phase) % 1.0) * self.CAST_PERIOD_S < self.CAST_ACTIVE_S

    def _casting_machine(self, t: float) -> Values:
        active = self.casting(t)
        out: Values = {
            "cw_pressure_mpa": round(self.attrs["cw_pressure_setpoint_mpa"] + self.rng.gauss(0.0, 0.0005), 5),
            "cw_flow_m3h": round(self.attrs["cw_flow_setpoint_m3h"] + self.rng.gauss(0.0, 0.6), 2),
            "valve_ready": True,
            "shutoff_valve_closed": not active,
            "furnace_cw_out_temp_c": round(30.0 + self.rng.gauss(0.0, 0.4), 2),
            "casting_active": active,
            "pit_water_level": round(max(0.0, self.rng.gauss(3.0, 1.0)), 1),
        }
        if active:  # the launder holds metal and the table moves only while casting
            mid = (self.attrs["launder_level_high_mm"] + self.attrs["launder_level_low_mm"]) / 2
            out["launder_level_mm"] = round(mid + self.rng.gauss(0.0, 1.5), 1)
            out["casting_speed_mm_min"] = round(60.0 + self.rng.gauss(0.0, 0.5), 1)
        return out

    # -- charging -------------------------------------------------------------------------------------------------
    def _plan_sessions(self, horizon_s: float) -> None:
        rng = random.Random(f"{self.rng.random()}:sessions")
        t = -rng.uniform(0, 3 * 3600)
        while t < horizon_s + 86400:
            plug = t + rng.expovariate(1 / 5400.0)
            full = plug + rng.uniform(90, 300) * 60
            unplug = full + rng.uniform(5, 90) * 60
            self._sessions.append((plug, full, unplug, rng.uniform(150, 300)))
            self._session_starts.append(plug)
            t = unplug

    def _charging_port(self, t: float) -> Values:
        ambient = 22.0 + 3.0 * _daily(_hour(self.start_s + t), 4.0)
        i = bisect.bisect_right(self._session_starts, t) - 1
        out: Values = {
            "residual_current_ma": round(max(0.0, self.rng.gauss(3.0, 0.8)), 2),
            "smoke": False,
            "full_cutoff_ok": True,
        }
        session = self._sessions[i] if i >= 0 else None
        if session is None or t >= session[2]:
            warm = 0.0
            if session is not None:  # cooling down after the last session
                warm = 12.0 * math.exp(-(t - session[2]) / 1200.0) * (1 - math.exp(-(session[1] - session[0]) / 1200))
            out.update(port_power_w=0.0, port_output_off=True, charge_minutes=0.0, port_temp_c=ambient + warm)
        else:
            plug, full, _unplug, power = session
            heat = 1.0 - math.exp(-(min(t, full) - plug) / 1200.0)
            if t < full:
                frac = (t - plug) / (full - plug)
                out.update(port_power_w=round(power * (1 - 0.15 * frac) + self.rng.gauss(0, 3.0), 1))
                out.update(port_output_off=False, port_temp_c=ambient + 12.0 * heat)
            else:  # the drop at full charge: the port cuts off and draws standby power only
                cool = math.exp(-(t - full) / 1200.0)
                out.update(port_power_w=round(max(0.0, self.rng.gauss(2.0, 0.5)), 1), port_output_off=True)
                out.update(port_temp_c=ambient + 12.0 * heat * cool)
            out["charge_minutes"] = round((t - plug) / 60.0, 1)
        out["port_temp_c"] = round(float(out["port_temp_c"]) + self.rng.gauss(0.0, 0.2), 1)
        return out
