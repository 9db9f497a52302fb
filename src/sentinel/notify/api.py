"""HTTP routes of the notification layer, as a router the app includes: who is on duty, an alert's notification
history, the configured channels (secrets shown as ``***``).

The app passes its auth dependency in (this package does not import the API layer):
``app.include_router(make_router(notifier, require("officer", "supervisor"), require("admin")))``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from sentinel.errors import NotifyConfigError
from sentinel.notify.audit import alert_notifications
from sentinel.notify.roster import COUNTY, parse_document, save
from sentinel.notify.service import Notifier
from sentinel.store.database import connect


def make_router(notifier: Notifier, reader: Any, admin: Any = None) -> APIRouter:
    """Routes for keys passing ``reader``; with ``admin``, also ``PUT /v1/duty`` (load a roster) for keys passing it."""
    router = APIRouter(tags=["notifications"])

    if admin is not None:

        @router.put("/v1/duty", dependencies=[Depends(admin)], responses={422: {"description": "invalid roster"}})
        def put_duty(document: dict[str, Any]) -> dict[str, Any]:
            """Replace the roster: the roster file's shape (shifts, overrides, department_head) as JSON."""
            try:
                parsed = parse_document(document, "roster", notifier.display_tz)
            except NotifyConfigError as exc:
                raise HTTPException(422, detail={"error": "invalid_roster", "reason": str(exc)}) from exc
            with connect(notifier.conninfo) as conn:
                save(conn, parsed, "PUT /v1/duty", notifier.clock())
            return {"shifts": len(parsed.shifts), "overrides": len(parsed.overrides), "townships": parsed.townships()}

    readers = [Depends(reader)]

    @router.get("/v1/duty", dependencies=readers)
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

    @router.get("/v1/alerts/{alert_id}/notifications", dependencies=readers)
    def notifications(alert_id: int) -> dict[str, Any]:
        """Every notification of the alert: deliveries (sent alone, in a digest, queued, failed, cancelled), each
        attempt (channel, recipient, time, result), and the escalation chain."""
        with connect(notifier.conninfo) as conn:
            if conn.execute("SELECT 1 FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone() is None:
                raise HTTPException(404, detail={"error": "not_found", "reason": f"alert {alert_id} does not exist"})
            return alert_notifications(conn, alert_id)

    @router.get("/v1/notify/channels", dependencies=readers)
    def channels() -> dict[str, Any]:
        """The configured channels, routes and escalation chains; secrets are never returned."""
        return notifier.cfg.describe()

    return router
