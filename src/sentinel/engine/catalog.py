"""The metric catalogue and the four-colour grade scale the rule engine speaks.

Metric indices are dense ``int16`` values; a micro-batch's ``metric`` column holds them. The order below is part
of the contract (append new metrics at the end so stored indices keep their meaning). The ids, names and units
follow DOMAIN.md. ``kind`` says how a value arrives: ``number``; ``bool`` (1.0 / 0.0); ``count`` (detections
per message).

Grades are small integers, most severe highest, so "escalate" is simply "larger": 0 none, 1 blue, 2 yellow,
3 orange, 4 red (DOMAIN.md "Alert grades": 一级 red … 四级 blue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Metric:
    """One measured quantity: stable id, Chinese name, unit and how values arrive."""

    id: str
    zh: str
    unit: str
    kind: str = "number"


METRICS: Final[tuple[Metric, ...]] = (
    # Town gas and city lifeline
    Metric("pipe_pressure_mpa", "管网压力", "MPa"),
    Metric("ch4_pct_lel", "相邻地下空间 / 阀门井甲烷", "%LEL"),
    Metric("tunnel_gas_pct_lel", "综合管廊天然气舱", "%LEL"),
    Metric("restaurant_gas_alarm", "餐饮场所可燃气体报警", "", "bool"),
    Metric("gas_cutoff_closed", "燃气切断阀已关闭", "", "bool"),
    Metric("tunnel_fan_on", "事故通风已启动", "", "bool"),
    # Dust-explosion-hazard plants
    Metric("dc_dp_pa", "除尘器进出口压差", "Pa"),
    Metric("dc_inlet_temp_c", "除尘器进风口温度", "°C"),
    Metric("hopper_temp_c", "灰斗温度", "°C"),
    Metric("airlock_fault", "锁气卸灰故障", "", "bool"),
    Metric("spark_count", "火花探测", "count", "count"),
    Metric("extinguish_active", "火花熄灭装置动作", "", "bool"),
    Metric("isolation_valve_closed", "隔离阀已关闭", "", "bool"),
    Metric("wet_tank_level", "湿式除尘水位", "%"),
    Metric("wet_flow_m3h", "湿式除尘循环水流量", "m³/h"),
    # Aluminium deep-well casting
    Metric("cw_pressure_mpa", "结晶器冷却水进水压力", "MPa"),
    Metric("cw_flow_m3h", "冷却水流量", "m³/h"),
    Metric("launder_level_mm", "流槽铝液液位", "mm"),
    Metric("valve_ready", "快速切断 / 紧急排放 / 断开装置 状态", "", "bool"),
    Metric("shutoff_valve_closed", "快速切断阀已关闭", "", "bool"),
    Metric("furnace_cw_out_temp_c", "炉窑冷却出水温度", "°C"),
    Metric("casting_active", "铸造状态", "", "bool"),
    Metric("casting_speed_mm_min", "铸造速度", "mm/min"),
    Metric("pit_water_level", "铸井水位", "mm"),
    # Centralised e-bike charging
    Metric("port_power_w", "端口功率", "W"),
    Metric("port_temp_c", "端口温度", "°C"),
    Metric("residual_current_ma", "剩余电流", "mA"),
    Metric("charge_minutes", "单次充电时长", "min"),
    Metric("smoke", "烟感", "", "bool"),
    Metric("full_cutoff_ok", "充满自动断电", "", "bool"),
    Metric("port_output_off", "端口已断电", "", "bool"),
)

METRIC_INDEX: Final[dict[str, int]] = {m.id: i for i, m in enumerate(METRICS)}

GRADE_NAMES: Final[tuple[str, ...]] = ("none", "blue", "yellow", "orange", "red")
GRADE_ZH: Final[tuple[str, ...]] = ("无", "蓝", "黄", "橙", "红")
GRADE_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(GRADE_NAMES)}
ALERT_GRADES: Final[tuple[str, ...]] = GRADE_NAMES[1:]

# The grade moves of the output, by (from, to) grade.
RAISE, ESCALATE, DEESCALATE, CLEAR = "raise", "escalate", "de-escalate", "clear"


def grade_move(from_grade: int, to_grade: int) -> str:
    """Name a grade move: raise (from none), clear (to none), escalate (up) or de-escalate (down)."""
    if from_grade == 0:
        return RAISE
    if to_grade == 0:
        return CLEAR
    return ESCALATE if to_grade > from_grade else DEESCALATE


def metric_index(name: str) -> int:
    """The dense index of a metric id; KeyError names the id when it is not in the catalogue."""
    try:
        return METRIC_INDEX[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}") from None
