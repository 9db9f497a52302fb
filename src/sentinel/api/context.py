"""What the HTTP routes reach: :class:`ApiContext`, handed to them by the :func:`context` dependency.

The composition root (:mod:`sentinel.app`) builds one context and puts it on the app; a route asks for it with
``ctx: Annotated[ApiContext, Depends(context)]`` and then uses ``ctx.pool`` (async code), ``ctx.sync_pool``
(plain ``def`` routes, which FastAPI runs in its thread pool), ``ctx.sink`` / ``ctx.admission`` (ingest) or
``ctx.part(SomeType)`` for a part plugged into the root (a notifier, the console's own state). Routes never reach
through ``request.app.state`` themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Request
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from sentinel.ingest.admission import Admission
from sentinel.ingest.sink import IngestSink
from sentinel.observability import IngestMetrics
from sentinel.registry.keys import KeyStore

T = TypeVar("T")


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiContext:
    conninfo: str
    pool: AsyncConnectionPool[Any]
    sync_pool: ConnectionPool[Any]
    sink: IngestSink
    admission: Admission
    metrics: IngestMetrics
    reload_registry: Callable[[], Awaitable[None]]
    keys: KeyStore
    clock: Callable[[], datetime] = now_utc
    parts: list[object] = field(default_factory=list)

    def part(self, kind: type[T]) -> T:
        """The plugged-in part of this type (the first one); LookupError when none is plugged in."""
        for part in self.parts:
            if isinstance(part, kind):
                return part
        raise LookupError(f"no part of type {kind.__name__} is plugged into this Sentinel")


def context(request: Request) -> ApiContext:
    """FastAPI dependency: the running Sentinel's parts."""
    ctx: ApiContext = request.app.state.context
    return ctx
