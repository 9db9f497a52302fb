"""A :class:`~sentinel.app.Sentinel` running its own event loop in a background thread.

For callers that stay synchronous while the service runs as it does in production: the demo (its live view and
simulated devices run in the main thread) and the tests (httpx, psycopg, schemathesis).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from sentinel.app import Sentinel


class SentinelThread:
    def __init__(self, sentinel: Sentinel) -> None:
        self.sentinel = sentinel
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sentinel", daemon=True)

    @property
    def url(self) -> str:
        return self.sentinel.url

    @property
    def port(self) -> int:
        return self.sentinel.port

    def start(self) -> SentinelThread:
        self._thread.start()
        self._ready.wait(120)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def call(self, coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``coro_fn()`` on the service loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(60)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.sentinel.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.sentinel.stop()
