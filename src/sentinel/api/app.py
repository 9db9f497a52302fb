"""The HTTP API: ingest, registry, health and metrics, with the OpenAPI document at /openapi.json.

``create_app(ctx, routers)`` builds the app around a started Sentinel's :class:`~sentinel.api.context.ApiContext`
(the composition root, :mod:`sentinel.app`, calls it); extra routers (the console's) are included after the core
ones. Errors are JSON bodies ``{"error", "reason", "path", ...}`` rather than FastAPI's ``{"detail": ...}``. While
the database is away every route that needs it answers 503 ``{"error": "database_unavailable", ...}`` (one handler
below); ingest keeps accepting into the local spool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
import psycopg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from sentinel import __version__
from sentinel.api.alerts import router as alerts_router
from sentinel.api.auth import require
from sentinel.api.context import ApiContext
from sentinel.api.hazards import router as hazards_router
from sentinel.api.ingest import router as ingest_router
from sentinel.api.ingest import wire_components
from sentinel.api.problems import NO_NUL, NO_NUL_REASON, SAID, SAID_REASON, answers
from sentinel.errors import DatabaseUnavailable, RegistryFileError
from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import ApiKey, upsert_registry

log = logging.getLogger(__name__)
DATABASE_AWAY = {
    "error": "database_unavailable",
    "reason": "数据库暂不可用，稍后重试 (the database is unavailable; retry shortly)",
}

UNREADABLE_BODY = {
    "error": "invalid_request",
    "reason": "请求体不是 UTF-8 编码的 JSON (the body is not UTF-8 encoded JSON)",
    "path": "body",
}
PATTERN_REASONS = {NO_NUL: NO_NUL_REASON, SAID: SAID_REASON}


def create_app(ctx: ApiContext, routers: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(title="Sentinel", version=__version__, description="Work-safety risk monitoring and early warning")
    app.state.context = ctx
    app.include_router(ingest_router)
    app.include_router(alerts_router)
    app.include_router(hazards_router)
    for router in routers:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            document.setdefault("components", {}).setdefault("schemas", {}).update(wire_components())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException is one too
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict):
            return JSONResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8): invalid like malformed JSON, 422
            return JSONResponse(UNREADABLE_BODY, status_code=422)
        body = {"error": "http_error", "reason": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(DatabaseUnavailable)
    async def _database_away(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: database unavailable (%s)", request.method, request.url.path, type(exc).__name__)
        return JSONResponse(DATABASE_AWAY, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        path = ".".join(str(p) for p in first.get("loc", ()))
        extra = first.get("type") == "extra_forbidden"
        reason = f"unknown field {path.removeprefix('body.')!r}" if extra else first["msg"]
        ctx_ = first.get("ctx")
        pattern = ctx_.get("pattern") if isinstance(ctx_, dict) else None
        if first.get("type") == "string_pattern_mismatch" and pattern in PATTERN_REASONS:
            reason = f"{path}: {PATTERN_REASONS[pattern]}"
        return JSONResponse({"error": "invalid_request", "reason": reason, "path": path}, status_code=422)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """Ready when the database answers; while it is away ingest still accepts into the local spool."""
        spooling = ctx.sink.spooling
        try:
            async with ctx.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            database = "ok"
        except (psycopg.Error, PoolTimeout):
            database = "unavailable"
        ready = database == "ok"
        body = {"status": "ready" if ready else "degraded", "database": database, "spooling": spooling}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.put("/v1/registry", tags=["registry"], responses=answers(400, 401, 403, 503, _400="invalid registry"))
    async def put_registry(request: Request, _key: Annotated[ApiKey, Depends(require("admin"))]) -> dict[str, Any]:
        """Upsert sites, gateways and devices (the registry file's shape, as JSON). Admin only."""
        body = await request.body()
        try:
            registry = msgspec.json.decode(body, type=RegistryFile, strict=False)
        except msgspec.DecodeError as exc:
            raise HTTPException(400, detail={"error": "invalid_registry", "reason": str(exc)}) from exc

        def upsert() -> Any:
            with ctx.sync_pool.connection() as conn:
                return upsert_registry(conn, registry)

        try:
            report = await asyncio.to_thread(upsert)
        except RegistryFileError as exc:
            raise HTTPException(400, detail={"error": "invalid_registry", "reason": str(exc)}) from exc
        await ctx.reload_registry()
        return {"sites": report.sites, "gateways": report.gateways, "devices": report.devices}

    return app
