"""The composition root: :class:`Sentinel`, the one place where the running service is assembled.

``sentinel serve``, ``sentinel demo``, the test kit (:mod:`sentinel.testing.service`) and the benchmarks all build
the service here, from settings; what differs between them is an override, never a second assembly::

    settings = load_settings()
    async with Sentinel.from_settings(settings) as sentinel:         # serve: everything on
        ...
    Sentinel.from_settings(settings, database=db, schema="upgrade")  # demo: its own database, migrates it
    Sentinel.from_settings(settings, engine=False, webhooks=False, upkeep=False)   # the test kit's default

Parts, in start order (stop is the reverse): the database (the embedded server when ``database_url`` is unset,
unless a :class:`~sentinel.store.database.Database` is handed in) and its schema check; two connection pools of
``db_pool_size`` connections (``pool``: async, for code on the event loop; ``sync_pool``: for code in threads);
the engine catalogue, the registry and the duplicate filter; the engine runner (which catches up from the database
before ingest accepts anything; it writes transitions through the alert lifecycle, injected here); the ingest sink;
the registry refresh loop; the MQTT collector (when ``mqtt_url`` or ``mqtt=`` is set); the notifier (webhooks,
group robots, SMS, e-mail and escalation: :mod:`sentinel.notify`); the anomaly refits (when ``anomaly_refit_every_s``
is set: :mod:`sentinel.engine.anomaly.refit`) and the alert/hazard upkeep loop; plugged-in parts; last, the HTTP
API (uvicorn in this event loop, on ``http_host`` / ``http_port``; port 0 picks a free one) with the duty officer's
console at ``/`` (:mod:`sentinel.console`; stopped first, its live streams would hold the server's shutdown).
Every loop rides out a database outage: ingest spools, the runner reloads from its checkpoint, the notifier, the
refits and upkeep retry, the API answers 503 with a JSON body until the database is back.

Plug-in contract (the web console, notification channels):

* **HTTP routes**: ``sentinel.add_router(router)`` with a FastAPI ``APIRouter`` (give it its own ``prefix``), before
  start. Its routes reach the running service through the dependency
  ``ctx: Annotated[ApiContext, Depends(sentinel.api.context.context)]``: ``ctx.pool`` (async psycopg pool),
  ``ctx.sync_pool`` (in plain ``def`` routes), ``ctx.clock()``, ``ctx.admission.registry``, ``ctx.part(Type)`` (a
  plugged-in part, e.g. the console's own state). Use ``sentinel.api.auth.require(role, ...)`` for keys. Static
  files or a whole sub-application: ``sentinel.mount(path, asgi_app)``.
* **Background parts**: ``sentinel.add_part(part)`` before start, where ``part`` is either an object with
  ``async start()`` and ``async stop()`` (started after the core parts, in the order added; stopped first, in
  reverse) or a zero-argument coroutine function (a run loop: started as a task, cancelled at stop). A part that
  needs the database takes ``sentinel.conninfo`` or, once started, ``sentinel.pool`` / ``sentinel.sync_pool``; it
  must ride out a database outage itself (catch, log, retry). Parts are listed in ``ctx.parts`` for the routes.
* Parts live in their own packages (``sentinel.console``, ``sentinel.notify``) and import downward only; this
  module imports them, never the other way round (the layers contract in pyproject.toml checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

from fastapi import APIRouter
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from starlette.types import ASGIApp

from sentinel.alerts.upkeep import upkeep_loop
from sentinel.alerts.watch import AlertWriter
from sentinel.api.app import create_app
from sentinel.api.auth import require
from sentinel.api.context import ApiContext, now_utc
from sentinel.api.problems import answers
from sentinel.api.server import ApiServer
from sentinel.batch import IngestBatch
from sentinel.collect.mqtt import CollectorConfig, MqttCollector
from sentinel.console import Console, build_console
from sentinel.engine.anomaly.refit import RefitConfig, refit_loop
from sentinel.engine.catalog import METRICS
from sentinel.engine.loader import load_rules
from sentinel.engine.runner import EngineRunner, WallClock, wall_now
from sentinel.errors import MigrationError
from sentinel.ingest.admission import Admission
from sentinel.ingest.dedup import DuplicateFilter
from sentinel.ingest.letters import LetterLimiter
from sentinel.ingest.sink import Clock, IngestSink, wall_clock_us
from sentinel.notify.api import make_router as notify_router
from sentinel.notify.service import Notifier, build_notifier
from sentinel.observability import IngestMetrics
from sentinel.registry.keys import KeyStore
from sentinel.registry.repository import RegistryView, ensure_metrics
from sentinel.settings import Settings
from sentinel.store import migrations
from sentinel.store.database import Database, connect
from sentinel.store.ingest_writer import IngestWriter
from sentinel.store.spool import Spool
from sentinel.wire import WireLimits

log = logging.getLogger(__name__)
RunLoop = Callable[[], Coroutine[Any, Any, None]]
PG_OPTIONS = {"options": "-c timezone=UTC", "connect_timeout": 5}
# How long a request waits for a pooled connection; while the database is away it then answers 503.
POOL_WAIT_S = 5.0


@runtime_checkable
class Part(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def prepare_catalogue(conninfo: str) -> None:
    """Give every metric of the engine's catalogue a row (and so a stable metric_id)."""
    with connect(conninfo) as conn:
        ensure_metrics(conn, [(m.id, m.unit) for m in METRICS])


