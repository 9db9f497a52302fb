"""One scenario both readings dialects must answer identically through the views (queries above them are the same)."""

from __future__ import annotations

from typing import Any

import psycopg

EXPECTED_1M = [
    ("s1", "d1", "pipe_pressure_mpa", 6, 2.5, 0.0, 5.0),
    ("s1", "d1", "pipe_pressure_mpa", 6, 8.5, 6.0, 11.0),
]


def fill_and_query(conn: psycopg.Connection[Any]) -> tuple[int, list[tuple[Any, ...]]]:
    """Twelve readings 10 s apart over two minutes; returns (rows in v_readings, v_readings_1m without bucket)."""
    conn.execute("INSERT INTO sites (site_id, name, township, sector) VALUES ('s1', 'Site 1', 'T1', 'gas')")
    conn.execute("INSERT INTO devices (device, site_id, device_class) VALUES ('d1', 's1', 'gas_pipe_monitor')")
    conn.execute("INSERT INTO metrics (metric, unit) VALUES ('pipe_pressure_mpa', 'MPa') ON CONFLICT DO NOTHING")
    device_id = conn.execute("SELECT device_id FROM devices WHERE device = 'd1'").fetchone()
    metric_id = conn.execute("SELECT metric_id FROM metrics WHERE metric = 'pipe_pressure_mpa'").fetchone()
    assert device_id is not None
    assert metric_id is not None
    conn.execute(
        "INSERT INTO readings SELECT '2026-11-28 08:00:00+00'::timestamptz + i * interval '10 seconds', %s, %s, i"
        " FROM generate_series(0, 11) AS i",
        (device_id[0], metric_id[0]),
    )
    raw = conn.execute("SELECT count(*) FROM v_readings WHERE device = 'd1'").fetchone()
    rows = conn.execute(
        "SELECT site, device, metric, n, avg_value, min_value, max_value FROM v_readings_1m ORDER BY bucket"
    ).fetchall()
    return (int(raw[0]) if raw else 0), [tuple(r) for r in rows]
