"""Pages of the hazard register: the list with filters, a new entry, each item's closed loop as forms (the state
machine of :mod:`sentinel.hazards.states` decides, by role and state, what is allowed), evidence files, and the
statistics. Every change goes through :mod:`sentinel.hazards.register` with the signed-in key's name and role."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from sentinel.console.web import Redirect, Refused
from sentinel.hazards import register
from sentinel.hazards.evidence import add_evidence, get_evidence, list_evidence
from sentinel.hazards.states import MOVES, PLAN_KEYS, SECTORS, SOURCES, STATES, SUPERVISION
from sentinel.hazards.states import Request as MoveRequest
from sentinel.hazards.stats import statistics
from sentinel.registry.roles import ALERT_STAFF

if TYPE_CHECKING:
    from sentinel.console import Console

# Entries people record from the console (alerts come in by escalation).
NEW_SOURCES = ("self_inspection", "supervisory_inspection", "public_report")
LOOP = ("classify", "assign", "start_rectification", "request_verification", "verify_pass", "verify_fail", "close")


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _date(value: str, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from None


def add_routes(router: APIRouter, console: Console) -> None:
    web = console.web

    @router.get("/hazards")
    async def hazards_page(request: Request) -> Response:
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        q = request.query_params
        state = q.get("state") or None
        overdue = {"yes": True, "no": False}.get(q.get("overdue", ""))
        found = await web.db(
            register.list_hazards,
            web.local_today(ctx.now),
            state=state,
            sector=q.get("sector") or None,
            township=q.get("township") or None,
            overdue=overdue,
            limit=2000,
        )
        source = q.get("source") or None
        if source:
            found = [h for h in found if h["source"] == source]
        found.sort(key=lambda h: (not h["overdue"], h["state"] == "closed", -h["hazard_id"]))
        return web.render(
            ctx,
            request,
            "hazards.html",
            hazards=found,
            sources=SOURCES,
            new_sources=NEW_SOURCES,
            sectors=SECTORS,
            states=STATES,
            q=q,
            supervision=SUPERVISION,
        )

    @router.post("/hazards")
    async def create(request: Request) -> Response:
        ctx = await web.ctx(request)
        form = await web.form(ctx)
        ctx.require(ALERT_STAFF)
        source = _text(form, "source")
        if source not in NEW_SOURCES:
            raise Refused(422, f"{ctx.t('source')}: {source!r}")
        hazard_id = await web.db(
            register.create,
            title=_text(form, "title"),
            sector=_text(form, "sector"),
            township=_text(form, "township"),
            source=source,
            actor=ctx.officer.name,
            now=ctx.now,
            description=_text(form, "description"),
            site_id=_text(form, "site_id") or None,
        )
        raise Redirect(f"/hazards/{hazard_id}")

    @router.get("/hazards/statistics")
    async def stats_page(request: Request) -> Response:
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        q = request.query_params
        today = web.local_today(ctx.now)
        start = _date(q.get("start", ""), ctx.t("period")) or today.replace(day=1)
        end = _date(q.get("end", ""), ctx.t("period")) or today
        by = q.get("by", "township") if q.get("by") in ("township", "sector", "both") else "township"
        level = q.get("level") or None
        rows = await web.db(statistics, web.local_start(start), web.local_start(end + timedelta(days=1)), by, level)
        return web.render(ctx, request, "stats.html", rows=rows, start=start, end=end, by=by, level=level)

    @router.get("/hazards/evidence/{evidence_id}")
    async def evidence_file(request: Request, evidence_id: int) -> Response:
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        name, kind, data = await web.db(get_evidence, evidence_id)
        disposition = f"inline; filename*=UTF-8''{quote(name)}"
        return Response(data, media_type=kind, headers={"Content-Disposition": disposition, "Cache-Control": "private"})

    @router.get("/hazards/{hazard_id}")
    async def hazard_page(request: Request, hazard_id: int) -> Response:
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        hazard = await web.db(register.get, hazard_id, web.local_today(ctx.now))
        files = await web.db(list_evidence, hazard_id)
        possible = [a for a in LOOP if hazard["state"] in MOVES[a].source]
        if "close" not in possible and hazard["state"] != "closed":
            possible.append("close")  # offered always: the state machine says why not, on the page
        return web.render(
            ctx,
            request,
            "hazard.html",
            h=hazard,
            files=files,
            possible=possible,
            moves=MOVES,
            plan_keys=PLAN_KEYS,
            steps=list(STATES),
            max_mb=round(console.evidence_max_bytes / 1048576, 1),
        )

    @router.post("/hazards/{hazard_id}/transition")
    async def transition(request: Request, hazard_id: int) -> Response:
        ctx = await web.ctx(request)
        form = await web.form(ctx)
        ctx.require(ALERT_STAFF)
        action = _text(form, "action")
        upload = form.get("file")
        data, filename = b"", ""
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(console.evidence_max_bytes + 1)
            filename = upload.filename
        refs = tuple(r for r in (_text(form, "evidence_ref"),) if r)
        req = MoveRequest(
            reason=_text(form, "reason"),
            level=_text(form, "level") or None,
            deadline=_date(_text(form, "deadline"), ctx.t("deadline")),
            responsible_unit=_text(form, "responsible_unit") or None,
            supervising_department=_text(form, "supervising_department") or None,
            plan={k: _text(form, f"plan_{k}") for k in PLAN_KEYS} if action == "start_rectification" else None,
            evidence=refs,
        )

        def run(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():  # a refused move keeps no file it brought
                evidence = req.evidence
                if data:
                    ref = add_evidence(
                        conn,
                        hazard_id,
                        filename,
                        data,
                        ctx.officer.name,
                        ctx.now,
                        max_bytes=console.evidence_max_bytes,
                    )
                    evidence = (*evidence, ref)
                move = MoveRequest(**(req.__dict__ | {"evidence": evidence}))
                register.transition(
                    conn, hazard_id, action, role=ctx.officer.role, actor=ctx.officer.name, req=move, now=ctx.now
                )

        await web.db(run)
        raise Redirect(f"/hazards/{hazard_id}")