def check_schema(conninfo: str) -> None:
    applied = set(migrations.applied_versions(conninfo))
    pending = [v for v in migrations.known_versions() if v not in applied]
    if pending:
        raise MigrationError(f"the database lacks migrations {', '.join(pending)}: run `sentinel db upgrade` first")


class Sentinel:
    """The running service; build it with :meth:`from_settings` (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        schema: Literal["check", "upgrade", "trust"] = "check",
        dialect: str | None = None,
        spool_dir: Path | None = None,
        mqtt: CollectorConfig | None = None,
        engine: bool = True,
        runner: EngineRunner | None = None,
        engine_clock: WallClock = wall_now,
        on_durable: Callable[[Callable[[IngestBatch], None]], Callable[[IngestBatch], None]] | None = None,
        webhooks: bool = True,
        notifier: Notifier | None = None,
        upkeep: bool = True,
        http: bool = True,
        console: bool = True,
        ingest_clock: Clock = wall_clock_us,
        api_clock: Callable[[], Any] = now_utc,
        dedup_window_s: float = 3600.0,
        registry_refresh_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self._given_db = database
        self._schema = schema
        self._dialect = dialect
        self.database: Database | None = database
        self._db_exit: contextlib.ExitStack | None = None
        self.spool_dir = spool_dir or settings.spool_dir
        self.mqtt = mqtt if mqtt is not None else _collector_config(settings)
        self._engine = engine
        self.runner = runner
        self._engine_clock = engine_clock
        self._wrap_durable = on_durable
        self._webhooks = webhooks
        self.notifier = notifier
        self._upkeep = upkeep
        self._http = http
        self._console = console
        self.console: Console | None = None
        self._ingest_clock = ingest_clock
        self._api_clock = api_clock
        self._dedup_window_s = dedup_window_s
        self._refresh_s = registry_refresh_s
        self.metrics = IngestMetrics()
        self.dedup = DuplicateFilter(window_s=dedup_window_s)
        self.admission = Admission(RegistryView(), self.dedup)
        self.parts: list[Part | RunLoop] = []
        self._routers: list[APIRouter] = []
        self._mounts: list[tuple[str, ASGIApp]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started_parts: list[Part] = []
        self.api: ApiServer | None = None
        self.collector: MqttCollector | None = None
        self.conninfo = ""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Sentinel:
        """The service ``settings`` describe; ``overrides`` are the keyword arguments of :class:`Sentinel`."""
        return cls(settings, **overrides)

    # -- plug points -------------------------------------------------------------------------------------------
    def add_router(self, router: APIRouter) -> None:
        self._routers.append(router)

    def mount(self, path: str, app: ASGIApp) -> None:
        self._mounts.append((path, app))

    def add_part(self, part: Part | RunLoop) -> None:
        self.parts.append(part)

    # -- what the parts and the callers read --------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.api.url if self.api is not None else ""

    @property
    def port(self) -> int:
        return self.api.port if self.api is not None else 0

    @property
    def dialect(self) -> str:
        return self._dialect or "unknown"

    def running(self) -> list[str]:
        """The parts running now, in start order (for tests and the start lines)."""
        started = getattr(self, "sink", None) is not None
        names = (["engine-runner"] if started and self.runner is not None else []) + (
            ["ingest-sink"] if started else []
        )
        names += [task.get_name() for task in self._tasks if not task.done()]
        names += [type(part).__name__ for part in self._started_parts]
        if self.api is not None:
            names.append("http-api")
        return names

    async def reload_registry(self) -> None:
        def load() -> RegistryView:
            with self.sync_pool.connection() as conn:
                return RegistryView.load(conn)

        self.admission.registry = await asyncio.to_thread(load)

    # -- start and stop ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if self._http:  # first: a port in use fails before anything is started
            self.api = ApiServer(self.settings.http_host, self.settings.http_port)
            self.api.bind()
        if self.database is None:
            self._db_exit = contextlib.ExitStack()
            self.database = await asyncio.to_thread(self._db_exit.enter_context, Database.open(self.settings))
        self.conninfo = conninfo = self.database.conninfo
        if self._schema == "upgrade":
            await asyncio.to_thread(migrations.upgrade, conninfo)
        elif self._schema == "check":
            await asyncio.to_thread(check_schema, conninfo)
        if self._dialect is None:
            self._dialect = await asyncio.to_thread(lambda: self.database.dialect if self.database else "unknown")
        size = self.settings.db_pool_size
        # check=: a connection the database dropped (an outage) is replaced when next taken, not handed out.
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            kwargs=PG_OPTIONS,
            open=False,
            timeout=POOL_WAIT_S,
            check=AsyncConnectionPool.check_connection,
        )
        self.sync_pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            kwargs=PG_OPTIONS,
            open=False,
            timeout=POOL_WAIT_S,
            check=ConnectionPool.check_connection,
        )
        await self.pool.open(wait=True, timeout=30)
        await asyncio.to_thread(self.sync_pool.open, True, 30)

        await asyncio.to_thread(prepare_catalogue, conninfo)
        await self.reload_registry()
        self.writer = IngestWriter(conninfo, self.dialect)
        writer = self.writer  # streamed: a full window's keys are never all in memory as tuples
        await asyncio.to_thread(lambda: self.dedup.load(writer.recent_message_keys(self._dedup_window_s)))

        if self._engine and self.runner is None:
            s = self.settings
            self.runner = EngineRunner(
                conninfo,
                lateness_s=s.lateness_s,
                models_dir=s.anomaly_models_dir,
                rewind_max_readings=s.rewind_max_readings,
                tick_s=s.engine_tick_s,
                checkpoint_every_s=s.engine_checkpoint_s,
                write_transitions=AlertWriter(),
                clock=self._engine_clock,
            )
        on_durable: Callable[[IngestBatch], None] | None = None
        if self.runner is not None:
            on_durable = self.runner.on_durable
        if on_durable is not None and self._wrap_durable is not None:
            on_durable = self._wrap_durable(on_durable)
        self.sink = IngestSink(
            self.writer,
            Spool(self.spool_dir),
            self.admission,
            self.metrics,
            queue_max_batches=self.settings.queue_max_batches,
            clock=self._ingest_clock,
            on_durable=on_durable,
            limits=WireLimits(max_payload_bytes=self.settings.max_payload_bytes),
            letters=LetterLimiter.from_settings(self.settings),
        )
        # API keys are looked up per request (a revoked key stops at once); while the database is away the last
        # registry view answers, so gateways keep posting into the spool.
        self.keys = KeyStore(conninfo, lambda: self.admission.registry)
        runner = self.runner
        if runner is not None:
            self.metrics.watch_engine(lambda: runner.engine.stats)
            await runner.start()
        await self.sink.start()
        self._spawn(self._refresh_loop(), "registry-refresh")
        if self.mqtt is not None:
            collector = self.collector = MqttCollector(self.mqtt, self.sink.mqtt)
            self.metrics.watch_mqtt(lambda: collector.stats, collector.connected.is_set)
            self._spawn(collector.run(), "mqtt-collector")
        # Notifications (sentinel.notify): webhooks, group robots, SMS, e-mail, escalation, from the outbox. A caller
        # may hand in its own notifier (a test's clock); with webhooks=False it serves the routes but sends nothing.
        if self.notifier is None and self._webhooks:
            self.notifier = build_notifier(self.settings, conninfo, registry=self.metrics.registry)
        if self.notifier is not None and self._webhooks:
            self._spawn(self.notifier.run(), "notifier")
        self._start_refits()
        if self._upkeep:
            self._spawn(upkeep_loop(conninfo, self.settings.upkeep_interval_s), "alert-hazard-upkeep")
        for part in self.parts:
            if isinstance(part, Part):
                await part.start()
                self._started_parts.append(part)
            else:
                self._spawn(part(), getattr(part, "__name__", "part"))
        if self.api is not None:
            ctx = ApiContext(
                conninfo=conninfo,
                pool=self.pool,
                sync_pool=self.sync_pool,
                sink=self.sink,
                admission=self.admission,
                metrics=self.metrics,
                reload_registry=self.reload_registry,
                keys=self.keys,
                clock=self._api_clock,
                parts=list(self.parts),
            )
            routers = list(self._routers)
            if self._console:  # the duty officer's console at / (sentinel.console); its live feed polls alert events
                self.console = build_console(self.settings, ctx.sync_pool, ctx.pool, clock=ctx.clock)
                routers.append(self.console.router)
                await self.console.start()
            if self.notifier is not None:  # /v1/duty, /v1/alerts/{id}/notifications, /v1/notify/channels
                readers = require("officer", "supervisor")
                routers.append(notify_router(self.notifier, readers, require("admin"), answers=answers))
            app = create_app(ctx, routers)
            for path, sub in self._mounts:
                app.mount(path, sub)
            await self.api.start(app)

    async def stop(self) -> None:
        if self.console is not None:  # first: an open live stream would hold the HTTP server's shutdown
            with _logged("console"):
                await self.console.stop()
            self.console = None
        if self.api is not None:
            with _logged("HTTP API"):
                await self.api.stop()
        for part in reversed(self._started_parts):
            with _logged(type(part).__name__):
                await part.stop()
        self._started_parts.clear()
        if self.collector is not None:
            with _logged("MQTT collector"):
                await self.collector.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if getattr(self, "sink", None) is not None:
            with _logged("ingest sink"):
                await self.sink.stop()
        if self.runner is not None:
            with _logged("engine runner"):
                await self.runner.stop()
        if getattr(self, "keys", None) is not None:
            self.keys.close()
        if getattr(self, "pool", None) is not None:
            await self.pool.close()
        if getattr(self, "sync_pool", None) is not None:
            await asyncio.to_thread(self.sync_pool.close)
        if self._db_exit is not None:
            await asyncio.to_thread(self._db_exit.close)
            self._db_exit = None
            self.database = self._given_db

    async def __aenter__(self) -> Sentinel:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    def _start_refits(self) -> None:
        """Scheduled refits of the anomaly models (engine/anomaly/refit.py), when anomaly_refit_every_s is set."""
        s, conninfo = self.settings, self.conninfo
        if not s.anomaly_refit_every_s or s.anomaly_models_dir is None:
            return
        window = timedelta(seconds=s.anomaly_refit_window_s)
        config = RefitConfig(window, s.anomaly_refit_min_rows, s.anomaly_model_versions)
        rules = self.runner.rules if self.runner is not None else load_rules()
        loop = refit_loop(lambda: connect(conninfo), rules, s.anomaly_models_dir, config, s.anomaly_refit_every_s)
        self._spawn(loop, "anomaly-refit")

    async def _refresh_loop(self) -> None:
        # Registry changes made by another process (`sentinel registry load`) reach the running service here.
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.reload_registry()
            except Exception as exc:
                log.warning("registry refresh failed (keeping the last one): %s", type(exc).__name__)


def _collector_config(settings: Settings) -> CollectorConfig | None:
    return CollectorConfig.from_settings(settings) if settings.mqtt_url is not None else None


@contextlib.contextmanager
def _logged(what: str) -> Any:
    try:
        yield
    except Exception as exc:
        log.warning("stopping %s: %s", what, exc)
