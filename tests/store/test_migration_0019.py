"""Migration 0019 on a database of 0.1, whose alerts, reports and device events name their class, type and topic
type ``kind``: every row is kept under the concept's name (``alert_class``, ``report_type``, ``topic_type``), the
views over them answer with those names and no ``kind``, and the checks and the device events' key still hold."""

from __future__ import annotations

import psycopg
import pytest

from sentinel.registry.repository import upsert_registry
from sentinel.store import migrations
from sentinel.testing.registry import small_registry
from tests.store.history import migrate_to_before

RENAMED = {"alerts": "alert_class", "alert_reports": "report_type", "device_events": "topic_type"}
VIEWS = {
    "v_open_alerts": "alert_class",
    "v_alert_wall": "alert_class",
    "v_alert_reports": "report_type",
    "v_device_events": "topic_type",
}


def _columns(conn: psycopg.Connection[tuple[str]], relation: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
        (relation,),
    ).fetchall()
    return {r[0] for r in rows}


def _fill_as_0_1(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, small_registry("m19", sites=1, devices_per_site=2))
        devices = conn.execute("SELECT device_id, site_id FROM devices ORDER BY device_id").fetchall()
        for (device_id, site_id), (key, alert_class, state) in zip(
            devices, (("m19-a", "comm", "active_unack"), ("m19-b", "warning", "normal")), strict=True
        ):
            conn.execute(
                """INSERT INTO alerts (alert_key, rule_id, subject, device_id, site_id, kind, grade, state, raised_at,
                                       township, sector)
                   VALUES (%s, 'gas.ch4_lel', %s, %s, %s, %s, 'orange', %s, '2026-12-05T01:00:00Z', 't', 'gas')""",
                (key, str(device_id), device_id, site_id, alert_class, state),
            )
        conn.execute(
            """INSERT INTO alert_reports (kind, report_key, desk, alert_id, window_start, window_end, count)
               SELECT 'chatter', 'chatter|m19-a', 't', alert_id, '2026-12-05T01:00:00Z', '2026-12-05T01:10:00Z', 6
               FROM alerts WHERE alert_key = 'm19-a'"""
        )
        conn.execute(
            """INSERT INTO alert_reports (kind, report_key, desk, window_start, window_end, count)
               VALUES ('flood', 'flood|t', 't', '2026-12-05T01:00:00Z', '2026-12-05T01:10:00Z', 12)"""
        )
        events: tuple[tuple[str, str, str | None], ...] = (("status", "online", "online"), ("event", "door_open", None))
        for topic_type, name, event_state in events:
            conn.execute(
                """INSERT INTO device_events (ts, device_id, kind, name, state, received_at)
                   VALUES ('2026-12-05T00:59:00Z', %s, %s, %s, %s, '2026-12-05T01:00:00Z')""",
                (devices[0][0], topic_type, name, event_state),
            )


def test_kind_columns_take_the_concept_names_and_keep_their_rows(db_url: str) -> None:
    pending = migrate_to_before(db_url, "0019_concept_columns")
    assert pending[0] == "0019_concept_columns"
    _fill_as_0_1(db_url)
    assert migrations.upgrade(db_url) == pending
    with psycopg.connect(db_url) as conn:
        for relation, name in (RENAMED | VIEWS).items():
            columns = _columns(conn, relation)
            assert name in columns, (relation, sorted(columns))
            assert "kind" not in columns, (relation, sorted(columns))
        alerts = conn.execute("SELECT alert_key, alert_class, state FROM alerts ORDER BY alert_key").fetchall()
        wall = conn.execute("SELECT alert_class FROM v_alert_wall").fetchall()
        open_alerts = conn.execute("SELECT alert_class FROM v_open_alerts").fetchall()
        reports = conn.execute(
            "SELECT report_type, count, rule_id FROM v_alert_reports ORDER BY report_type"
        ).fetchall()
        events = conn.execute("SELECT topic_type, name FROM v_device_events ORDER BY name").fetchall()
        status = conn.execute("SELECT count(*) FILTER (WHERE last_status = 'online') FROM v_device_status").fetchall()
    assert alerts == [("m19-a", "comm", "active_unack"), ("m19-b", "warning", "normal")]
    assert wall == [("comm",)]
    assert open_alerts == [("comm",)]
    assert reports == [("chatter", 6, "gas.ch4_lel"), ("flood", 12, None)]
    assert events == [("event", "door_open"), ("status", "online")]
    assert status == [(1,)]  # v_device_status still finds the status row by its topic type


def test_checks_and_the_event_key_follow_the_renamed_columns(db_url: str) -> None:
    migrate_to_before(db_url, "0019_concept_columns")
    _fill_as_0_1(db_url)
    migrations.upgrade(db_url)
    with psycopg.connect(db_url) as conn:
        (device_id,) = conn.execute("SELECT min(device_id) FROM devices").fetchone() or (0,)
        # the same (device, ts, topic type, name) as a row written before: stored once, as the ingest writer expects
        stored = conn.execute(
            """INSERT INTO device_events (ts, device_id, topic_type, name, received_at)
               VALUES ('2026-12-05T00:59:00Z', %s, 'status', 'online', now())
               ON CONFLICT (device_id, ts, topic_type, name) DO NOTHING""",
            (device_id,),
        )
        assert stored.rowcount == 0
        with pytest.raises(psycopg.errors.CheckViolation, match="device_events_topic_type_check"):
            conn.execute(
                """INSERT INTO device_events (ts, device_id, topic_type, name, received_at)
                   VALUES (now(), %s, 'telemetry', 'x', now())""",
                (device_id,),
            )
    with psycopg.connect(db_url) as conn, pytest.raises(psycopg.errors.CheckViolation, match="alerts_alert_class"):
        conn.execute("UPDATE alerts SET alert_class = 'kind' WHERE alert_key = 'm19-a'")
    with (
        psycopg.connect(db_url) as conn,
        pytest.raises(psycopg.errors.CheckViolation, match="alert_reports_report_type_check"),
    ):
        conn.execute("UPDATE alert_reports SET report_type = 'storm'")
