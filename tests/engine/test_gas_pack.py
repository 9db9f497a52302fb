"""Scenarios for the town-gas / city-lifeline pack."""

from __future__ import annotations

from sentinel.engine.devices import DeviceSpec
from tests.engine.plant import Plant, const, normal_rows, wobble

PIPE = {"operating_pressure_mpa": 0.3, "pressure_class_max_mpa": 0.4}


def plant(site_overrides: dict[str, dict[str, float]] | None = None) -> Plant:
    return Plant(
        [
            DeviceSpec("pipe-1", "gas_pipe_monitor", "lane-7", "gas", 10.0, PIPE),
            DeviceSpec("well-1", "gas_well_monitor", "lane-7", "gas", 10.0),
            DeviceSpec("tunnel-1", "tunnel_gas_monitor", "tunnel-A", "gas", 10.0),
            DeviceSpec("rest-1", "restaurant_gas_detector", "food-st", "gas", 10.0),
        ],
        site_overrides=site_overrides,
    )


NORMAL = {
    "pipe-1": {"pipe_pressure_mpa": wobble(0.3, 0.01)},
    "well-1": {"ch4_pct_lel": wobble(1.0, 0.5)},
    "tunnel-1": {"tunnel_gas_pct_lel": wobble(0.5, 0.2), "tunnel_fan_on": const(0.0)},
    "rest-1": {"restaurant_gas_alarm": const(0.0), "gas_cutoff_closed": const(0.0)},
}


def test_normal_stream_raises_nothing() -> None:
    p = plant()
    rows = normal_rows(NORMAL, 1800, 10)
    for i in range(0, len(rows), 97):
        p.feed(rows[i : i + 97])
    p.tick(1805)
    assert p.emitted == []


def test_methane_rise_raises_graded_alerts_at_device_time() -> None:
    p = plant()
    p.feed(
        [("well-1", "ch4_pct_lel", 0, 2.0), ("well-1", "ch4_pct_lel", 10, 30.0), ("well-1", "ch4_pct_lel", 20, 55.0)]
    )
    assert p.of("gas.ch4_lel") == [("raise", "yellow", "well-1", 10.0), ("escalate", "orange", "well-1", 20.0)]
    assert p.of("gas.ch4_rising") == []  # one steep step is not yet a trend


def test_methane_trend_below_the_alarm_level_is_an_early_warning() -> None:
    p = plant()
    p.feed([("well-1", "ch4_pct_lel", 10 * i, 1.0 + 1.5 * i) for i in range(9)])  # 9 %LEL/min, up to 13
    assert p.of("gas.ch4_rising") == [("raise", "blue", "well-1", 70.0)]  # rising since t=10, for 60 s
    assert p.of("gas.ch4_lel") == [("raise", "blue", "well-1", 60.0)]  # 10 %LEL reached at t=60


def test_hysteresis_stops_chattering_around_the_alarm_level() -> None:
    p = plant()
    values = [12, 26, 24, 26, 24.5, 25.5, 21, 26, 24, 19, 15]
    p.feed([("well-1", "ch4_pct_lel", 10 * i, v) for i, v in enumerate(values)])
    assert p.of("gas.ch4_lel") == [
        ("raise", "blue", "well-1", 0.0),
        ("escalate", "yellow", "well-1", 10.0),
        ("de-escalate", "blue", "well-1", 90.0),  # only below the clear level 20
    ]


def test_late_reading_within_the_bound_is_evaluated_in_order() -> None:
    p = plant()
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 0, 1.0), ("tunnel-1", "tunnel_fan_on", 0, 1.0)])
    # The reading taken at t=30 arrives after the one from t=40, in the same batch.
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 40, 1.0), ("tunnel-1", "tunnel_gas_pct_lel", 30, 25.0)])
    assert p.of("gas.tunnel_gas") == [("raise", "orange", "tunnel-1", 30.0), ("clear", "none", "tunnel-1", 40.0)]
    # Older than the newest reading minus the lateness bound (300 s): counted, moves nothing.
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 400, 1.0)])
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 50, 90.0)])
    assert p.engine.stats["too_late"] == 1
    assert len(p.of("gas.tunnel_gas")) == 2


