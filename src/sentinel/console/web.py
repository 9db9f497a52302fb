"""The console's plumbing: the composition root's connection pool used from worker threads, Jinja2 templates with the
catalogue, the signed-in officer of a request, CSRF checks, and one route class that turns every failure into a page
in the officer's language (never a stack trace): 403, 404, 409 with the state machine's reason, 422, 503 while the
database is away, 500 for anything else (logged)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import psycopg
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.concurrency import run_in_threadpool

from sentinel.alerts.words import event_reason
from sentinel.console import i18n
from sentinel.console.sessions import Officer, csrf_ok, lookup
from sentinel.errors import DatabaseUnavailable, TransitionError
from sentinel.registry.roles import may

log = logging.getLogger("sentinel.console")
T = TypeVar("T")
SESSION_COOKIE = "sentinel_session"
LANG_COOKIE = "sentinel_lang"


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class Refused(Exception):
    """A page-level refusal (403 role or CSRF, 422 bad input) with a message already in the officer's words."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def now_utc() -> datetime:
    return datetime.now(UTC)


def lang_of(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "zh")
    return lang if lang in i18n.LANGS else "zh"


@dataclass
class Ctx:
    """One request as the pages see it."""

    request: Request
    lang: str
    officer: Officer
    now: datetime

    def t(self, key: str, **values: object) -> str:
        return i18n.translate(self.lang, key, **values)

    def require(self, roles: tuple[str, ...]) -> None:
        """Refuse with 403 unless the officer's role may take an action open to ``roles`` (the API's check)."""
        if not may(self.officer.role, roles):
            log.warning(
                "console refused: key %r (role %s) tried %s",
                self.officer.name,
                self.officer.role,
                self.request.url.path,
            )
            need = " / ".join(i18n.label(self.lang, "role", r) for r in dict.fromkeys((*roles, "admin")))
            raise Refused(
                403, self.t("forbidden_role", role=i18n.label(self.lang, "role", self.officer.role), need=need)
            )


class Web:
    """What every page needs: the pool (the composition root's, for code in threads), templates, clock and zone."""

    def __init__(self, pool: ConnectionPool[Any], tz: ZoneInfo, clock: Callable[[], datetime] | None = None) -> None:
        self.pool = pool
        self.tz = tz
        self.clock = clock or now_utc
        self.env = Environment(
            loader=PackageLoader("sentinel.console", "templates"), autoescape=select_autoescape(["html"])
        )
        self.env.globals |= {"fmt": self.fmt, "label": i18n.label, "reason": event_reason, "quote": quote}

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args)`` on a pooled connection in a worker thread (the event loop never waits on it)."""

        def run() -> T:
            with self.pool.connection() as conn:
                return fn(conn, *args, **kwargs)

        return await run_in_threadpool(run)

    # -- requests -------------------------------------------------------------------------------------------------
    async def ctx(self, request: Request) -> Ctx:
        """The signed-in officer, or a redirect to the sign-in page. The session is looked up (joined with its API
        key) on every request, page views included: signing out, expiry and revoking the key end it at once across
        the process. The live board costs no lookups (its bodies are pushed), so this is one indexed query per page
        an officer opens; open live streams are rechecked by the feed on each poll."""
        now = self.clock()
        officer = await self.db(lookup, request.cookies.get(SESSION_COOKIE), now)
        if officer is None:
            raise Redirect(
                "/login?next=" + quote(request.url.path + ("?" + request.url.query if request.url.query else ""))
            )
        return Ctx(request, lang_of(request), officer, now)

    async def form(self, ctx: Ctx) -> dict[str, Any]:
        """The posted form, refused with 403 unless it carries this session's CSRF token."""
        form = await ctx.request.form()
        data = dict(form.multi_items())
        sent = data.get("csrf")
        if not csrf_ok(ctx.officer, sent if isinstance(sent, str) else None):
            log.warning(
                "console refused: form without a valid CSRF token from %r to %s", ctx.officer.name, ctx.request.url.path
            )
            raise Refused(403, ctx.t("csrf_refused"))
        return data

    def render(self, ctx: Ctx | None, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        lang = ctx.lang if ctx else lang_of(request)
        html = self.env.get_template(name).render(
            t=lambda key, **v: i18n.translate(lang, key, **v),
            lang=lang,
            officer=ctx.officer if ctx else None,
            path=request.url.path,
            query=request.url.query,
            now=ctx.now if ctx else self.clock(),
            **values,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def local_today(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()

    def local_start(self, day: date) -> datetime:
        """The first instant of ``day`` in the display time zone."""
        return datetime.combine(day, time(), self.tz)

    def fmt(self, value: datetime | None, short: bool = False) -> str:
        if value is None:
            return "—"
        local = value.astimezone(self.tz)
        return local.strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S")

    def error(self, request: Request, status: int, title_key: str, message: str) -> HTMLResponse:
        lang = lang_of(request)
        return self.render(
            None,
            request,
            "error.html",
            status,
            title=i18n.translate(lang, title_key),
            message=message,
            retry=status == 503,
        )


def age(lang: str, seconds: float) -> str:
    s = max(0, int(seconds))
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if lang == "en":
        return f"{d}d {h}h" if d else f"{h}h {m}m" if h else f"{m}m {s % 60}s"
    return f"{d}天{h}小时" if d else f"{h}小时{m}分" if h else f"{m}分{s % 60}秒"


def route_class(web_of: Callable[[], Web]) -> type[APIRoute]:
    """An APIRoute whose handler answers every failure with a page."""

    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                web = web_of()
                try:
                    return await handler(request)
                except Redirect as exc:
                    return RedirectResponse(exc.url, status_code=303)
                except Refused as exc:
                    key = "forbidden" if exc.status == 403 else "invalid"
                    return web.error(request, exc.status, key, exc.message)
                except TransitionError as exc:
                    return web.error(request, 409, "refused", exc.why)
                except LookupError as exc:
                    return web.error(request, 404, "not_found", str(exc).strip("'\""))
                except (PoolTimeout, DatabaseUnavailable, psycopg.OperationalError) as exc:
                    log.warning("console: database unavailable on %s (%s)", request.url.path, type(exc).__name__)
                    return web.error(request, 503, "db_away_title", i18n.translate(lang_of(request), "db_away"))
                except ValueError as exc:
                    return web.error(request, 422, "invalid", str(exc))
                except RequestValidationError as exc:
                    first = exc.errors()[0] if exc.errors() else {}
                    where = ".".join(str(p) for p in first.get("loc", ()))
                    value = first.get("input", "")
                    return web.error(request, 422, "invalid", f"{where}: {value!r}")
                except Exception:
                    log.exception("console: failed on %s %s", request.method, request.url.path)
                    return web.error(request, 500, "error_title", i18n.translate(lang_of(request), "error_body"))

            return guarded

    return ConsoleRoute
