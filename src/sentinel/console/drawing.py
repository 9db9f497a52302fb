"""Inline SVG drawn on the server: the readings chart of an alert and the county map. No script, no tiles from
outside: the map projects sites (Web Mercator) onto a plain background, and only when a tile URL is configured
(an intranet map service) lays those tiles underneath."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

GRADE_COLOURS = {
    "red": "#c62828",
    "orange": "#ef6c00",
    "yellow": "#f9a825",
    "blue": "#1565c0",
    "normal": "#2e7d32",
}


@dataclass(frozen=True)
class LevelLine:
    value: float
    grade: str
    label: str


def chart(
    points: list[tuple[datetime, float]],
    levels: list[LevelLine],
    marker: datetime | None,
    tz: ZoneInfo,
    unit: str = "",
    width: int = 760,
    height: int = 260,
) -> str:
    """A line chart of ``points`` with a dashed line per level and a vertical line at ``marker`` (the raise)."""
    left, right, top, bottom = 64, 150, 14, 30
    values = [v for _, v in points] + [lv.value for lv in levels]
    lo, hi = min(values, default=0.0), max(values, default=1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    times = [t.timestamp() for t, _ in points] + ([marker.timestamp()] if marker else [])
    t0, t1 = min(times, default=0.0), max(times, default=1.0)
    if t1 - t0 < 1:
        t0, t1 = t0 - 30, t1 + 30
    w, h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * w

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * h

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fff" stroke="#bbb"/>',
    ]
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{v:.4g}</text>')
    for i in range(5):
        tick = t0 + (t1 - t0) * i / 4
        label = datetime.fromtimestamp(tick, tz).strftime("%H:%M:%S")
        out.append(f'<text x="{x(tick):.1f}" y="{height - 10}" text-anchor="middle" class="tick">{label}</text>')
    for lv in levels:
        colour = GRADE_COLOURS.get(lv.grade, "#555")
        yy = y(lv.value)
        out.append(
            f'<line x1="{left}" x2="{left + w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{colour}" stroke-width="1.5" '
            f'stroke-dasharray="6 4"/><text x="{left + w + 6}" y="{yy + 4:.1f}" fill="{colour}" class="tick">'
            f"{escape(lv.label)} {lv.value:g}{escape(unit)}</text>"
        )
    if marker is not None:
        mx = x(marker.timestamp())
        out.append(
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + h}" stroke="#333" stroke-dasharray="2 3"/>'
        )
    if points:
        path = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in points)
        out.append(f'<polyline fill="none" stroke="#263238" stroke-width="2" points="{path}"/>')
        for t, v in points:
            crossed = next((lv for lv in sorted(levels, key=lambda lv: -lv.value) if v >= lv.value), None)
            if crossed is not None:
                colour = GRADE_COLOURS.get(crossed.grade, "#555")
                out.append(f'<circle cx="{x(t.timestamp()):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
    out.append("</svg>")
    return "".join(out)


def mercator(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """Web Mercator pixel coordinates at ``zoom`` (256-pixel tiles)."""
    size = 256 * 2**zoom
    lat = max(min(lat, 85.05), -85.05)
    s = math.sin(math.radians(lat))
    return (lon + 180) / 360 * size, (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * size


def county_map(
    sites: list[dict[str, Any]], labels: dict[str, str], tile_url: str | None, width: int = 960, height: int = 600
) -> str:
    """Sites as coloured dots linking to their page, township names at the centre of their sites."""
    placed = [s for s in sites if s["lat"] is not None and s["lon"] is not None]
    if not placed:
        return ""
    zoom = 18
    while zoom > 2:
        xs, ys = zip(*(mercator(s["lat"], s["lon"], zoom) for s in placed), strict=True)
        if max(xs) - min(xs) <= width * 0.8 and max(ys) - min(ys) <= height * 0.8:
            break
        zoom -= 1
    xs, ys = zip(*(mercator(s["lat"], s["lon"], zoom) for s in placed), strict=True)
    ox, oy = (max(xs) + min(xs)) / 2 - width / 2, (max(ys) + min(ys)) / 2 - height / 2
    out = [
        f'<svg id="county-map" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink" role="img">',
        f'<rect width="{width}" height="{height}" fill="#eef2f0"/>',
    ]
    if tile_url:
        for tx in range(int(ox // 256), int((ox + width) // 256) + 1):
            for ty in range(int(oy // 256), int((oy + height) // 256) + 1):
                href = tile_url.replace("{z}", str(zoom)).replace("{x}", str(tx)).replace("{y}", str(ty))
                out.append(
                    f'<image href="{escape(href)}" x="{tx * 256 - ox:.0f}" y="{ty * 256 - oy:.0f}" '
                    f'width="256" height="256"/>'
                )
    points = _spread([(px - ox, py - oy) for px, py in zip(xs, ys, strict=True)])
    towns: dict[str, list[tuple[float, float]]] = {}
    for s, (px, py) in zip(placed, points, strict=True):
        towns.setdefault(s["township"], []).append((px, py))
    taken: list[tuple[float, float]] = []
    for town, pts in sorted(towns.items()):
        cx = sum(p[0] for p in pts) / len(pts)
        cy = max(min(p[1] for p in pts) - 24, 16)
        while any(abs(cx - tx) < 90 and abs(cy - ty) < 18 for tx, ty in taken):
            cy -= 18  # two townships around the same place: stack their names
        taken.append((cx, cy))
        out.append(f'<text x="{cx:.0f}" y="{cy:.0f}" class="town" text-anchor="middle">{escape(town)}</text>')
    order = sorted(zip(placed, points, strict=True), key=lambda item: _rank(item[0]["worst_grade"]))
    for s, (px, py) in order:
        grade = s["worst_grade"]
        colour = GRADE_COLOURS.get(grade, GRADE_COLOURS["normal"])
        radius = 11 if grade in ("red", "orange") else 8
        title = f"{s['name']} ({s['site']}) · {labels.get(grade, grade)} · {s['open_alerts']}"
        out.append(
            f'<a href="/sites/{escape(s["site"])}" class="site-dot" data-site="{escape(s["site"])}" '
            f'data-grade="{grade}"><title>{escape(title)}</title>'
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{radius}" fill="{colour}" stroke="#fff" stroke-width="2"/>'
        )
        if grade in ("red", "orange"):  # an alerting site names itself, with its grade in words
            out.append(
                f'<text x="{px + radius + 4:.1f}" y="{py + 4:.1f}" class="site-label">{escape(s["name"])} · '
                f"{escape(labels.get(grade, grade))}</text>"
            )
        out.append("</a>")
    out.append("</svg>")
    return "".join(out)


def _spread(points: list[tuple[float, float]], gap: float = 20.0) -> list[tuple[float, float]]:
    """Sites closer than ``gap`` pixels placed around a small ring, so every one stays visible and clickable."""
    out = list(points)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (px, py) in enumerate(points):
        groups.setdefault((round(px / gap), round(py / gap)), []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        cx = sum(points[i][0] for i in members) / len(members)
        cy = sum(points[i][1] for i in members) / len(members)
        ring = gap * max(1.0, len(members) / 6)
        for k, i in enumerate(members):
            angle = 2 * math.pi * k / len(members)
            out[i] = (cx + ring * math.cos(angle), cy + ring * math.sin(angle))
    return out


def _rank(grade: str) -> int:
    return {"red": 4, "orange": 3, "yellow": 2, "blue": 1}.get(grade, 0)
