"""HTTP routes of the notification layer, as a router the app includes: who is on duty, an alert's notification
history, the configured channels (secrets shown as ``***``).

The app passes its auth dependency in (this package does not import the API layer):
``app.include_router(make_router(notifier, require("officer", "supervisor", "admin")))``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from sentinel.notify.audit import alert_notifications
from sentinel.notify.roster import COUNTY
from sentinel.notify.service import Notifier
from sentinel.store.database import connect


def make_router(notifier: Notifier, reader: Any) -> APIRouter:
    router = APIRouter(tags=["notifications"], dependencies=[Depends(reader)])

    @router.get("/v1/duty")
    def duty(township: str | None = None, sector: str = "", at: datetime | None = None) -> dict[str, Any]:
        """Who is on duty now (or ``at``), for one township or every township of the roster plus the county."""
        moment = at or notifier.clock()
        with connect(notifier.conninfo) as conn:
            roster = notifier.roster(conn)
        if roster is None:
            raise HTTPException(404, detail={"error": "not_found", "reason": "未加载值班表: sentinel duty load FILE"})
        towns = [township] if township else [*roster.townships(), ""]
        return {
            "at": moment.astimezone(roster.tz).isoformat(),
            "timezone": roster.timezone,
            "duty": [roster.on_duty(t, sector, moment).as_dict() | {"township": t or COUNTY} for t in towns],
        }

    @router.get("/v1/alerts/{alert_id}/notifications")
    def notifications(alert_id: int) -> dict[str, Any]:
        """Every notification of the alert: deliveries (sent alone, in a digest, queued, failed, cancelled), each
        attempt (channel, recipient, time, result), and the escalation chain."""
        with connect(notifier.conninfo) as conn:
            if conn.execute("SELECT 1 FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone() is None:
                raise HTTPException(404, detail={"error": "not_found", "reason": f"alert {alert_id} does not exist"})
            return alert_notifications(conn, alert_id)

    @router.get("/v1/notify/channels")
    def channels() -> dict[str, Any]:
        """The configured channels, routes and escalation chains; secrets are never returned."""
        return notifier.cfg.describe()

    return router
