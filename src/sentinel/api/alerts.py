"""HTTP routes for alerts: list/filter, show, ack, shelve, unshelve, comment, escalate to a hazard, reports; and the
admin's out-of-service and webhook routes. Officers and supervisors work alerts; admin-only actions refuse the
others with 403 (logged by :mod:`sentinel.api.auth`). Errors are ``{"error", "reason", ...}``: 404 for a missing
alert, 409 for a transition the state machine forbids (with ``from`` and ``to``), 422 for bad input.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sentinel.alerts import actions
from sentinel.alerts.maintenance import set_maintenance
from sentinel.alerts.notify import add_webhook
from sentinel.alerts.watch import list_reports
from sentinel.api.auth import require
from sentinel.api.context import context
from sentinel.errors import TransitionError
from sentinel.registry.repository import ApiKey
from sentinel.registry.roles import ADMIN, ALERT_STAFF, MAINTENANCE

router = APIRouter(tags=["alerts"])
Officer = Annotated[ApiKey, Depends(require(*ALERT_STAFF))]
Admin = Annotated[ApiKey, Depends(require(*ADMIN))]
Maintainer = Annotated[ApiKey, Depends(require(*MAINTENANCE))]


@contextmanager
def database(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A connection for one request, with Sentinel's errors turned into JSON answers."""
    try:
        with context(request).sync_pool.connection() as conn:
            yield conn
    except TransitionError as exc:
        raise HTTPException(
            409, detail={"error": "conflict", "reason": exc.why, "from": exc.current, "to": exc.wanted}
        ) from exc
    except LookupError as exc:
        raise HTTPException(404, detail={"error": "not_found", "reason": str(exc).strip("'\"")}) from exc
    except ValueError as exc:
        raise HTTPException(422, detail={"error": "invalid_request", "reason": str(exc)}) from exc


def clock(request: Request) -> datetime:
    return context(request).clock()


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 422 naming it, never dropped

    reason: str = ""


class ShelveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 422 naming it, never dropped

    reason: str = Field(min_length=1)
    until: datetime | None = None
    minutes: float | None = Field(default=None, gt=0)


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 422 naming it, never dropped

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=8)
    grades: list[str] = []
    sectors: list[str] = []
    townships: list[str] = []


@router.get("/v1/alerts")
def list_alerts(
    request: Request,
    _key: Officer,
    state: str | None = None,
    grade: str | None = None,
    township: str | None = None,
    sector: str | None = None,
    site: str | None = None,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[dict[str, Any]]:
    """Alerts, newest first, filtered by state, grade, township, sector, site."""
    with database(request) as conn:
        return actions.list_alerts(
            conn,
            state=state,
            grade=grade,
            township=township,
            sector=sector,
            site=site,
            open_only=open_only,
            limit=limit,
        )


@router.get("/v1/alerts/reports")
def reports(request: Request, _key: Officer, kind: str | None = None) -> list[dict[str, Any]]:
    """Chattering and flood reports, newest first."""
    with database(request) as conn:
        return list_reports(conn, kind)


@router.get("/v1/alerts/{alert_id}")
def show(request: Request, alert_id: int, _key: Officer) -> dict[str, Any]:
    """One alert with its event history."""
    with database(request) as conn:
        return actions.get_alert(conn, alert_id)


def _act(request: Request, alert_id: int, action: str, key: ApiKey, reason: str, until: datetime | None = None) -> Any:
    with database(request) as conn:
        return actions.act(conn, alert_id, action, key.name, reason, clock(request), until=until)


@router.post("/v1/alerts/{alert_id}/ack", responses={409: {"description": "not in an acknowledgeable state"}})
def ack(request: Request, alert_id: int, key: Officer, body: ActionBody | None = None) -> dict[str, Any]:
    return _act(request, alert_id, "ack", key, (body or ActionBody()).reason)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/shelve", responses={409: {"description": "cannot shelve"}})
def shelve(request: Request, alert_id: int, key: Officer, body: ShelveBody) -> dict[str, Any]:
    """Shelve until ``until`` (or for ``minutes``), with a reason."""
    from datetime import timedelta

    until = body.until or (clock(request) + timedelta(minutes=body.minutes) if body.minutes else None)
    return _act(request, alert_id, "shelve", key, body.reason, until)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/unshelve", responses={409: {"description": "not shelved"}})
def unshelve(request: Request, alert_id: int, key: Officer, body: ActionBody | None = None) -> dict[str, Any]:
    return _act(request, alert_id, "unshelve", key, (body or ActionBody()).reason)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/comment")
def comment(request: Request, alert_id: int, key: Officer, body: ActionBody) -> dict[str, Any]:
    return _act(request, alert_id, "comment", key, body.reason)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/escalate")
def escalate(request: Request, alert_id: int, key: Officer, body: ActionBody) -> dict[str, Any]:
    """Enter the alert in the hazard register (once); returns the hazard id."""
    with database(request) as conn:
        return {"hazard_id": actions.escalate(conn, alert_id, key.name, body.reason, clock(request))}


@router.post("/v1/alerts/{alert_id}/out-of-service", responses={403: {"description": "admin only"}})
def remove_from_service(request: Request, alert_id: int, key: Admin, body: ActionBody) -> dict[str, Any]:
    return _act(request, alert_id, "remove_from_service", key, body.reason)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/in-service", responses={403: {"description": "admin only"}})
def return_to_service(request: Request, alert_id: int, key: Admin, body: ActionBody | None = None) -> dict[str, Any]:
    return _act(request, alert_id, "return_to_service", key, (body or ActionBody()).reason)  # type: ignore[no-any-return]


@router.put("/v1/webhooks", tags=["notifications"], responses={403: {"description": "admin only"}})
def put_webhook(request: Request, _key: Admin, body: WebhookBody) -> dict[str, Any]:
    """Create or replace a webhook with its routes (grades, sectors, townships; empty = all)."""
    with database(request) as conn:
        webhook_id = add_webhook(
            conn,
            body.name,
            body.url,
            body.secret,
            grades=body.grades,
            sectors=body.sectors,
            townships=body.townships,
        )
    return {"webhook_id": webhook_id, "name": body.name}


class MaintenanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    maintenance: bool
    reason: str = Field(min_length=1)


@router.put("/v1/devices/{device}/maintenance", tags=["devices"], responses={403: {"description": "supervisor"}})
def put_maintenance(request: Request, device: str, key: Maintainer, body: MaintenanceBody) -> dict[str, Any]:
    """Put a device in or out of maintenance: its new process alerts open suppressed while it is in."""
    with database(request) as conn:
        return set_maintenance(conn, device, body.maintenance, key.name, body.reason, clock(request))