def test_late_reading_in_a_later_batch_is_evaluated_in_order() -> None:
    p = plant()
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 0, 1.0), ("tunnel-1", "tunnel_fan_on", 0, 1.0)])
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 40, 1.0)])
    # Taken at 30, delivered after the batch that held the reading from 40: the device is rewound and re-run.
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 30, 25.0)])
    assert p.of("gas.tunnel_gas") == [("raise", "orange", "tunnel-1", 30.0), ("clear", "none", "tunnel-1", 40.0)]
    assert (p.engine.stats["late"], p.engine.stats["out_of_order"]) == (1, 0)


def test_ventilation_that_does_not_start_escalates_to_red() -> None:
    p = plant()
    p.feed([("tunnel-1", "tunnel_fan_on", 0, 0.0), ("tunnel-1", "tunnel_gas_pct_lel", 0, 22.0)])
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 5, 23.0), ("tunnel-1", "tunnel_fan_on", 5, 0.0)])
    assert p.of("gas.tunnel_ventilation_interlock") == []
    p.feed([("tunnel-1", "tunnel_gas_pct_lel", 10, 23.0)])
    assert p.of("gas.tunnel_ventilation_interlock") == [("raise", "red", "tunnel-1", 10.0)]
    assert p.of("gas.tunnel_gas") == [("raise", "orange", "tunnel-1", 0.0)]


def test_ventilation_that_starts_in_time_is_no_interlock_failure() -> None:
    p = plant()
    p.feed(
        [
            ("tunnel-1", "tunnel_fan_on", 0, 0.0),
            ("tunnel-1", "tunnel_gas_pct_lel", 0, 22.0),
            ("tunnel-1", "tunnel_fan_on", 4, 1.0),
            ("tunnel-1", "tunnel_gas_pct_lel", 10, 23.0),
            ("tunnel-1", "tunnel_gas_pct_lel", 20, 23.0),
        ]
    )
    assert p.of("gas.tunnel_ventilation_interlock") == []


def test_restaurant_alarm_without_cutoff_is_red() -> None:
    p = plant()
    p.feed(
        [
            ("rest-1", "restaurant_gas_alarm", 0, 1.0),
            ("rest-1", "gas_cutoff_closed", 0, 0.0),
            ("rest-1", "restaurant_gas_alarm", 6, 1.0),
        ]
    )
    assert p.of("gas.restaurant_alarm") == [("raise", "yellow", "rest-1", 0.0)]
    assert p.of("gas.restaurant_cutoff_interlock") == [("raise", "red", "rest-1", 6.0)]


def test_pressure_drop_with_methane_nearby_is_a_suspected_leak_at_the_site() -> None:
    p = plant()
    p.feed([("pipe-1", "pipe_pressure_mpa", 0, 0.30), ("well-1", "ch4_pct_lel", 0, 1.0)])
    p.feed([("pipe-1", "pipe_pressure_mpa", 10, 0.26), ("well-1", "ch4_pct_lel", 20, 12.0)])
    assert p.of("gas.leak_suspected") == [("raise", "orange", "lane-7", 20.0)]
    assert p.of("gas.pipe_pressure_deviation") == [("raise", "blue", "pipe-1", 10.0)]


def test_methane_limits_are_per_site() -> None:
    p = plant(site_overrides={"lane-7": {"gas.ch4_lel.yellow": 15.0}})
    p.feed([("well-1", "ch4_pct_lel", 0, 16.0)])
    assert p.of("gas.ch4_lel") == [("raise", "yellow", "well-1", 0.0)]


def test_silent_device_is_graded_by_multiples_of_its_interval_and_cleared_by_data() -> None:
    p = plant()
    p.feed([("pipe-1", "pipe_pressure_mpa", 0, 0.3)])
    p.tick(29)
    assert p.of("gas.comm_loss") == []
    p.tick(30)
    p.tick(100)
    p.feed([("pipe-1", "pipe_pressure_mpa", 101, 0.3)])
    assert p.of("gas.comm_loss") == [
        ("raise", "blue", "pipe-1", 30.0),
        ("escalate", "yellow", "pipe-1", 100.0),
        ("clear", "none", "pipe-1", 101.0),
    ]
