"""Running Sentinel as a service: the ingest pipeline and the HTTP API in one event loop (``sentinel serve``).

The database must be migrated (``sentinel db upgrade``); serve refuses to start on a schema it does not know
rather than guessing. Without ``SENTINEL_MQTT_URL`` only HTTP ingest runs (the demo brings its own broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator

import uvicorn

from sentinel.alerts.notify import WebhookDelivery
from sentinel.alerts.stage import EngineStage
from sentinel.alerts.upkeep import upkeep_loop
from sentinel.api.app import create_app
from sentinel.collect.mqtt import CollectorConfig
from sentinel.errors import MigrationError
from sentinel.ingest.letters import LetterLimiter
from sentinel.pipeline import IngestPipeline
from sentinel.settings import Settings
from sentinel.store import migrations
from sentinel.store.database import Database
from sentinel.wire import WireLimits

log = logging.getLogger(__name__)


def check_schema(db: Database) -> None:
    applied = set(migrations.applied_versions(db.conninfo))
    pending = [v for v in migrations.known_versions() if v not in applied]
    if pending:
        raise MigrationError(f"the database lacks migrations {', '.join(pending)}: run `sentinel db upgrade` first")


def collector_config(settings: Settings, url: str | None) -> CollectorConfig | None:
    if url is None:
        return None
    return CollectorConfig.from_url(
        url,
        client_id=settings.mqtt_client_id,
        session_expiry_s=settings.mqtt_session_expiry_s,
        batch_max_messages=settings.batch_max_messages,
        batch_max_wait_s=settings.batch_max_wait_ms / 1000,
    )


@contextlib.asynccontextmanager
async def running_pipeline(settings: Settings, db: Database, mqtt_url: str | None) -> AsyncIterator[IngestPipeline]:
    pipeline = IngestPipeline(
        db.conninfo,
        db.dialect,
        settings.spool_dir,
        mqtt=collector_config(settings, mqtt_url),
        queue_max_batches=settings.queue_max_batches,
        limits=WireLimits(max_payload_bytes=settings.max_payload_bytes),
        letters=LetterLimiter.from_settings(settings),
        stage=EngineStage(
            db.conninfo,
            lateness_s=settings.lateness_s,
            models_dir=settings.anomaly_models_dir,
            rewind_max_readings=settings.rewind_max_readings,
            tick_s=settings.engine_tick_s,
            checkpoint_every_s=settings.engine_checkpoint_s,
        ),
    )
    async with pipeline:
        # Notifications and the register's clock-driven work (shelve expiry, overdue escalation) run beside ingest.
        side = [
            asyncio.create_task(WebhookDelivery(db.conninfo).run(settings.webhook_poll_s), name="webhook-delivery"),
            asyncio.create_task(upkeep_loop(db.conninfo, settings.upkeep_interval_s), name="alert-hazard-upkeep"),
        ]
        try:
            yield pipeline
        finally:
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)


class _OwnSignalsServer(uvicorn.Server):
    """uvicorn would take SIGINT/SIGTERM for itself; Sentinel stops its stages in its own order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """uvicorn inside our own loop, so signals and shutdown order stay ours."""

    def __init__(self, pipeline: IngestPipeline, host: str, port: int) -> None:
        config = uvicorn.Config(create_app(pipeline), host=host, port=port, log_level="warning", lifespan="off")
        self.server = _OwnSignalsServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(), name="http-api")
        while not self.server.started:
            if self._task.done():
                await self._task  # raises the bind error
                raise OSError("the HTTP server stopped during start-up")
            await asyncio.sleep(0.02)

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task


async def wait_for_stop_signal() -> None:
    """Return on SIGINT, SIGTERM or SIGHUP (its terminal closed): the embedded database must not outlive us."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


async def serve(settings: Settings, db: Database) -> None:
    check_schema(db)
    async with running_pipeline(settings, db, settings.mqtt_url) as pipeline:
        api = ApiServer(pipeline, settings.http_host, settings.http_port)
        await api.start()
        log.info("Sentinel serving on http://%s:%d (MQTT: %s)", settings.http_host, api.port, settings.mqtt_url)
        try:
            await wait_for_stop_signal()
        finally:
            await api.stop()
