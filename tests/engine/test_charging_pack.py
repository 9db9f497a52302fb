"""Scenarios for the centralised e-bike charging pack."""

from __future__ import annotations

from sentinel.engine.devices import DeviceSpec
from tests.engine.plant import Plant, const, normal_rows, wobble


def plant() -> Plant:
    return Plant([DeviceSpec(f"port-{i}", "charging_port", "estate-9", "charging", 10.0) for i in range(3)])


def port(i: int) -> dict[str, object]:
    return {
        "port_power_w": wobble(250 + 20 * i, 30),
        "port_temp_c": wobble(35, 1),
        "residual_current_ma": wobble(5, 1),
        "charge_minutes": lambda t: t / 60,
        "smoke": const(0),
        "full_cutoff_ok": const(1),
        "port_output_off": const(0),
    }


def test_normal_charging_raises_nothing() -> None:
    p = plant()
    rows = normal_rows({f"port-{i}": port(i) for i in range(3)}, 3600, 10)  # type: ignore[misc]
    for i in range(0, len(rows), 400):
        p.feed(rows[i : i + 400])
    p.tick(3601)
    assert p.emitted == []


def test_port_overheating_without_cutoff_escalates_to_red() -> None:
    p = plant()
    p.feed(
        [
            ("port-1", "port_output_off", 0, 0.0),
            ("port-1", "port_temp_c", 0, 58.0),
            ("port-1", "port_temp_c", 60, 63.0),
            ("port-1", "port_temp_c", 120, 71.0),
        ]
    )
    assert p.of("charging.port_temp") == [("raise", "blue", "port-1", 60.0), ("escalate", "yellow", "port-1", 120.0)]
    p.feed([("port-1", "port_temp_c", 125, 72.0)])
    assert p.of("charging.overtemp_cutoff_interlock") == [("raise", "red", "port-1", 125.0)]


def test_hysteresis_stops_chattering_on_port_temperature() -> None:
    p = plant()
    p.feed([("port-0", "port_temp_c", 60 * i, v) for i, v in enumerate([59, 60.5, 59.5, 60.2, 58, 60.1, 54])])
    assert p.of("charging.port_temp") == [("raise", "blue", "port-0", 60.0), ("clear", "none", "port-0", 360.0)]


def test_smoke_and_a_hot_port_at_one_site_is_red_for_the_site() -> None:
    p = plant()
    p.feed([("port-0", "smoke", 0, 1.0), ("port-2", "port_temp_c", 5, 75.0), ("port-2", "port_output_off", 5, 1.0)])
    assert p.of("charging.smoke") == [("raise", "orange", "port-0", 0.0)]
    assert p.of("charging.site_fire_suspected") == [("raise", "red", "estate-9", 5.0)]


def test_session_longer_than_eight_then_ten_hours() -> None:
    p = plant()
    p.feed([("port-0", "charge_minutes", 60 * m, float(m)) for m in (470, 480, 590, 600)])
    assert p.of("charging.charge_too_long") == [
        ("raise", "blue", "port-0", 28800.0),
        ("escalate", "yellow", "port-0", 36000.0),
    ]


def test_late_reading_within_the_bound_is_evaluated_in_order() -> None:
    p = plant()
    p.feed([("port-0", "residual_current_ma", 0, 5.0)])
    p.feed([("port-0", "residual_current_ma", 20, 5.0), ("port-0", "residual_current_ma", 10, 35.0)])
    assert p.of("charging.residual_current") == [("raise", "yellow", "port-0", 10.0), ("clear", "none", "port-0", 20.0)]


def test_late_reading_in_a_later_batch_is_evaluated_in_order() -> None:
    p = plant()
    p.feed([("port-0", "residual_current_ma", 0, 5.0), ("port-0", "residual_current_ma", 20, 5.0)])
    p.feed([("port-0", "residual_current_ma", 10, 35.0)])  # from 10, delivered after the reading from 20
    assert p.of("charging.residual_current") == [("raise", "yellow", "port-0", 10.0), ("clear", "none", "port-0", 20.0)]
    assert p.engine.stats["late"] == 1


def test_power_after_full_with_a_warm_port_is_a_runaway_precursor() -> None:
    p = plant()
    p.feed(
        [
            ("port-0", "full_cutoff_ok", 0, 0.0),
            ("port-0", "port_power_w", 0, 120.0),
            ("port-0", "port_temp_c", 0, 52.0),
            ("port-0", "port_temp_c", 30, 52.5),
            ("port-0", "port_temp_c", 60, 53.0),
        ]
    )
    assert p.of("charging.full_cutoff_failed") == [("raise", "yellow", "port-0", 0.0)]
    assert p.of("charging.thermal_runaway_precursor") == [("raise", "orange", "port-0", 60.0)]
