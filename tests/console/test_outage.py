"""The console through a database outage: pages answer with a page in Chinese saying the database is away (never a
stack trace), the live feed tells the board, and both recover once PostgreSQL is back."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from sentinel.store import migrations
from sentinel.store.embedded import EmbeddedPostgres
from tests.alerts.support import make_plant
from tests.console.support import console_service, sign_in_http, wait_for


def test_pages_say_the_database_is_away_and_recover(own_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path) -> None:
    server, conninfo = own_postgres
    migrations.upgrade(conninfo)
    plant = make_plant(conninfo)
    with console_service(conninfo, tmp_path / "spool") as svc:
        http = sign_in_http(svc.url, plant.keys["officer"])
        assert http.get("/board").status_code == 200
        db_events: list[bool] = []
        stop = threading.Event()

        def listen() -> None:
            with httpx.Client(base_url=svc.url, cookies=dict(http.cookies), timeout=None) as sse:  # noqa: SIM117
                with sse.stream("GET", "/events") as stream:
                    kind = ""
                    for line in stream.iter_lines():
                        if stop.is_set():
                            return
                        if line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: ") and kind == "db":
                            db_events.append(bool(json.loads(line[6:])["ok"]))

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_for(lambda: db_events == [True], "the feed's first database status")
        server.stop()
        try:
            away = http.get("/board")
            assert away.status_code == 503
            assert "数据库暂时无法连接" in away.text
            assert "Traceback" not in away.text
            assert 'http-equiv="refresh"' in away.text
            wait_for(lambda: False in db_events, "the feed saying the database is away")
        finally:
            server.start()
        wait_for(lambda: http.get("/board").status_code == 200, "the board back", timeout_s=60)
        wait_for(lambda: db_events[-1] is True, "the feed saying the database is back", timeout_s=60)
        stop.set()
        http.close()
