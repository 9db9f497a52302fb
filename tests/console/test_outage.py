"""The console through a database outage: pages answer with a page in Chinese saying the database is away (never a
stack trace), the live feed tells the board, and both recover once PostgreSQL is back; in a real browser, the open
board says so and recovers without a reload. Each test has its own embedded PostgreSQL to stop (the machine's server
is never touched)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from sentinel.store import migrations
from sentinel.store.embedded import EmbeddedPostgres
from tests.alerts.support import make_plant
from tests.console.support import chromium, console_service, raise_orange, screenshots_dir, sign_in_http, wait_for


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


def test_the_board_in_a_browser_says_the_database_is_away_and_recovers_without_reload(
    own_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    """The board stays open through an outage: a banner says so in Chinese, a reading posted meanwhile (spooled by
    ingest) becomes an alert on the same page once PostgreSQL is back, and the banner goes, all without a reload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, conninfo = own_postgres
    migrations.upgrade(conninfo)
    plant = make_plant(conninfo)
    with chromium() as driver, console_service(conninfo, tmp_path / "spool") as svc:
        driver.get(svc.url + "/login")
        driver.find_element(By.ID, "api-key").send_keys(plant.keys["officer"])
        driver.find_element(By.ID, "sign-in").click()
        wait = WebDriverWait(driver, 60, poll_frequency=0.2)
        wait.until(lambda d: "on" in (d.find_element(By.ID, "live-state").get_attribute("class") or ""))
        banner = driver.find_element(By.ID, "db-banner")
        assert not banner.is_displayed()
        driver.execute_script("window.sentinelNoReload = 'still here'")
        server.stop()
        try:
            wait.until(lambda d: d.find_element(By.ID, "db-banner").is_displayed())
            assert "数据库暂时无法连接" in banner.text
            raise_orange(svc.url, plant, plant.devices[0])  # accepted into the spool while the database is away
            assert not driver.find_elements(By.CSS_SELECTOR, "tr.alert-row")
            driver.save_screenshot(str(screenshots_dir() / "board-database-away.png"))
        finally:
            server.start()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.alert-row[data-grade=orange]"))
        wait.until(lambda d: not d.find_element(By.ID, "db-banner").is_displayed())
        assert driver.execute_script("return window.sentinelNoReload") == "still here", "the page was reloaded"
        assert "on" in (driver.find_element(By.ID, "live-state").get_attribute("class") or "")
        driver.save_screenshot(str(screenshots_dir() / "board-database-back.png"))
