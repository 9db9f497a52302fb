"""A running ingest pipeline with its HTTP API on a free loopback port, in a background thread, for tests.

Tests stay synchronous (httpx, schemathesis, psycopg) while the service runs its own event loop, as it does in
production.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sentinel.collect.mqtt import CollectorConfig
from sentinel.pipeline import IngestPipeline
from sentinel.service import ApiServer


class ServiceThread:
    def __init__(self, pipeline: IngestPipeline) -> None:
        self.pipeline = pipeline
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="sentinel-service", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceThread:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def call(self, coro_fn: object) -> None:
        """Run ``coro_fn()`` on the service loop and wait for it."""
        future = asyncio.run_coroutine_threadsafe(coro_fn(), self.loop)  # type: ignore[operator]
        future.result(60)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.pipeline.start()
            api = ApiServer(self.pipeline, "127.0.0.1", 0)
            await api.start()
            self.port = api.port
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await api.stop()
            await self.pipeline.stop()


@contextmanager
def running_service(
    conninfo: str, spool_dir: Path, *, mqtt: CollectorConfig | None = None, queue_max_batches: int = 8
) -> Iterator[ServiceThread]:
    pipeline = IngestPipeline(conninfo, "native", spool_dir, mqtt=mqtt, queue_max_batches=queue_max_batches)
    service = ServiceThread(pipeline).start()
    try:
        yield service
    finally:
        service.stop()
