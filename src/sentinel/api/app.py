"""The HTTP API: ingest, registry, health and metrics, with the OpenAPI document at /openapi.json.

``create_app(pipeline)`` builds the app around a started :class:`~sentinel.pipeline.IngestPipeline`; errors are
JSON bodies ``{"error", "reason", "path", ...}`` rather than FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sentinel import __version__
from sentinel.api.alerts import router as alerts_router
from sentinel.api.auth import require
from sentinel.api.hazards import router as hazards_router
from sentinel.collect.http import router as ingest_router
from sentinel.collect.http import wire_components
from sentinel.console import build_console
from sentinel.errors import RegistryFileError
from sentinel.pipeline import IngestPipeline
from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import ApiKey, upsert_registry
from sentinel.settings import Settings


def create_app(pipeline: IngestPipeline, settings: Settings | None = None) -> FastAPI:
    app = FastAPI(title="Sentinel", version=__version__, description="Work-safety risk monitoring and early warning")
    app.state.pipeline = pipeline
    # The duty officer's console at / (sentinel.console); the composition root will own this line.
    app.state.console = build_console(settings or Settings(), pipeline.conninfo)
    app.include_router(app.state.console.router)
    app.include_router(ingest_router)
    app.include_router(alerts_router)
    app.include_router(hazards_router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            document.setdefault("components", {}).setdefault("schemas", {}).update(wire_components())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {"error": "http_error", "reason": str(exc.detail)}
        return JSONResponse(detail, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        path = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": "invalid_request", "reason": first["msg"], "path": path}, status_code=422)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """Ready when the database answers; while it is away ingest still accepts into the local spool."""
        spooling = pipeline.sink.spooling
        try:
            with psycopg.connect(pipeline.conninfo, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            database = "ok"
        except psycopg.Error:
            database = "unavailable"
        ready = database == "ok"
        body = {"status": "ready" if ready else "degraded", "database": database, "spooling": spooling}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(pipeline.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.put("/v1/registry", tags=["registry"], responses={400: {"description": "invalid registry"}})
    async def put_registry(request: Request, _key: Annotated[ApiKey, Depends(require("admin"))]) -> dict[str, Any]:
        """Upsert sites, gateways and devices (the registry file's shape, as JSON). Admin only."""
        body = await request.body()
        try:
            registry = msgspec.json.decode(body, type=RegistryFile, strict=False)
        except msgspec.DecodeError as exc:
            raise HTTPException(400, detail={"error": "invalid_registry", "reason": str(exc)}) from exc
        try:
            with psycopg.connect(pipeline.conninfo) as conn:
                report = upsert_registry(conn, registry)
        except RegistryFileError as exc:
            raise HTTPException(400, detail={"error": "invalid_registry", "reason": str(exc)}) from exc
        pipeline.reload_registry()
        return {"sites": report.sites, "gateways": report.gateways, "devices": report.devices}

    return app
