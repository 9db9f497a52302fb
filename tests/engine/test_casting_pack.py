"""Scenarios for the aluminium deep-well casting pack."""

from __future__ import annotations

from sentinel.engine.devices import DeviceSpec
from tests.engine.plant import Plant, const, normal_rows, wobble

MACHINE = {
    "cw_pressure_setpoint_mpa": 0.5,
    "cw_flow_setpoint_m3h": 100.0,
    "launder_level_high_mm": 200.0,
    "launder_level_low_mm": 50.0,
}


def plant(attrs: dict[str, float] | None = None) -> Plant:
    return Plant([DeviceSpec("cm-1", "casting_machine", "foundry-1", "casting", 1.0, {**MACHINE, **(attrs or {})})])


NORMAL = {
    "cm-1": {
        "cw_pressure_mpa": wobble(0.5, 0.005),
        "cw_flow_m3h": wobble(100, 1),
        "launder_level_mm": wobble(120, 5),
        "valve_ready": const(1),
        "shutoff_valve_closed": const(0),
        "furnace_cw_out_temp_c": wobble(30, 1),
        "casting_active": const(1),
        "casting_speed_mm_min": wobble(60, 1),
        "pit_water_level": const(0),
    }
}


def test_normal_casting_raises_nothing() -> None:
    p = plant()
    rows = normal_rows(NORMAL, 900, 1)
    for i in range(0, len(rows), 1000):
        p.feed(rows[i : i + 1000])
    p.tick(901)
    assert p.emitted == []


def active(t: float) -> list[tuple[str, str, float, float]]:
    return [("cm-1", "casting_active", t, 1.0), ("cm-1", "shutoff_valve_closed", t, 0.0)]


def test_cooling_water_loss_while_casting_is_red_and_an_idle_interlock_escalates() -> None:
    p = plant()
    p.feed([*active(0), ("cm-1", "cw_pressure_mpa", 0, 0.50)])
    p.feed([("cm-1", "cw_pressure_mpa", 1, 0.44), ("cm-1", "cw_pressure_mpa", 2, 0.38)])
    assert p.of("casting.cw_pressure_low") == [("raise", "blue", "cm-1", 1.0), ("escalate", "orange", "cm-1", 2.0)]
    assert p.of("casting.cw_loss_while_casting") == [("raise", "red", "cm-1", 2.0)]
    p.feed([("cm-1", "cw_pressure_mpa", 4, 0.37)])
    assert p.of("casting.cw_interlock") == []
    p.feed([("cm-1", "cw_pressure_mpa", 7, 0.36)])  # 5 s after the trip and the valve has not closed
    assert p.of("casting.cw_interlock") == [("raise", "red", "cm-1", 7.0)]


def test_interlock_that_acts_in_time_is_not_red() -> None:
    p = plant()
    p.feed(
        [
            *active(0),
            ("cm-1", "cw_pressure_mpa", 0, 0.38),
            ("cm-1", "shutoff_valve_closed", 2, 1.0),
            ("cm-1", "cw_pressure_mpa", 6, 0.38),
            ("cm-1", "cw_pressure_mpa", 9, 0.38),
        ]
    )
    assert p.of("casting.cw_interlock") == []


def test_hysteresis_stops_chattering_at_the_warning_ratio() -> None:
    p = plant()
    values = [0.50, 0.449, 0.451, 0.449, 0.455, 0.448, 0.47]  # 0.45 = 90 % of 0.5; clear at 93 % = 0.465
    p.feed([("cm-1", "cw_pressure_mpa", 10 * i, v) for i, v in enumerate(values)])
    assert p.of("casting.cw_pressure_low") == [("raise", "blue", "cm-1", 10.0), ("clear", "none", "cm-1", 60.0)]


def test_setpoint_is_per_device_and_typical_ratio_overridable() -> None:
    p = plant({"cw_pressure_setpoint_mpa": 0.4, "casting.cw_pressure_low.blue": 0.95})
    p.feed([("cm-1", "cw_pressure_mpa", 0, 0.379)])  # 94.75 % of 0.4
    assert p.of("casting.cw_pressure_low") == [("raise", "blue", "cm-1", 0.0)]


def test_late_reading_within_the_bound_is_evaluated_in_order() -> None:
    p = plant()
    p.feed([*active(0), ("cm-1", "pit_water_level", 0, 0.0)])
    p.feed([("cm-1", "pit_water_level", 20, 0.0), ("cm-1", "pit_water_level", 10, 80.0)])
    assert p.of("casting.pit_water_while_casting") == [("raise", "red", "cm-1", 10.0), ("clear", "none", "cm-1", 20.0)]


def test_late_reading_in_a_later_batch_is_evaluated_in_order() -> None:
    p = plant()
    p.feed([*active(0), ("cm-1", "pit_water_level", 0, 0.0)])
    p.feed([("cm-1", "pit_water_level", 20, 0.0)])
    p.feed([("cm-1", "pit_water_level", 10, 80.0)])  # from 10, delivered after the reading from 20
    assert p.of("casting.pit_water_while_casting") == [("raise", "red", "cm-1", 10.0), ("clear", "none", "cm-1", 20.0)]
    assert p.engine.stats["late"] == 1


def test_casting_with_a_safety_device_not_ready_is_red() -> None:
    p = plant()
    p.feed([("cm-1", "valve_ready", 0, 0.0), ("cm-1", "casting_active", 0, 0.0), ("cm-1", "casting_active", 30, 1.0)])
    assert p.of("casting.valve_not_ready") == [("raise", "yellow", "cm-1", 0.0)]
    assert p.of("casting.casting_without_valves") == [("raise", "red", "cm-1", 30.0)]


def test_stuck_pressure_sensor() -> None:
    p = plant()
    p.feed([("cm-1", "cw_pressure_mpa", 60 * i, 0.5) for i in range(12)])
    assert p.of("casting.cw_pressure_stuck") == [("raise", "blue", "cm-1", 600.0)]
    p.feed([("cm-1", "cw_pressure_mpa", 721, 0.501)])
    assert p.of("casting.cw_pressure_stuck")[-1] == ("clear", "none", "cm-1", 721.0)
