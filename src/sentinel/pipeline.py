"""Wires the stages in flow order: collectors -> decode & admit -> durable batches -> (engine, alerts).

:class:`IngestPipeline` is what ``sentinel serve`` runs and what the end-to-end tests and benchmarks start: given a
migrated database it loads the registry, rebuilds the duplicate filter from ``message_log``, starts the sink and,
when an MQTT URL is given, the MQTT collector. The HTTP routes use :attr:`IngestPipeline.sink` and
:attr:`IngestPipeline.admission`. Given an :class:`~sentinel.alerts.stage.EngineStage` it feeds every durable batch
to it; the stage starts (and catches up from the database) before ingest accepts anything, and stops after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from sentinel.alerts.stage import EngineStage
from sentinel.batch import IngestBatch
from sentinel.collect.mqtt import CollectorConfig, MqttCollector
from sentinel.engine.catalog import METRICS
from sentinel.ingest.admission import Admission
from sentinel.ingest.dedup import DuplicateFilter
from sentinel.ingest.letters import LetterLimiter
from sentinel.ingest.sink import Clock, IngestSink, wall_clock_us
from sentinel.metrics import IngestMetrics
from sentinel.registry.keys import KeyStore
from sentinel.registry.repository import RegistryView, ensure_metrics
from sentinel.store.database import connect
from sentinel.store.ingest_writer import IngestWriter
from sentinel.store.spool import Spool
from sentinel.wire import WireLimits

log = logging.getLogger(__name__)


def prepare_catalogue(conninfo: str) -> None:
    """Give every metric of the engine's catalogue a row (and so a stable metric_id)."""
    with connect(conninfo) as conn:
        ensure_metrics(conn, [(m.id, m.unit) for m in METRICS])


class IngestPipeline:
    def __init__(
        self,
        conninfo: str,
        dialect: str,
        spool_dir: Path,
        *,
        mqtt: CollectorConfig | None = None,
        metrics: IngestMetrics | None = None,
        queue_max_batches: int = 8,
        dedup_window_s: float = 3600.0,
        registry_refresh_s: float = 10.0,
        clock: Clock = wall_clock_us,
        on_durable: Callable[[IngestBatch], None] | None = None,
        stage: EngineStage | None = None,
        limits: WireLimits | None = None,
        letters: LetterLimiter | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.stage = stage
        if stage is not None and on_durable is None:
            on_durable = stage.on_durable
        self.metrics = metrics or IngestMetrics()
        self.writer = IngestWriter(conninfo, dialect)
        self.dedup = DuplicateFilter(window_s=dedup_window_s)
        self.admission = Admission(RegistryView(), self.dedup)
        self.sink = IngestSink(
            self.writer,
            Spool(spool_dir),
            self.admission,
            self.metrics,
            queue_max_batches=queue_max_batches,
            clock=clock,
            on_durable=on_durable,
            limits=limits,
            letters=letters,
        )
        # API keys are looked up per request (a revoked key stops at once); the registry view answers while the
        # database is away.
        self.keys = KeyStore(conninfo, lambda: self.admission.registry)
        self.collector = MqttCollector(mqtt, self.sink.mqtt) if mqtt is not None else None
        collector = self.collector
        if collector is not None:
            self.metrics.watch_mqtt(lambda: collector.stats, collector.connected.is_set)
        if stage is not None:
            self.metrics.watch_engine(lambda: stage.engine.stats)
        self._dedup_window_s = dedup_window_s
        self._refresh_s = registry_refresh_s
        self._tasks: list[asyncio.Task[None]] = []

    def reload_registry(self) -> None:
        with connect(self.conninfo) as conn:
            self.admission.registry = RegistryView.load(conn)

    async def start(self) -> None:
        await asyncio.to_thread(prepare_catalogue, self.conninfo)
        await asyncio.to_thread(self.reload_registry)
        rows = await asyncio.to_thread(lambda: list(self.writer.recent_message_keys(self._dedup_window_s)))
        self.dedup.load(rows)
        if self.stage is not None:
            await self.stage.start()
        await self.sink.start()
        self._tasks.append(asyncio.create_task(self._refresh_loop(), name="registry-refresh"))
        if self.collector is not None:
            self._tasks.append(asyncio.create_task(self.collector.run(), name="mqtt-collector"))

    async def stop(self) -> None:
        if self.collector is not None:
            await self.collector.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.sink.stop()
        self.keys.close()
        if self.stage is not None:
            await self.stage.stop()

    async def __aenter__(self) -> IngestPipeline:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _refresh_loop(self) -> None:
        # Registry changes made by another process (`sentinel registry load`) reach a running pipeline here.
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await asyncio.to_thread(self.reload_registry)
            except Exception as exc:
                log.warning("registry refresh failed (keeping the last one): %s", exc)
