"""A restart must not flood communication-loss alerts (issue 12, point 6), with real `sentinel serve` processes.

Every device's last reading is older than its staleness limit when serve starts again. Silence from before the
restart is not a device fault: a device that reports within its interval after the restart raises nothing. A site
whose devices all stay silent raises one alert for the site (subject = the site), not one per device; a gateway
whose sites all stay silent raises one alert for the gateway; both clear when a device behind them is heard again."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from sentinel.registry.entries import DeviceEntry, GatewayEntry, RegistryFile, SiteEntry
from sentinel.registry.repository import upsert_registry
from sentinel.testing.broker import free_port
from sentinel.wire import Telemetry
from tests.alerts.support import post_messages, wait_for
from tests.alerts.test_kill_restart import _serve

INTERVAL_S = 2.0  # gas.comm_loss: blue at 3 × the interval
PER_SITE = 4


def _comm_alerts(db: str, prefix: str) -> list[dict[str, Any]]:
    with psycopg.connect(db) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT alert_id, subject, condition_active, state FROM alerts"
            " WHERE alert_class = 'comm' AND subject LIKE %s",
            (f"{prefix}%",),
        )
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_restart_after_silence_raises_nothing_for_live_devices_and_one_alert_for_a_silent_site(
    migrated_db: str, tmp_path: Path
) -> None:
    p = f"r{uuid.uuid4().hex[:6]}"
    live, silent, far1, far2 = f"{p}-live", f"{p}-silent", f"{p}-far1", f"{p}-far2"
    per_site = {live: PER_SITE, silent: PER_SITE, far1: 2, far2: 2}  # far1, far2: too small alone to group
    sites = [SiteEntry(s, s, "town-1", "gas", 31.5, 120.3) for s in per_site]
    devices = [
        DeviceEntry(f"{s}-w{j}", s, "gas_well_monitor", INTERVAL_S) for s, n in per_site.items() for j in range(n)
    ]
    near_gw, far_gw = f"{p}-gw-near", f"{p}-gw-far"
    tokens = {near_gw: f"{p}-near-gateway-secret", far_gw: f"{p}-far-gateway-secret"}
    gateways = [GatewayEntry(near_gw, [live, silent], secret=tokens[near_gw]),
                GatewayEntry(far_gw, [far1, far2], secret=tokens[far_gw])]  # fmt: skip
    registry = RegistryFile(sites, gateways, devices)
    with psycopg.connect(migrated_db) as conn:
        upsert_registry(conn, registry)
    seq = {d.id: 0 for d in devices}
    gateway_of = {d.id: near_gw if d.site in (live, silent) else far_gw for d in devices}

    def report(ids: list[str]) -> None:
        now_us = time.time_ns() // 1000
        for gateway, token in tokens.items():
            out = []
            for d in ids:
                if gateway_of[d] == gateway:
                    seq[d] += 1
                    out.append(Telemetry(d, now_us, seq[d], {"ch4_pct_lel": 1.0}))
            if out:
                post_messages(url, token, out)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = _serve(migrated_db, tmp_path, port, tick_s=0.5)
    try:
        report([d.id for d in devices])  # the previous run: every device heard once
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
        time.sleep(3 * INTERVAL_S + 2)  # Sentinel down: every device's last reading is past its staleness limit
        serve = _serve(migrated_db, tmp_path, port, tick_s=0.5)
        time.sleep(1.0)  # the first staleness ticks run before any device has spoken again
        live_ids = [d.id for d in devices if d.site == live]
        deadline = time.monotonic() + 60
        while len(_comm_alerts(migrated_db, p)) < 2 and time.monotonic() < deadline:
            report(live_ids)  # the live site reports within its interval, all along
            time.sleep(0.5)
        for _ in range(4):  # a few more ticks: nothing else is raised
            report(live_ids)
            time.sleep(0.5)
        alerts = _comm_alerts(migrated_db, p)
        # One alert for the silent site, one for the gateway whose sites all fell silent; none for a live device.
        assert sorted(a["subject"] for a in alerts) == sorted([silent, far_gw]), alerts
        assert all(a["condition_active"] for a in alerts)
        report([f"{silent}-w0", f"{far2}-w1"])  # both are heard again
        wait_for(
            lambda: not any(a["condition_active"] for a in _comm_alerts(migrated_db, p)), "the unit alerts to clear"
        )
        assert len(_comm_alerts(migrated_db, p)) == 2
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
