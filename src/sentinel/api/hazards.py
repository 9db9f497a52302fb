"""HTTP routes for the hazard register: create, show, list (with overdue), transitions, statistics.

Officers and supervisors may read and create; which transitions a role may take is the state machine's
(:mod:`sentinel.hazards.states`): a refused one is 409 with the reason, e.g. closing without a passed verification.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sentinel.api.alerts import clock, database
from sentinel.api.auth import require
from sentinel.api.problems import KEYED, Instant, QueryText, RowId, Said, Text, answers, choice
from sentinel.hazards import register
from sentinel.hazards.states import SECTORS, SOURCES, STATES
from sentinel.hazards.states import Request as MoveRequest
from sentinel.hazards.stats import GROUPINGS, statistics
from sentinel.registry.repository import ApiKey
from sentinel.registry.roles import ALERT_STAFF

router = APIRouter(tags=["hazards"], responses=KEYED)
HAZARD = answers(404, _404="no such hazard")
Staff = Annotated[ApiKey, Depends(require(*ALERT_STAFF))]


class HazardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 422 naming it, never dropped

    title: Said
    sector: Annotated[str, Field(json_schema_extra=choice(SECTORS))]
    township: Said
    source: Annotated[str, Field(json_schema_extra=choice(SOURCES))]
    description: Text = ""
    site_id: Text | None = None
    evidence: list[Text] = []


class TransitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 422 naming it, never dropped

    action: Text
    reason: Text = ""
    level: Text | None = None
    deadline: date | None = None
    responsible_unit: Text | None = None
    supervising_department: Text | None = None
    plan: dict[Text, Text] | None = None
    evidence: list[Text] = []


@router.post("/v1/hazards", status_code=201, responses=answers(404, _404="site_id names no registered site"))
def create(request: Request, key: Staff, body: HazardBody) -> dict[str, Any]:
    """Record an entry from people: self-inspection, supervisory inspection, public report, insurer inspection."""
    now = clock(request)
    with database(request) as conn:
        hazard_id = register.create(
            conn,
            title=body.title,
            sector=body.sector,
            township=body.township,
            source=body.source,
            actor=key.name,
            now=now,
            description=body.description,
            site_id=body.site_id,
            evidence=tuple(body.evidence),
        )
        return register.get(conn, hazard_id, now.date())


@router.get("/v1/hazards")
def list_hazards(
    request: Request,
    _key: Staff,
    state: Annotated[str | None, Query(json_schema_extra=choice(STATES))] = None,
    sector: QueryText = None,
    township: QueryText = None,
    overdue: bool | None = None,
) -> list[dict[str, Any]]:
    with database(request) as conn:
        return register.list_hazards(
            conn, clock(request).date(), state=state, sector=sector, township=township, overdue=overdue
        )


@router.get("/v1/hazards/statistics", responses=answers(422, _422="invalid request, or end not after start"))
def hazard_statistics(
    request: Request,
    _key: Staff,
    start: Instant,
    end: Instant,
    by: Annotated[str, Query(json_schema_extra=choice(list(GROUPINGS)))] = "sector",
    level: QueryText = None,
) -> list[dict[str, Any]]:
    """Stock, increment, closed and closure rate per group for the period [start, end)."""
    with database(request) as conn:
        return statistics(conn, start, end, by, level)


@router.get("/v1/hazards/{hazard_id}", responses=HAZARD)
def show(request: Request, hazard_id: RowId, _key: Staff) -> dict[str, Any]:
    with database(request) as conn:
        return register.get(conn, hazard_id, clock(request).date())


@router.post("/v1/hazards/{hazard_id}/transitions", responses=answers(404, 409, _404="no such hazard"))
def transition(request: Request, hazard_id: RowId, key: Staff, body: TransitionBody) -> dict[str, Any]:
    req = MoveRequest(
        reason=body.reason,
        level=body.level,
        deadline=body.deadline,
        responsible_unit=body.responsible_unit,
        supervising_department=body.supervising_department,
        plan=body.plan,
        evidence=tuple(body.evidence),
    )
    with database(request) as conn:
        return register.transition(
            conn, hazard_id, body.action, role=key.role, actor=key.name, req=req, now=clock(request)
        )
