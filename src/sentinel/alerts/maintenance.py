"""Devices in maintenance: the switch the lifecycle reads (:func:`sentinel.alerts.lifecycle._suppression`).

A process alert raised while its device is in maintenance opens *suppressed* ("device in maintenance"): recorded,
not shown as active and not notified. Communication faults are never suppressed. Putting a device in or out of
maintenance records who did it, when and why (``device_maintenance_log``); alerts already open keep their state.
The HTTP API and the console both call :func:`set_maintenance`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


def set_maintenance(
    conn: psycopg.Connection[Any], device: str, on: bool, actor: str, reason: str, now: datetime
) -> dict[str, Any]:
    """Put ``device`` in (``on``) or out of maintenance; returns ``{"device", "maintenance", "changed"}``."""
    if not reason.strip():
        raise ValueError("reason: a reason is required")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT device_id, maintenance FROM devices WHERE device = %s FOR UPDATE", (device,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"device {device} does not exist")
        device_id, before = int(row[0]), bool(row[1])
        cur.execute("UPDATE devices SET maintenance = %s, updated_at = %s WHERE device_id = %s", (on, now, device_id))
        cur.execute(
            """INSERT INTO device_maintenance_log (device_id, at, actor, maintenance, reason)
               VALUES (%s, %s, %s, %s, %s)""",
            (device_id, now, actor, on, reason),
        )
    return {"device": device, "maintenance": on, "changed": before != on}


def maintenance_log(conn: psycopg.Connection[Any], device: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        """SELECT l.at, l.actor, l.maintenance, l.reason FROM device_maintenance_log l
           JOIN devices d USING (device_id) WHERE d.device = %s ORDER BY l.entry_id DESC LIMIT %s""",
        (device, limit),
    ).fetchall()
    return [{"at": r[0], "actor": r[1], "maintenance": r[2], "reason": r[3]} for r in rows]
