"""A county in miniature for the wall displays: sites of every sector in three townships, an hour of telemetry sent
through the running ingest service (good readings and some bad input), and the alert, alert-event, device-event and
hazard rows the alert and hazard engines would write: one alert of each grade, a flood (12 new alerts within
10 minutes at one desk), a chattering alert, open, overdue and closed hazards.

Every time is relative to ``now`` so the boards' default range (the last 6 hours) holds it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from sentinel.registry.entries import DeviceEntry, RegistryFile, Sector, SiteEntry
from sentinel.registry.repository import create_api_key, upsert_registry
from sentinel.testing.registry import SECTOR_CLASS
from sentinel.testing.service import running_service
from sentinel.wire import Telemetry, encode_telemetry

TOWNSHIPS = ("城关镇", "东港镇", "西山乡")
SECTOR_METRICS: dict[Sector, tuple[str, ...]] = {
    "gas": ("pipe_pressure_mpa", "ch4_pct_lel"),
    "dust": ("dc_dp_pa", "hopper_temp_c"),
    "casting": ("cw_pressure_mpa",),
    "charging": ("port_temp_c",),
}
GRADES = ("red", "orange", "yellow", "blue")
READING_MINUTES = 60


def registry() -> RegistryFile:
    sites: list[SiteEntry] = []
    devices: list[DeviceEntry] = []
    for s, sector in enumerate(SECTOR_METRICS):
        for t, township in enumerate(TOWNSHIPS):
            site = f"{sector}-{t}"
            sites.append(
                SiteEntry(site, f"{township}{sector}站点{t}", township, sector, 31.5 + 0.02 * t, 120.3 + 0.02 * s)
            )
            devices += [DeviceEntry(f"{site}-d{j}", site, SECTOR_CLASS[sector], 60.0) for j in range(2)]
    # A quiet site: no alerts, so the map shows it green.
    sites.append(SiteEntry("dust-quiet", "安静站点", TOWNSHIPS[2], "dust", 31.56, 120.36))
    devices.append(DeviceEntry("dust-quiet-d0", "dust-quiet", "dust_collector", 60.0))
    # A site with no coordinates: it must not break the map (the map query leaves it out).
    sites.append(SiteEntry("gas-nomap", "无坐标站点", TOWNSHIPS[0], "gas"))
    devices.append(DeviceEntry("gas-nomap-d0", "gas-nomap", "gas_pressure", 60.0))
    return RegistryFile(sites, [], devices)


def _send_telemetry(db: str, reg: RegistryFile, spool: Path, now: datetime) -> None:
    with psycopg.connect(db) as conn:
        token = create_api_key(conn, "scenario-admin", "admin")
    end_us = int(now.timestamp() * 1e6) - 60_000_000
    lines: list[bytes] = []
    sector_of = {s.id: s.sector for s in reg.sites}
    for device in reg.devices:
        names = SECTOR_METRICS[sector_of[device.site]]
        for minute in range(READING_MINUTES):
            ts = end_us - (READING_MINUTES - minute) * 60_000_000
            values: dict[str, float | bool] = {m: round(1.0 + minute / 10 + k, 2) for k, m in enumerate(names)}
            lines.append(encode_telemetry(Telemetry(device.id, ts, minute + 1, values)))
    bad = [
        b'{"device": "gas-0-d0", "ts": 1780000000000, "seq": 9999, "metrics": {"pipe_pressure_mpa": "high"}}',
        encode_telemetry(Telemetry("nobody", end_us, 1, {"pipe_pressure_mpa": 1.0})),
    ]
    with (
        running_service(db, spool) as service,
        httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
    ):
        response = http.post(
            "/v1/telemetry", content=b"\n".join(lines + bad), headers={"content-type": "application/x-ndjson"}
        )
        # The service answers once the accepted readings are durable.
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == len(lines), response.text
        assert response.json()["rejected"] == len(bad), response.text


def _alert(
    conn: psycopg.Connection[Any],
    key: str,
    rule: str,
    device: str,
    grade: str,
    state: str,
    raised: datetime,
    acked: datetime | None = None,
) -> int:
    row = conn.execute(
        """INSERT INTO alerts (alert_key, rule_id, subject, device_id, site_id, township, sector, grade, state,
                               raised_at, acked, acked_at, acked_by, cleared_at, last_value)
           SELECT %s, %s, d.device, d.device_id, d.site_id, s.township, s.sector, %s, %s, %s,
                  %s::timestamptz IS NOT NULL, %s,
                  CASE WHEN %s::timestamptz IS NULL THEN NULL ELSE 'duty' END,
                  CASE WHEN %s = 'normal' THEN %s::timestamptz + interval '5 minutes' END, 1.5
           FROM devices d JOIN sites s ON s.site_id = d.site_id WHERE d.device = %s RETURNING alert_id""",
        (key, rule, grade, state, raised, acked, acked, acked, state, raised, device),
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO alert_events (alert_id, at, actor, from_state, to_state, to_grade, reason)"
        " VALUES (%s, %s, 'engine', NULL, 'active_unack', %s, 'raised')",
        (row[0], raised, grade),
    )
    return int(row[0])


def _ten_minute_bin(at: datetime) -> datetime:
    """The start of the 10-minute window holding ``at``: floods and chatter must fall in one window of the boards."""
    return at.replace(minute=at.minute - at.minute % 10, second=0, microsecond=0)


def _alerts(conn: psycopg.Connection[Any], now: datetime) -> None:
    # One open alert of each grade per sector, the older ones acknowledged.
    for s, sector in enumerate(SECTOR_METRICS):
        for g, grade in enumerate(GRADES):
            acked = now - timedelta(minutes=20) if g % 2 else None
            state = "active_ack" if acked else "active_unack"
            _alert(
                conn,
                f"{sector}-{grade}",
                f"rule.{grade}",
                f"{sector}-{g % 3}-d0",
                grade,
                state,
                now - timedelta(minutes=40 + s * 5 + g),
                acked,
            )
    # A site whose worst open alert is blue.
    _alert(conn, "nomap-blue", "rule.blue", "gas-nomap-d0", "blue", "active_unack", now - timedelta(minutes=5))
    # A flood at the first township's desk: 12 alerts raised within 10 minutes (already back to normal).
    flood_start = _ten_minute_bin(now - timedelta(minutes=90))
    for k in range(12):
        _alert(
            conn,
            f"flood-{k}",
            f"rule.flood{k}",
            "gas-0-d1",
            "yellow",
            "normal",
            flood_start + timedelta(seconds=30 * k),
        )
    conn.execute(
        "INSERT INTO alert_reports (report_type, report_key, desk, window_start, window_end, count)"
        " VALUES ('flood', 'flood|scenario', %s, %s, %s, 12)",
        (TOWNSHIPS[0], flood_start, flood_start + timedelta(seconds=330)),
    )
    # A chattering alert: raised and cleared again and again within a minute, and reported by the lifecycle.
    chatter_start = _ten_minute_bin(now - timedelta(minutes=40))
    chatter = _alert(conn, "chatter", "rule.chatter", "dust-1-d1", "blue", "active_unack", chatter_start)
    for k in range(6):
        to_state = "normal" if k % 2 == 0 else "active_unack"
        conn.execute(
            "INSERT INTO alert_events (alert_id, at, actor, from_state, to_state, to_grade, reason)"
            " VALUES (%s, %s, 'engine', %s, %s, 'blue', 'threshold crossed')",
            (
                chatter,
                chatter_start + timedelta(seconds=8 * (k + 1)),
                "active_unack" if to_state == "normal" else "normal",
                to_state,
            ),
        )
    conn.execute(
        "INSERT INTO alert_reports (report_type, report_key, desk, alert_id, window_start, window_end, count)"
        " VALUES ('chatter', 'chatter|scenario', %s, %s, %s, %s, 7)",
        (TOWNSHIPS[1], chatter, chatter_start, chatter_start + timedelta(seconds=48)),
    )


def _device_events(conn: psycopg.Connection[Any], now: datetime) -> None:
    conn.execute(
        """INSERT INTO device_events (ts, device_id, topic_type, name, value, state, note, received_at)
           SELECT %s - (device_id %% 7) * interval '1 minute', device_id, 'status', 'status', NULL,
                  CASE WHEN device_id %% 5 = 0 THEN 'offline' ELSE 'online' END, NULL, %s FROM devices""",
        (now, now),
    )
    conn.execute(
        """INSERT INTO device_events (ts, device_id, topic_type, name, value, state, note, received_at)
           SELECT %s - interval '15 minutes', device_id, 'event', 'interlock_trip', 1, NULL, 'test trip', %s
           FROM devices""",
        (now, now),
    )


def _hazards(conn: psycopg.Connection[Any], now: datetime) -> None:
    rows: list[tuple[Any, ...]] = []
    for t, township in enumerate(TOWNSHIPS):
        for s, sector in enumerate((*SECTOR_METRICS, "other")):
            site = f"{sector}-{t}" if sector != "other" else None
            created = now - timedelta(days=20 - t - s, hours=1)
            deadline = (now - timedelta(days=2)).date() if (t + s) % 3 == 0 else (now + timedelta(days=10)).date()
            closed = now - timedelta(hours=2) if (t + s) % 4 == 1 else None
            level = "major" if s % 2 == 0 else "general"
            rows.append(
                (
                    f"{township} {sector} 隐患",
                    site,
                    sector,
                    township,
                    "self_inspection",
                    level,
                    "closed" if closed else "rectifying",
                    deadline,
                    created,
                    closed,
                )
            )
            # An entry recorded within the boards' range: the increment.
            rows.append(
                (
                    f"{township} {sector} 新隐患",
                    site,
                    sector,
                    township,
                    "alert",
                    level,
                    "recorded",
                    None,
                    now - timedelta(hours=1),
                    None,
                )
            )
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO hazards (title, site_id, sector, township, source, level, state, deadline, created_at,
                                    closed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            rows,
        )


def fill(db: str, spool: Path, now: datetime) -> RegistryFile:
    """Fill a migrated database with the scenario; returns its registry."""
    reg = registry()
    with psycopg.connect(db) as conn:
        upsert_registry(conn, reg)
    _send_telemetry(db, reg, spool, now)
    with psycopg.connect(db) as conn:
        _alerts(conn, now)
        _device_events(conn, now)
        _hazards(conn, now)
    return reg
