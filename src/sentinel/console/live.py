"""The board's live feed: one poller for all consoles, fanned out to each connected browser as server-sent events.

Every alert change appends an ``alert_events`` row (engine raises, grade moves, clears, officers' actions, shelve
expiry), so the feed reads new rows by ``event_id`` every ``poll_s``. What one poll finds is serialised once and
sent to each browser as one write, so a burst of changes costs a connection one write per poll, not one per
change. An identity value is taken before its transaction commits, so a row may become visible after a higher
one: ids skipped over are asked for again for ``gap_s`` seconds (a rolled-back id just expires). The last
``keep`` events stay in memory so a browser that reconnects with ``Last-Event-ID`` catches up; one that was away
longer is told to reload (``reset``). While the database is away the feed says so (``db`` events) and keeps
retrying. Consoles cost the database one query per ``poll_s``, however many are connected.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

QUERY = """SELECT e.event_id, e.alert_id, e.at, e.actor, e.from_state, e.to_state, e.from_grade, e.to_grade,
                  a.grade, a.state, a.site_id, a.township, a.sector, a.rule_id, a.subject
           FROM alert_events e JOIN alerts a USING (alert_id)
           WHERE e.event_id > %s OR e.event_id = ANY(%s) ORDER BY e.event_id LIMIT 5000"""


class Subscriber:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.overflowed = False

    def put(self, item: str) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class AlertFeed:
    def __init__(self, conninfo: str, *, poll_s: float = 0.5, keep: int = 5000, gap_s: float = 10.0) -> None:
        self.conninfo = conninfo
        self.poll_s = poll_s
        self.gap_s = gap_s
        self.recent: collections.deque[tuple[int, str, str]] = collections.deque(maxlen=keep)
        self.subscribers: set[Subscriber] = set()
        self.last_id: int | None = None
        self.database_ok = True
        self.closing = asyncio.Event()
        self._gaps: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self.closing = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="console-alert-feed")

    async def stop(self) -> None:
        self.closing.set()
        self._publish(BYE)  # wakes every stream so it ends now
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def subscribe(self) -> Subscriber:
        sub = Subscriber(1000)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def since(self, event_id: int) -> list[tuple[int, str, str]] | None:
        """Events after ``event_id`` still in memory, or None when some of them are no longer kept."""
        if self.last_id is not None and event_id >= self.last_id:
            return []
        if not self.recent or self.recent[0][0] > event_id + 1:
            return None
        return [item for item in self.recent if item[0] > event_id]

    def _publish(self, text: str) -> None:
        for sub in self.subscribers:
            sub.put(text)

    def _set_database(self, ok: bool) -> None:
        if ok != self.database_ok:
            self.database_ok = ok
            self._publish(sse(0, "db", json.dumps({"ok": ok})))

    async def _run(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while not self.closing.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, connect_timeout=3)
                    await self._poll(conn)
                    self._set_database(True)
                except psycopg.Error as exc:
                    log.warning("console feed: database unavailable (%s)", type(exc).__name__)
                    self._set_database(False)
                    if conn is not None:
                        await conn.close()
                    conn = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), self.poll_s)
        finally:
            if conn is not None:
                await conn.close()

    async def _poll(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.last_id is None:
            cur = await conn.execute("SELECT coalesce(max(event_id), 0) FROM alert_events")
            row = await cur.fetchone()
            self.last_id = int(row[0]) if row else 0
            return
        now = time.monotonic()
        self._gaps = {k: v for k, v in self._gaps.items() if v > now}
        cur = await conn.execute(QUERY, (self.last_id, list(self._gaps)))
        names = [d.name for d in cur.description or ()]
        found = []
        for row in await cur.fetchall():
            event = dict(zip(names, row, strict=True))
            event_id = int(event["event_id"])
            self._gaps.pop(event_id, None)
            if event_id > self.last_id:
                for missing in range(self.last_id + 1, min(event_id, self.last_id + 1000)):
                    self._gaps[missing] = now + self.gap_s
                self.last_id = event_id
            event["at"] = event["at"].isoformat()
            item = (event_id, "alert", json.dumps(event, ensure_ascii=False))
            self.recent.append(item)
            found.append(sse(*item))
        if found:
            self._publish("".join(found))


BYE = ": bye\n\n"


def sse(event_id: int, kind: str, data: str) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {data}\n\n"


async def stream(
    feed: AlertFeed,
    last_event_id: str | None,
    max_s: float = 600.0,
    board: Callable[[], Awaitable[str]] | None = None,
) -> AsyncIterator[str]:
    """One browser's stream: catch-up after ``Last-Event-ID``, then live events, keep-alive comments, and an end
    after ``max_s`` (the browser reconnects on its own and catches up) so no stream outlives a shutdown for long.
    After each write of alert events, ``board()`` (the page's board body as a ready ``board`` event, rendered and
    encoded once for every browser showing the same view) follows, so no browser has to ask for it."""

    async def board_event() -> str:
        if board is None:
            return ""
        try:
            return await board()
        except Exception:  # the database went away meanwhile: the db event says so; the next poll retries
            log.debug("console feed: board not rendered", exc_info=True)
            return ""

    sub = feed.subscribe()
    try:
        yield "retry: 1500\n\n"
        yield sse(0, "db", json.dumps({"ok": feed.database_ok}))
        if last_event_id and last_event_id.isdigit():
            missed = feed.since(int(last_event_id))
            if missed is None:
                yield sse(0, "reset", "{}")
            elif missed:
                yield "".join(sse(*item) for item in missed) + await board_event()
        ends = time.monotonic() + max_s
        while not feed.closing.is_set() and time.monotonic() < ends:
            if sub.overflowed:
                yield sse(0, "reset", "{}")
                return
            try:
                item = await asyncio.wait_for(sub.queue.get(), 15.0)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is BYE:
                return
            yield item + (await board_event() if "event: alert" in item else "")
    finally:
        feed.unsubscribe(sub)
