"""End to end: a reading delivered after newer ones of its device (a later HTTP request, so a later micro-batch)
is evaluated in device-time order by the running service, and the stored alert history says so."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg

from sentinel.testing.service import start_service
from tests.alerts.support import db_transitions, expected, make_plant, post_messages, scenario, wait_for


def test_a_late_reading_in_a_later_batch_is_evaluated_in_order(migrated_db: str, tmp_path: Path) -> None:
    plant = make_plant(migrated_db, devices_per_site=1)
    device = plant.devices[0]
    messages = [m for m in scenario(plant.devices) if m.device == device]
    late = messages[3]  # 55 %LEL: the orange peak of the walk
    first = [m for m in messages if m is not late]
    in_order, _ = expected(plant, messages)
    without_peak, _ = expected(plant, first)
    assert in_order - without_peak, "the peak must change the in-order history, or the test proves nothing"

    svc = start_service(migrated_db, tmp_path / "spool", engine=True, settings={"engine_tick_s": 3600.0})
    stage = svc.sentinel.runner
    assert stage is not None
    try:
        post_messages(svc.url, plant.gateway_token, first, per_request=len(first))
        wait_for(lambda: set(db_transitions(migrated_db)[0]) >= without_peak, "the stream without the peak")
        post_messages(svc.url, plant.gateway_token, [late])
        wait_for(lambda: set(db_transitions(migrated_db)[0]) >= in_order, "the in-order history, peak included")
    finally:
        svc.stop()
    assert stage.engine.stats["late"] == 1
    assert stage.engine.stats["out_of_order"] == 0
    with psycopg.connect(migrated_db) as conn:
        grades = [
            r[0]
            for r in conn.execute(
                "SELECT e.to_grade FROM alert_events e JOIN alerts a USING (alert_id) JOIN devices d USING (device_id)"
                " WHERE d.device = %s AND e.device_ts = %s",
                (device, datetime.fromtimestamp(late.ts_us / 1e6, tz=UTC)),
            )
        ]
    assert "orange" in grades, f"the orange peak is recorded at the late reading's device time: {grades}"
