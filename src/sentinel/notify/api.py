"""HTTP routes of the notification layer, as a router the app includes: who is on duty, an alert's notification
history, the configured channels (secrets shown as ``***``).

The app passes its auth dependency and its error answers in (this package does not import the API layer):
``make_router(notifier, require("officer", "supervisor"), require("admin"), answers=sentinel.api.problems.answers)``;
``answers(*codes)`` gives a route's documented error responses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from sentinel.errors import NotifyConfigError
from sentinel.notify.audit import alert_notifications
from sentinel.notify.roster import COUNTY, parse_document, save
from sentinel.notify.service import Notifier
from sentinel.store.database import connect

Answers = Callable[..., dict[int | str, dict[str, Any]]]
BIGINT_MAX = 2**63 - 1


def _described(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": descriptions.get(f"_{code}", "error")} for code in codes}


def make_router(notifier: Notifier, reader: Any, admin: Any = None, answers: Answers = _described) -> APIRouter:
    """Routes for keys passing ``reader``; with ``admin``, also ``PUT /v1/duty`` (load a roster) for keys passing it.
    ``answers(*codes)`` documents the error answers (401, 403, 422, 503 on every route, as the app's handlers give)."""
    router = APIRouter(tags=["notifications"], responses=answers(401, 403, 422, 503))

    if admin is not None:

        @router.put("/v1/duty", dependencies=[Depends(admin)], responses=answers(422, _422="invalid roster"))
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

    @router.get("/v1/duty", dependencies=readers, responses=answers(404, _404="no roster loaded"))
    def duty(
        township: str | None = None, sector: str = "", at: Annotated[datetime | None, Query()] = None
    ) -> dict[str, Any]:
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

    @router.get(
        "/v1/alerts/{alert_id}/notifications", dependencies=readers, responses=answers(404, _404="no such alert")
    )
    def notifications(alert_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)]) -> dict[str, Any]:
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
