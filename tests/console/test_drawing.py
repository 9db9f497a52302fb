"""The console's server-drawn SVG: the county map places sites by coordinates (sites at one place stay apart),
colours them by their worst open alert, names townships, and lays intranet tiles underneath only when a tile URL is
configured; the readings chart draws one dashed line per level."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sentinel.console.drawing import GRADE_COLOURS, LevelLine, chart, county_map


def site(name: str, lat: float, lon: float, grade: str = "normal", town: str = "城关镇") -> dict[str, Any]:
    return {
        "site": name,
        "name": name,
        "township": town,
        "lat": lat,
        "lon": lon,
        "worst_grade": grade,
        "open_alerts": 0,
    }


def circles(svg: str) -> dict[str, tuple[float, float, str]]:
    found = re.findall(r'data-site="([^"]+)".*?<circle cx="([\d.-]+)" cy="([\d.-]+)" r="\d+" fill="(#\w+)"', svg)
    return {s: (float(x), float(y), fill) for s, x, y, fill in found}


def test_sites_are_placed_by_coordinates_and_coloured_by_grade() -> None:
    svg = county_map(
        [site("west", 31.50, 120.20, "red", "西镇"), site("east", 31.50, 120.40), site("north", 31.60, 120.30)],
        {"red": "一级 红色"},
        None,
    )
    placed = circles(svg)
    assert placed["west"][0] < placed["north"][0] < placed["east"][0]
    assert placed["north"][1] < placed["west"][1], "north is up"
    assert placed["west"][2] == GRADE_COLOURS["red"]
    assert placed["east"][2] == GRADE_COLOURS["normal"]
    assert "西镇" in svg
    assert "城关镇" in svg
    assert "一级 红色" in svg, "an alerting site names its grade in words"
    assert "<image" not in svg, "no tiles without a tile URL"


def test_sites_at_one_place_are_spread_and_tiles_come_only_from_the_configured_url() -> None:
    svg = county_map([site("a", 31.5, 120.3), site("b", 31.5, 120.3)], {}, "http://tiles.intranet/{z}/{x}/{y}.png")
    placed = circles(svg)
    assert abs(placed["a"][0] - placed["b"][0]) + abs(placed["a"][1] - placed["b"][1]) >= 20
    tiles = re.findall(r'<image href="([^"]+)"', svg)
    assert tiles
    assert all(re.fullmatch(r"http://tiles\.intranet/\d+/\d+/\d+\.png", t) for t in tiles)


def test_the_chart_draws_each_level_and_the_readings() -> None:
    t0 = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
    points = [(t0 + timedelta(seconds=i), v) for i, v in enumerate([2.0, 30.0, 55.0])]
    levels = [LevelLine(25.0, "yellow", "三级 黄色"), LevelLine(50.0, "orange", "二级 橙色")]
    svg = chart(points, levels, t0 + timedelta(seconds=2), ZoneInfo("Asia/Shanghai"), "%LEL")
    assert svg.count('stroke-dasharray="6 4"') == 2
    assert "二级 橙色 50%LEL" in svg
    assert "12:00:00" in svg, "times in the display time zone"
    assert len(re.search(r'points="([^"]+)"', svg).group(1).split()) == 3  # type: ignore[union-attr]
