"""The engine checkpoint is saved on a clean stop, also when the last thing the stage did was a quiet tick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from sentinel.alerts.watch import AlertWriter
from sentinel.engine.runner import EngineRunner
from sentinel.testing.service import start_service
from tests.alerts.support import db_transitions, expected, make_plant, post_messages, scenario, wait_for


class CountingStage(EngineRunner):
    ticks = 0

    def tick(self, conn: psycopg.Connection[Any]) -> int:
        moved = super().tick(conn)
        self.ticks += 1
        return moved


def test_checkpoint_is_saved_at_stop_after_quiet_ticks(migrated_db: str, tmp_path: Path) -> None:
    plant = make_plant(migrated_db)
    messages = scenario(plant.devices)
    want, _ = expected(plant, messages)
    # Checkpoints only at stop; ticks often (the devices report hourly, so no tick moves anything).
    stage = CountingStage(migrated_db, tick_s=0.05, checkpoint_every_s=3600.0, write_transitions=AlertWriter())
    svc = start_service(migrated_db, tmp_path / "spool", runner=stage)
    try:
        post_messages(svc.url, plant.gateway_token, messages)
        wait_for(lambda: set(db_transitions(migrated_db)[0]) >= want, "every transition written")
        seen = stage.ticks
        wait_for(lambda: stage.ticks >= seen + 2, "two quiet ticks after the last batch")
    finally:
        svc.stop()
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute("SELECT position_us FROM engine_checkpoint").fetchone()
    assert row is not None, "no checkpoint saved at stop"
    assert row[0] == stage.position_us > 0
