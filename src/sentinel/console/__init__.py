"""The duty officer's web console, served at ``/`` beside the API (which stays under ``/v1``).

One entry point: :func:`build_console` returns a :class:`Console` whose ``router`` an app includes and whose
``start()`` / ``stop()`` run and end its one background part, the live alert feed (it also starts by itself when the
first browser subscribes). It opens no connections of its own: pages use the composition root's thread pool, the feed
its async pool (:mod:`sentinel.app`), so ``db_pool_size`` bounds the whole service. Pages are rendered on the server
(Jinja2), in Chinese first with English available, times in ``settings.display_tz``; every asset ships in this
package, nothing is fetched from the internet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from sentinel.console.live import AlertFeed
from sentinel.console.web import Web, route_class
from sentinel.engine import RuleSet, load_rules
from sentinel.settings import Settings

__all__ = ["Console", "build_console"]


class Console:
    def __init__(
        self,
        settings: Settings,
        pool: ConnectionPool[Any],
        async_pool: AsyncConnectionPool[Any],
        *,
        rules: RuleSet | None = None,
        clock: Callable[[], datetime] | None = None,
        poll_s: float = 0.5,
    ) -> None:
        from sentinel.console import pages_alerts, pages_hazards

        self.web = Web(pool, ZoneInfo(settings.display_tz), clock)
        self.rules = rules or load_rules()
        self.session_hours = settings.console_session_hours
        self.evidence_max_bytes = settings.console_evidence_max_bytes
        self.tile_url = settings.console_tile_url
        self.feed = AlertFeed(async_pool, poll_s=poll_s, clock=clock)
        self.router = APIRouter(include_in_schema=False, route_class=route_class(lambda: self.web))
        pages_alerts.add_routes(self.router, self)
        pages_hazards.add_routes(self.router, self)

    async def start(self) -> None:
        """Start the live feed's poller (idempotent)."""
        await self.feed.start()

    async def stop(self) -> None:
        """End every live stream and the poller (the pools are the root's: it closes them)."""
        await self.feed.stop()


def build_console(
    settings: Settings,
    pool: ConnectionPool[Any],
    async_pool: AsyncConnectionPool[Any],
    *,
    rules: RuleSet | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Console:
    """The console on the root's pools: include ``console.router`` in the app; await ``start()``/``stop()``."""
    return Console(settings, pool, async_pool, rules=rules, clock=clock)
