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
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sentinel.alerts import actions
from sentinel.alerts.maintenance import set_maintenance
from sentinel.alerts.notify import add_webhook
from sentinel.alerts.states import GRADES, STATES
from sentinel.alerts.watch import list_reports
from sentinel.api.auth import require
from sentinel.api.context import context
from sentinel.api.problems import KEYED, NO_NUL, Instant, QueryText, RowId, Said, Text, answers, choice
from sentinel.errors import TransitionError
from sentinel.registry.repository import ApiKey
from sentinel.registry.roles import ADMIN, ALERT_STAFF, MAINTENANCE

router = APIRouter(tags=["alerts"], responses=KEYED)
ALERT = answers(404, _404="no such alert")
MOVE = answers(404, 409, _404="no such alert")
YEAR_MINUTES = 366 * 24 * 60
DeviceId = Annotated[str, Path(pattern=NO_NUL)]
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

    reason: Text = ""


class ShelveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 422 naming it, never dropped

    reason: Text = Field(min_length=1)
    until: Instant | None = None
    minutes: float | None = Field(default=None, gt=0, le=YEAR_MINUTES)  # a year at most: the clock stays in range


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 422 naming it, never dropped

    name: Text = Field(min_length=1)
    url: str = Field(pattern=r"^https?://[^\x00]*$")
    secret: Text = Field(min_length=8)
    grades: list[Annotated[str, Field(json_schema_extra=choice(GRADES))]] = []
    sectors: list[Text] = []
    townships: list[Text] = []

    @field_validator("grades")
    @classmethod
    def _known_grades(cls, grades: list[str]) -> list[str]:
        unknown = [g for g in grades if g not in GRADES]
        if unknown:
            raise ValueError(f"grades: {unknown[0]!r} is not one of {', '.join(GRADES)}")
        return grades


@router.get("/v1/alerts")
def list_alerts(
    request: Request,
    _key: Officer,
    state: Annotated[str | None, Query(json_schema_extra=choice(STATES))] = None,
    grade: QueryText = None,
    township: QueryText = None,
    sector: QueryText = None,
    site: QueryText = None,
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
def reports(
    request: Request,
    _key: Officer,
    report_type: QueryText = None,
    kind: Annotated[str | None, Query(pattern=NO_NUL, deprecated=True, description="old name of report_type")] = None,
) -> list[dict[str, Any]]:
    """Chattering and flood reports, newest first; ``report_type`` (``chatter`` or ``flood``) picks one type. Each
    row names its type in ``report_type`` and, until 0.2, in ``kind`` (deprecated)."""
    with database(request) as conn:
        return list_reports(conn, report_type if report_type is not None else kind)


@router.get("/v1/alerts/{alert_id}", responses=ALERT)
def show(request: Request, alert_id: RowId, _key: Officer) -> dict[str, Any]:
    """One alert with its event history."""
    with database(request) as conn:
        return actions.get_alert(conn, alert_id)


def _act(
    request: Request, alert_id: RowId, action: str, key: ApiKey, reason: str, until: datetime | None = None
) -> Any:
    with database(request) as conn:
        return actions.act(conn, alert_id, action, key.name, reason, clock(request), until=until)


@router.post("/v1/alerts/{alert_id}/ack", responses=MOVE)
def ack(request: Request, alert_id: RowId, key: Officer, body: ActionBody | None = None) -> dict[str, Any]:
    return _act(request, alert_id, "ack", key, (body or ActionBody()).reason)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/shelve", responses=MOVE)
def shelve(request: Request, alert_id: RowId, key: Officer, body: ShelveBody) -> dict[str, Any]:
    """Shelve until ``until`` (or for ``minutes``), with a reason."""
    from datetime import timedelta

    until = body.until or (clock(request) + timedelta(minutes=body.minutes) if body.minutes else None)
    return _act(request, alert_id, "shelve", key, body.reason, until)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/unshelve", responses=MOVE)
def unshelve(request: Request, alert_id: RowId, key: Officer, body: ActionBody | None = None) -> dict[str, Any]:
    return _act(request, alert_id, "unshelve", key, (body or ActionBody()).reason)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/comment", responses=MOVE)
def comment(request: Request, alert_id: RowId, key: Officer, body: ActionBody) -> dict[str, Any]:
    return _act(request, alert_id, "comment", key, body.reason)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/escalate", responses=MOVE)
def escalate(request: Request, alert_id: RowId, key: Officer, body: ActionBody) -> dict[str, Any]:
    """Enter the alert in the hazard register (once); returns the hazard id."""
    with database(request) as conn:
        return {"hazard_id": actions.escalate(conn, alert_id, key.name, body.reason, clock(request))}


@router.post("/v1/alerts/{alert_id}/out-of-service", responses=MOVE)
def remove_from_service(request: Request, alert_id: RowId, key: Admin, body: ActionBody) -> dict[str, Any]:
    return _act(request, alert_id, "remove_from_service", key, body.reason)  # type: ignore[no-any-return]


@router.post("/v1/alerts/{alert_id}/in-service", responses=MOVE)
def return_to_service(request: Request, alert_id: RowId, key: Admin, body: ActionBody | None = None) -> dict[str, Any]:
    return _act(request, alert_id, "return_to_service", key, (body or ActionBody()).reason)  # type: ignore[no-any-return]


@router.put("/v1/webhooks", tags=["notifications"])
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
    reason: Said


@router.put("/v1/devices/{device}/maintenance", tags=["devices"], responses=answers(404, _404="no such device"))
def put_maintenance(
    request: Request, device: Annotated[str, Path(pattern=NO_NUL)], key: Maintainer, body: MaintenanceBody
) -> dict[str, Any]:
    """Put a device in or out of maintenance: its new process alerts open suppressed while it is in."""
    with database(request) as conn:
        return set_maintenance(conn, device, body.maintenance, key.name, body.reason, clock(request))
