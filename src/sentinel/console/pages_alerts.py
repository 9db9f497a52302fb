"""Pages of the duty desk: sign-in, the live alert board, an alert's detail and actions, the county map, a site,
and the devices. Actions call the service functions the API calls, with the signed-in key's name as the actor."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from sentinel.alerts import actions
from sentinel.alerts.maintenance import maintenance_log, set_maintenance
from sentinel.alerts.states import ACTIONS, GRADES, OPEN_STATES
from sentinel.console import drawing, i18n, queries, sessions
from sentinel.console.live import sse, stream
from sentinel.console.web import LANG_COOKIE, SESSION_COOKIE, Ctx, Redirect, Refused, age, lang_of
from sentinel.engine.catalog import GRADE_NAMES, METRICS
from sentinel.hazards.states import SECTORS
from sentinel.registry.repository import token_digest
from sentinel.registry.roles import ADMIN, ALERT_STAFF, MAINTENANCE

if TYPE_CHECKING:
    from sentinel.console import Console

log = logging.getLogger("sentinel.console")
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
UNITS = {m.id: m.unit for m in METRICS}
LOGIN_CSRF = "sentinel_login_csrf"
LAST_HEARD_DAYS = 7  # how far back the devices page looks for a device's last message (older: "over 7 days ago")
# Which role sets each alert action on the page needs: the same sets the API's routes require.
ALERT_ACTIONS: dict[str, tuple[str, ...]] = {
    "ack": ALERT_STAFF,
    "shelve": ALERT_STAFF,
    "unshelve": ALERT_STAFF,
    "comment": ALERT_STAFF,
    "escalate": ALERT_STAFF,
    "remove_from_service": ADMIN,
    "return_to_service": ADMIN,
}


def safe_next(value: object) -> str:
    text = value if isinstance(value, str) else ""
    return text if text.startswith("/") and not text.startswith("//") else "/board"


def add_routes(router: APIRouter, console: Console) -> None:
    web = console.web

    @router.get("/")
    async def home() -> Response:
        return RedirectResponse("/board", status_code=303)

    @router.get("/static/console/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise LookupError(name)
        data = resources.files("sentinel.console").joinpath("static", name).read_bytes()
        return Response(data, media_type=STATIC[name], headers={"Cache-Control": "max-age=3600"})

    @router.get("/lang/{lang}")
    async def set_lang(lang: str, next: str = "/board") -> Response:
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(LANG_COOKIE, lang if lang in i18n.LANGS else "zh", max_age=365 * 86400, samesite="strict")
        return response

    @router.get("/login")
    async def login_page(request: Request, next: str = "/board", error: str = "") -> Response:
        import secrets

        token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
        response = web.render(None, request, "login.html", next=safe_next(next), csrf=token, error=error)
        response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = dict((await request.form()).multi_items())
        cookie, sent = request.cookies.get(LOGIN_CSRF, ""), form.get("csrf")
        if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie, sent):
            raise Refused(403, i18n.translate(lang_of(request), "csrf_refused"))
        key = form.get("api_key")
        key = key if isinstance(key, str) else ""
        target = safe_next(form.get("next"))
        made = await web.db(sessions.sign_in, key, web.clock(), console.session_hours) if key.strip() else None
        if made is None:
            gateway = bool(key.strip()) and await web.db(sessions.gateway_key, key)
            why = "no_console_role" if gateway else "wrong_key"
            return web.render(None, request, "login.html", 403, next=target, csrf=cookie, error=why)
        token, officer = made
        log.info("console: %r (%s) signed in", officer.name, officer.role)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(console.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        ctx = await web.ctx(request)
        await web.form(ctx)
        await web.db(sessions.sign_out, request.cookies.get(SESSION_COOKIE), ctx.now)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # -- the board --------------------------------------------------------------------------------------------------
    async def board_values(ctx: Ctx, q: Mapping[str, str]) -> dict[str, Any]:
        ctx.require(ALERT_STAFF)
        flt = queries.BoardFilter(q.get("sector"), q.get("township"), q.get("grade"), q.get("state"), q.get("site"))
        page = int(q.get("page", "1")) if q.get("page", "1").isdigit() else 1
        board = await web.db(queries.board, flt, page)
        oldest = age(ctx.lang, (ctx.now - board.oldest_unacked).total_seconds()) if board.oldest_unacked else None
        return {
            "board": board,
            "flt": flt,
            "oldest": oldest,
            "age": lambda at: age(ctx.lang, (ctx.now - at).total_seconds()),
            "grades": GRADES[::-1],
            "states": OPEN_STATES,
            "sectors": SECTORS[:-1],
            "colours": drawing.GRADE_COLOURS,
            "page_query": lambda n: _query(q, page=str(n)),
            "rule_names": {r.id: r.name_en if ctx.lang == "en" else r.name_zh for r in console.rules.rules},
        }

    @router.get("/board")
    async def board_page(request: Request) -> Response:
        ctx = await web.ctx(request)
        values = await board_values(ctx, request.query_params)
        after = console.feed.last_id or 0
        return web.render(ctx, request, "board.html", after=after, **values)

    body_cache: dict[tuple[int, str, str], tuple[float, str, str]] = {}  # key -> (made, html, as an SSE event)
    rendering: dict[tuple[int, str, str], asyncio.Future[tuple[str, str]]] = {}

    async def board_html(ctx: Ctx, view: str) -> tuple[str, str]:
        """The board's counts and rows for ``view`` (its query string). Every console showing the same view gets
        the same rendering after a live event: one per (latest event, view, language), reused for a second."""
        key = (console.feed.last_id or -1, view, ctx.lang)
        hit = body_cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < 1.0:
            return hit[1], hit[2]
        pending = rendering.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        rendering[key] = future
        try:
            now = replace(ctx, now=web.clock())
            values = await board_values(now, dict(parse_qsl(view)))
            html = bytes(web.render(now, ctx.request, "board_body.html", **values).body).decode()
            event = sse(max(key[0], 0), "board", json.dumps(html, ensure_ascii=False))  # id: the last event shown
            if len(body_cache) > 64:
                body_cache.clear()
            body_cache[key] = (time.monotonic(), html, event)
            future.set_result((html, event))
            return html, event
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a waiter gets it, nobody else must
            raise
        finally:
            rendering.pop(key, None)

    async def board_event(ctx: Ctx, view: str) -> str:
        return (await board_html(ctx, view))[1]

    @router.get("/board/body")
    async def board_body(request: Request) -> Response:
        """The board's counts and rows (the page fetches them after a reset or the database's return)."""
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        html, _ = await board_html(ctx, request.url.query)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @router.get("/events")
    async def events(request: Request, after: str = "", view: str = "") -> Response:
        """The live stream: alert events, and the board's body for ``view`` pushed after them (at most once a
        second, one rendering for every browser on the same view and language)."""
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        await console.feed.start()
        last = request.headers.get("last-event-id") or after
        return StreamingResponse(
            stream(
                console.feed,
                last,
                session=token_digest(request.cookies.get(SESSION_COOKIE) or ""),
                view=(view, ctx.lang),
                render=lambda: board_event(ctx, view),
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # -- one alert --------------------------------------------------------------------------------------------------
    @router.get("/alerts/{alert_id}")
    async def alert_page(request: Request, alert_id: int) -> Response:
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        alert = await web.db(actions.get_alert, alert_id)
        device = await web.db(queries.device_of_alert, alert_id)
        rule = (
            console.rules.rule(alert["rule_id"]) if any(r.id == alert["rule_id"] for r in console.rules.rules) else None
        )
        metric = rule.metric if rule is not None else None
        if rule is not None and metric is None and rule.terms:
            metric = rule.terms[0].metric
        chart = ""
        if metric is not None:
            end = alert["cleared_at"] or ctx.now
            span = min(max(end - alert["raised_at"], timedelta(minutes=5)), timedelta(hours=6))
            points = await web.db(
                queries.readings_around,
                device["device"],
                metric,
                alert["raised_at"],
                timedelta(minutes=10),
                span + timedelta(minutes=5),
            )
            levels = []
            if rule is not None and rule.kind == "threshold" and rule.relative_to is None:
                levels = [
                    drawing.LevelLine(
                        lv.at.value, GRADE_NAMES[lv.grade], i18n.label(ctx.lang, "grade", GRADE_NAMES[lv.grade])
                    )
                    for lv in rule.levels
                ]
            if points:
                chart = drawing.chart(points, levels, alert["raised_at"], web.tz, UNITS.get(metric, ""))
        allowed = {a for a, roles in ALERT_ACTIONS.items() if _may(ctx, roles) and alert["state"] in ACTIONS[a]}
        return web.render(
            ctx,
            request,
            "alert.html",
            alert=alert,
            device=device,
            rule=rule,
            metric=metric,
            unit=UNITS.get(metric or "", ""),
            grade_names=GRADE_NAMES,
            chart=chart,
            allowed=allowed,
            may_maintain=_may(ctx, MAINTENANCE),
            colours=drawing.GRADE_COLOURS,
        )

    @router.post("/alerts/{alert_id}/action")
    async def alert_action(request: Request, alert_id: int) -> Response:
        ctx = await web.ctx(request)
        form = await web.form(ctx)
        action = str(form.get("action", ""))
        if action not in ALERT_ACTIONS:
            raise Refused(422, f"action: {action!r}")
        ctx.require(ALERT_ACTIONS[action])
        reason = str(form.get("reason", "")).strip()
        if action == "escalate":
            hazard_id = await web.db(actions.escalate, alert_id, ctx.officer.name, reason, ctx.now)
            raise Redirect(f"/hazards/{hazard_id}")
        until = None
        if action == "shelve":
            minutes = str(form.get("minutes", ""))
            if not minutes.replace(".", "", 1).isdigit() or float(minutes) <= 0:
                raise Refused(422, ctx.t("minutes") + ": > 0")
            until = ctx.now + timedelta(minutes=float(minutes))
        await web.db(actions.act, alert_id, action, ctx.officer.name, reason, ctx.now, until=until)
        raise Redirect(f"/alerts/{alert_id}")

    # -- devices ----------------------------------------------------------------------------------------------------
    @router.post("/devices/{device}/maintenance")
    async def maintenance(request: Request, device: str) -> Response:
        ctx = await web.ctx(request)
        form = await web.form(ctx)
        ctx.require(MAINTENANCE)
        on = form.get("maintenance") == "on"
        await web.db(set_maintenance, device, on, ctx.officer.name, str(form.get("reason", "")), ctx.now)
        raise Redirect(safe_next(form.get("next")) if form.get("next") else "/devices")

    @router.get("/devices")
    async def devices_page(request: Request) -> Response:
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        found = await web.db(queries.devices, ctx.now, timedelta(days=LAST_HEARD_DAYS))
        show = request.query_params.get("show", "problems")
        listed = found if show == "all" else [d for d in found if d["offline"] or d["maintenance"] or d["never_heard"]]
        return web.render(
            ctx,
            request,
            "devices.html",
            devices=listed,
            total=len(found),
            show=show,
            may_maintain=_may(ctx, MAINTENANCE),
            recent_days=LAST_HEARD_DAYS,
            counts={
                "offline": sum(d["offline"] for d in found),
                "in_maintenance": sum(d["maintenance"] for d in found),
                "never_heard": sum(d["never_heard"] for d in found),
            },
        )

    # -- map and sites ----------------------------------------------------------------------------------------------
    @router.get("/map")
    async def map_page(request: Request) -> Response:
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        sector, township = request.query_params.get("sector") or None, request.query_params.get("township") or None
        found = await web.db(queries.sites, sector, township)
        towns = await web.db(queries.townships)
        labels = {g: i18n.label(ctx.lang, "grade", g) for g in (*GRADES, "normal")}
        svg = drawing.county_map(found, labels, console.tile_url)
        return web.render(
            ctx,
            request,
            "map.html",
            svg=svg,
            sites=found,
            towns=towns,
            sector=sector,
            township=township,
            sectors=SECTORS[:-1],
            colours=drawing.GRADE_COLOURS,
            legend=("red", "orange", "yellow", "blue", "normal"),
        )

    @router.get("/sites/{site_id}")
    async def site_page(request: Request, site_id: str) -> Response:
        ctx = await web.ctx(request)
        ctx.require(ALERT_STAFF)
        found = await web.db(queries.site, site_id)
        board = await web.db(queries.board, queries.BoardFilter(site=site_id), 1, 200)
        logs = {
            d["device"]: await web.db(maintenance_log, d["device"], 3) for d in found["devices"] if d["maintenance"]
        }
        return web.render(
            ctx,
            request,
            "site.html",
            site=found,
            board=board,
            logs=logs,
            colours=drawing.GRADE_COLOURS,
            may_maintain=_may(ctx, MAINTENANCE),
            age=lambda at: age(ctx.lang, (ctx.now - at).total_seconds()),
        )


def _may(ctx: Ctx, roles: tuple[str, ...]) -> bool:
    from sentinel.registry.roles import may

    return may(ctx.officer.role, roles)


def _query(query: Mapping[str, str], **changes: str) -> str:
    params = dict(query) | changes
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items() if v)
