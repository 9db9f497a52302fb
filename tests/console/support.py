"""The console under test: a running service with the engine stage (so readings posted over HTTP become alerts),
a small gas plant with keys of every role, a headless Chromium, and helpers to sign in and raise an alert."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from sentinel.testing.service import ServiceThread, start_service
from sentinel.wire import Telemetry
from tests.alerts.support import Plant, post_messages

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]


def screenshots_dir() -> Path:
    folder = Path(os.environ.get("SENTINEL_SCREENSHOTS") or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def console_service(conninfo: str, spool: Path) -> Iterator[ServiceThread]:
    settings = {"engine_tick_s": 0.2, "engine_checkpoint_s": 0.0}
    svc = start_service(conninfo, spool, engine=True, settings=settings)
    try:
        yield svc
    finally:
        svc.stop()


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium through Selenium; skips (saying why) where the browser or its driver is missing."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(f"no browser: needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sentinel-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--lang=zh-CN",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def readings(device: str, values: list[float], start_us: int | None = None, seq0: int = 1) -> list[Telemetry]:
    start = start_us if start_us is not None else (time.time_ns() // 1000) - len(values) * 1_000_000
    return [Telemetry(device, start + k * 1_000_000, seq0 + k, {"ch4_pct_lel": v}) for k, v in enumerate(values)]


def raise_orange(url: str, plant: Plant, device: str, seq0: int = 1) -> None:
    """Methane at 55 %LEL on ``device``: the gas.ch4_lel rule's orange level (50), posted over HTTP."""
    post_messages(url, plant.gateway_token, readings(device, [2.0, 55.0], seq0=seq0), per_request=2)


def sign_in_http(url: str, key: str) -> httpx.Client:
    """An httpx client signed in to the console with ``key`` (cookie session)."""
    http = httpx.Client(base_url=url, timeout=30)
    page = http.get("/login")
    csrf = csrf_of(page.text)
    r = http.post("/login", data={"csrf": csrf, "api_key": key, "next": "/board"})
    assert r.status_code == 303, r.text
    return http


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def wait_for(predicate: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
