"""Readings that arrive while PostgreSQL is away are spooled, and once they are replayed into the database the
engine evaluates them: their alerts are written, none twice."""

from __future__ import annotations

from pathlib import Path

import psycopg

from sentinel.store import migrations
from sentinel.store.embedded import EmbeddedPostgres
from sentinel.testing.service import start_service
from tests.alerts.support import db_transitions, expected, make_plant, post_messages, scenario, wait_for


def test_readings_spooled_during_an_outage_raise_their_alerts_once_replayed(
    own_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, conninfo = own_postgres
    migrations.upgrade(conninfo)
    plant = make_plant(conninfo)
    messages = scenario(plant.devices)
    half = len(messages) // 2
    want, _ = expected(plant, messages)
    before_outage, _ = expected(plant, messages[:half])
    assert want - before_outage, "the second half must raise transitions of its own"

    svc = start_service(
        conninfo, tmp_path / "spool", engine=True, settings={"engine_tick_s": 0.2, "engine_checkpoint_s": 0.0}
    )
    try:
        post_messages(svc.url, plant.gateway_token, messages[:half])
        wait_for(lambda: set(db_transitions(conninfo)[0]) >= before_outage, "the first half's transitions")
        server.stop()
        post_messages(svc.url, plant.gateway_token, messages[half:])  # 202: spooled while the database is away
        assert svc.sentinel.sink.spooling
        server.start()
        wait_for(lambda: set(db_transitions(conninfo)[0]) >= want, "every transition, the spooled half's too")
        wait_for(lambda: not svc.sentinel.sink.spooling, "the spool replayed")
    finally:
        svc.stop()
    events, alerts = db_transitions(conninfo)
    assert sorted(events) == sorted(want)
    assert len(alerts) == len(set(alerts))
    with psycopg.connect(conninfo) as conn:
        stored = conn.execute("SELECT count(*) FROM message_log").fetchone()
    assert stored == (len(messages),)
