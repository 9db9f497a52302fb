"""A county of three townships for notification tests, alerts written through the lifecycle's outbox hand-off, and a
notifier built from a channels file that points at local receivers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml

from sentinel.alerts.notify import enqueue_alert_notification
from sentinel.notify import config
from sentinel.notify.service import Notifier
from sentinel.registry.entries import DeviceEntry, GatewayEntry, RegistryFile, SiteEntry
from sentinel.registry.repository import upsert_registry

TOWNSHIPS = ("新庄镇", "河口镇", "东山乡")


@dataclass
class County:
    db: str
    devices: dict[str, list[tuple[int, str]]]  # township -> [(device_id, site_id)]


def make_county(db: str, devices_per_town: int = 4) -> County:
    p = f"n{uuid.uuid4().hex[:6]}"
    sites = [SiteEntry(f"{p}-s{i}", f"site {i}", town, "gas", 31.5, 120.3) for i, town in enumerate(TOWNSHIPS)]
    devices = [
        DeviceEntry(f"{p}-s{i}-d{j}", f"{p}-s{i}", "gas_well_monitor", 3600.0)
        for i in range(len(TOWNSHIPS))
        for j in range(devices_per_town)
    ]
    registry = RegistryFile(
        sites, [GatewayEntry(f"{p}-gw", [s.id for s in sites], secret=f"{p}-secret-token")], devices
    )
    out: dict[str, list[tuple[int, str]]] = {t: [] for t in TOWNSHIPS}
    with psycopg.connect(db) as conn:
        upsert_registry(conn, registry)
        rows = conn.execute(
            """SELECT d.device_id, d.site_id, s.township FROM devices d JOIN sites s USING (site_id)
               WHERE d.device LIKE %s""",
            (f"{p}-%",),
        ).fetchall()
    for device_id, site, town in rows:
        out[town].append((int(device_id), site))
    return County(db, out)


def raise_alert(conn: psycopg.Connection[Any], county: County, township: str, grade: str, n: int, at: datetime) -> int:
    """An open alert written as the lifecycle writes one: the row, then the outbox hand-off in the same transaction."""
    device_id, site = county.devices[township][n % len(county.devices[township])]
    rule = f"flood.rule{n}"
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """INSERT INTO alerts (alert_key, rule_id, subject, device_id, site_id, alert_class, grade, state,
                                   raised_at, township, sector, updated_at)
               VALUES (%s, %s, %s, %s, %s, 'alarm', %s, 'active_unack', %s, %s, 'gas', %s)
               RETURNING alert_id, alert_key, rule_id, subject, site_id, township, sector,
                         alert_class, state""",
            (f"{rule}|{device_id}|{n}", rule, str(device_id), device_id, site, grade, at, township, at),
        )
        row = cur.fetchone()
        assert row is not None
        assert cur.description is not None
        alert = dict(zip([d.name for d in cur.description], row, strict=True))
        enqueue_alert_notification(cur, alert, "raise", f"{rule}|{device_id}|{n}|raise", grade, at)
    return int(alert["alert_id"])


def write_yaml(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def notifier(db: str, channels: dict[str, Any], clock: Any, tmp_path: Path, registry: Any = None) -> Notifier:
    cfg = config.load(write_yaml(tmp_path / "channels.yaml", channels))
    return Notifier(db, cfg, display_tz="Asia/Shanghai", clock=clock, webhooks=False, registry=registry)
