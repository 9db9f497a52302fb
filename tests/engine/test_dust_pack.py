"""Scenarios for the dust-explosion-hazard pack."""

from __future__ import annotations

from sentinel.engine.devices import DeviceSpec
from tests.engine.plant import Plant, const, normal_rows, wobble

COLLECTOR = {"dc_dp_baseline_pa": 1000.0, "dc_dp_allowed_pa": 1500.0}
WET = {"wet_tank_design_level": 100.0, "wet_flow_design_m3h": 50.0}


def plant() -> Plant:
    return Plant(
        [
            DeviceSpec("dc-1", "dust_collector", "mill-3", "dust", 5.0, COLLECTOR),
            DeviceSpec("wet-1", "wet_collector", "mill-3", "dust", 5.0, WET),
        ]
    )


NORMAL = {
    "dc-1": {
        "dc_dp_pa": wobble(1000, 40),
        "dc_inlet_temp_c": wobble(40, 2),
        "hopper_temp_c": wobble(35, 1),
        "airlock_fault": const(0),
        "spark_count": const(0),
        "extinguish_active": const(0),
        "isolation_valve_closed": const(0),
    },
    "wet-1": {"wet_tank_level": wobble(95, 1), "wet_flow_m3h": wobble(48, 0.5)},
}


def test_normal_stream_raises_nothing() -> None:
    p = plant()
    rows = normal_rows(NORMAL, 3600, 5)
    for i in range(0, len(rows), 500):
        p.feed(rows[i : i + 500])
    p.tick(3601)
    assert p.emitted == []


def test_dp_off_baseline_is_blue_at_once_and_yellow_when_sustained() -> None:
    p = plant()
    # Allowed 1500 Pa: 20 % of it is 300 Pa off the 1000 Pa baseline (clogging: rising dP).
    p.feed([("dc-1", "dc_dp_pa", 10 * i, 1000 + 20 * i) for i in range(16)])  # 1300 at t=150
    p.feed([("dc-1", "dc_dp_pa", 150 + 30 * i, 1320.0 + (i % 2)) for i in range(1, 12)])
    assert p.of("dust.dc_dp_deviation") == [("raise", "blue", "dc-1", 150.0), ("escalate", "yellow", "dc-1", 450.0)]


def test_burst_bag_is_a_sudden_drop() -> None:
    p = plant()
    p.feed([("dc-1", "dc_dp_pa", 0, 1000.0), ("dc-1", "dc_dp_pa", 10, 990.0), ("dc-1", "dc_dp_pa", 20, 900.0)])
    assert p.of("dust.dc_dp_sudden_drop") == [("raise", "yellow", "dc-1", 20.0)]


def test_hysteresis_on_hopper_temperature() -> None:
    p = plant()
    p.feed([("dc-1", "hopper_temp_c", 10 * i, v) for i, v in enumerate([65, 70.5, 69, 70.2, 67, 70.1, 65.5])])
    assert p.of("dust.hopper_temp_high") == [
        ("raise", "blue", "dc-1", 0.0),
        ("escalate", "yellow", "dc-1", 10.0),
        ("de-escalate", "blue", "dc-1", 60.0),
    ]


def test_sparks_counted_in_a_window() -> None:
    p = plant()
    p.feed([("dc-1", "spark_count", 0, 0), ("dc-1", "extinguish_active", 0, 1.0), ("dc-1", "spark_count", 1, 1)])
    p.feed([("dc-1", "spark_count", 2, 2), ("dc-1", "spark_count", 3, 0)])
    assert p.of("dust.spark_detected") == [("raise", "yellow", "dc-1", 1.0), ("escalate", "orange", "dc-1", 2.0)]
    p.feed([("dc-1", "spark_count", 61, 0)])  # a new window, no sparks
    assert p.of("dust.spark_detected")[-1] == ("clear", "none", "dc-1", 61.0)
    assert p.of("dust.spark_extinguish_interlock") == []


def test_hot_inlet_with_isolation_valve_that_does_not_close_is_red() -> None:
    p = plant()
    p.feed(
        [
            ("dc-1", "isolation_valve_closed", 0, 0.0),
            ("dc-1", "dc_inlet_temp_c", 0, 72.0),
            ("dc-1", "dc_inlet_temp_c", 3, 74.0),
        ]
    )
    assert p.of("dust.inlet_temp_high") == [("raise", "yellow", "dc-1", 0.0)]
    assert p.of("dust.inlet_isolation_interlock") == []
    p.feed([("dc-1", "dc_inlet_temp_c", 6, 75.0)])
    assert p.of("dust.inlet_isolation_interlock") == [("raise", "red", "dc-1", 6.0)]
    p.feed([("dc-1", "isolation_valve_closed", 7, 1.0)])
    assert p.of("dust.inlet_isolation_interlock")[-1] == ("clear", "none", "dc-1", 7.0)


def test_late_reading_within_the_bound_is_evaluated_in_order() -> None:
    p = plant()
    p.feed([("dc-1", "hopper_temp_c", 0, 40.0)])
    p.feed(
        [("dc-1", "hopper_temp_c", 30, 40.0), ("dc-1", "airlock_fault", 20, 1.0), ("dc-1", "hopper_temp_c", 10, 62.0)]
    )
    # In device-time order: hot at 10, airlock faulted at 20 (composite holds), cooled at 30.
    assert p.of("dust.hopper_hot_airlock_faulted") == [
        ("raise", "orange", "dc-1", 20.0),
        ("clear", "none", "dc-1", 30.0),
    ]


def test_late_reading_in_a_later_batch_is_evaluated_in_order() -> None:
    p = plant()
    p.feed([("dc-1", "hopper_temp_c", 0, 40.0), ("dc-1", "hopper_temp_c", 30, 40.0)])
    p.feed([("dc-1", "airlock_fault", 20, 1.0)])
    p.feed([("dc-1", "hopper_temp_c", 10, 62.0)])  # from 10, delivered after readings from 20 and 30
    assert p.of("dust.hopper_hot_airlock_faulted") == [
        ("raise", "orange", "dc-1", 20.0),
        ("clear", "none", "dc-1", 30.0),
    ]


def test_late_reading_that_breaks_a_sustained_condition_corrects_the_alert() -> None:
    p = plant()
    p.feed([("wet-1", "wet_flow_m3h", 10 * i, 39.0) for i in range(7) if i != 3])
    assert p.of("dust.wet_flow_low") == [("raise", "yellow", "wet-1", 60.0)]
    # The reading from 30 was normal: in device-time order the low flow held only from 40 to 60, too short.
    p.feed([("wet-1", "wet_flow_m3h", 30, 45.0)])
    assert p.of("dust.wet_flow_low") == [("raise", "yellow", "wet-1", 60.0), ("clear", "none", "wet-1", 60.0)]


def test_wet_flow_low_only_when_sustained() -> None:
    p = plant()
    p.feed([("wet-1", "wet_flow_m3h", 10 * i, 39.0) for i in range(5)])
    assert p.of("dust.wet_flow_low") == []
    p.feed([("wet-1", "wet_flow_m3h", 60, 39.5)])
    assert p.of("dust.wet_flow_low") == [("raise", "yellow", "wet-1", 60.0)]
