"""``sentinel serve`` killed with SIGKILL mid-scenario and started again raises no alert twice and loses no
transition: the stored transitions equal, key for key, what one engine gives for the whole scenario."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sentinel.testing.broker import free_port
from tests.alerts.support import db_transitions, expected, make_plant, post_messages, scenario, wait_for


def _serve(db: str, data_dir: Path, port: int, tick_s: float = 5.0) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env |= {"SENTINEL_DATABASE_URL": db, "SENTINEL_DATA_DIR": str(data_dir), "SENTINEL_HTTP_PORT": str(port)}
    env["SENTINEL_ENGINE_TICK_S"] = str(tick_s)
    proc = subprocess.Popen([sys.executable, "-m", "sentinel", "serve"], env=env)

    def up() -> bool:
        assert proc.poll() is None, "sentinel serve exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, "sentinel serve to answer")
    return proc


@pytest.mark.slow
def test_sigkill_mid_scenario_raises_none_twice_and_loses_nothing(migrated_db: str, tmp_path: Path) -> None:
    plant = make_plant(migrated_db)
    messages = scenario(plant.devices)
    want_keys, want_alerts = expected(plant, messages)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    half = len(messages) // 2
    serve = _serve(migrated_db, tmp_path, port)
    try:
        post_messages(url, plant.gateway_token, messages[:half])  # each 202 means: committed
        serve.send_signal(signal.SIGKILL)  # at once: the engine may not have written what these caused
        serve.wait(10)
        written_before_kill = set(db_transitions(migrated_db)[0])
        assert written_before_kill < want_keys
        serve = _serve(migrated_db, tmp_path, port)
        post_messages(url, plant.gateway_token, messages[half:])
        wait_for(lambda: set(db_transitions(migrated_db)[0]) >= want_keys, "every transition written")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    events, alerts = db_transitions(migrated_db)
    assert sorted(events) == sorted(want_keys)  # none lost, none twice
    assert len(alerts) == len(set(alerts)) == want_alerts
