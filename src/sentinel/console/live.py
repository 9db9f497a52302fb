"""The board's live feed: one poller for all consoles, fanned out to each connected browser as server-sent events.

Every alert change appends an ``alert_events`` row (engine raises, grade moves, clears, officers' actions, shelve
expiry), so the feed reads new rows by ``event_id`` every ``poll_s``. Browsers are sent only the *notable* events
(:func:`notable`: a red or orange alert raised or grown, which the page announces); every other change reaches them
through the board pushed after it. An identity value is taken before its transaction commits, so a row may become
visible after a higher one: ids skipped over are asked for again for ``gap_s`` seconds (a rolled-back id just
expires). The last ``keep`` events stay in memory so a browser that reconnects with ``Last-Event-ID`` catches up;
one that was away longer is told to reload (``reset``). While the database is away the feed says so (``db`` events)
and keeps retrying. Consoles cost the database one query per ``poll_s``, however many are connected.

Pushes go through a :class:`BoardView`, one per view (the page's filters and language): at most once per ``every_s``
after changes, however many events arrived and however many browsers show that view, it renders the board (counts
and rows, a ``board`` event carrying the id of the last event it reflects) once and hands the same text, the notable
events gathered meanwhile first, to each of them: one write per browser per ``every_s``. Under a steady stream of
alert changes a view costs one rendering a second, and a browser sees a change within ``poll_s + every_s`` of its
commit.

Each poll also asks whether the sessions of the open streams still hold (signed out, expired, key revoked): a stream
whose session ended is told so (``ended``) and closed, so a revoked key loses the live board within one poll, as it
loses every page at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from sentinel.console.sessions import live_sessions

log = logging.getLogger(__name__)

QUERY = """SELECT e.event_id, e.alert_id, e.at, e.actor, e.from_state, e.to_state, e.from_grade, e.to_grade,
                  a.grade, a.state, a.site_id, a.township, a.sector, a.rule_id, a.subject
           FROM alert_events e JOIN alerts a USING (alert_id)
           WHERE e.event_id > %s OR e.event_id = ANY(%s) ORDER BY e.event_id LIMIT 5000"""


BYE = ": bye\n\n"
ENDED = "event: ended\ndata: {}\n\n"


class Subscriber:
    """One browser's stream: its queue, its session (the cookie token's digest) and the board view it shows."""

    def __init__(self, size: int, session: str = "", view: BoardView | None = None) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.overflowed = False
        self.session = session
        self.view = view

    def put(self, item: str) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class BoardView:
    """The pushes of one view: after :meth:`changed`, one write (at once when the last was at least ``every_s`` ago,
    else when that is up) of the notable alert events gathered meanwhile and the board rendered once, the same text
    put to every subscriber of the view."""

    def __init__(self, render: Callable[[], Awaitable[str]], every_s: float) -> None:
        self.render = render
        self.every_s = every_s
        self.subscribers: set[Subscriber] = set()
        self._events: list[str] = []
        self._dirty = asyncio.Event()
        self._last = -every_s
        self._task: asyncio.Task[None] | None = None

    def changed(self, events: str = "") -> None:
        if events:
            self._events.append(events)
        self._dirty.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="console-board-view")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while self.subscribers:
            await self._dirty.wait()
            wait = self._last + self.every_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.clear()  # changes from here on wait for the next rendering
            self._last = time.monotonic()
            text, self._events = "".join(self._events), []
            try:
                text += await self.render()
            except Exception:  # the database went away meanwhile: the db event says so; the next change retries
                log.debug("console feed: board not rendered", exc_info=True)
            if text:
                for sub in self.subscribers:
                    sub.put(text)


class AlertFeed:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        poll_s: float = 0.5,
        every_s: float = 1.0,
        keep: int = 5000,
        gap_s: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.pool = pool
        self.poll_s = poll_s
        self.every_s = every_s
        self.gap_s = gap_s
        self.clock = clock or (lambda: datetime.now(UTC))
        self.recent: collections.deque[tuple[int, str, str, bool]] = collections.deque(maxlen=keep)
        self.subscribers: set[Subscriber] = set()
        self.views: dict[Hashable, BoardView] = {}
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
        for view in list(self.views.values()):
            await view.close()
        self.views.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def subscribe(
        self, session: str = "", view: Hashable = None, render: Callable[[], Awaitable[str]] | None = None
    ) -> Subscriber:
        """A new stream of the alert events; with ``view`` and ``render``, also of that view's board pushes."""
        board = None
        if view is not None and render is not None:
            board = self.views.get(view)
            if board is None:
                board = self.views[view] = BoardView(render, self.every_s)
        sub = Subscriber(1000, session, board)
        self.subscribers.add(sub)
        if board is not None:
            board.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        if sub.view is not None:
            sub.view.subscribers.discard(sub)
            if not sub.view.subscribers:
                for key, board in list(self.views.items()):
                    if board is sub.view:
                        del self.views[key]
                        asyncio.get_running_loop().create_task(board.close())

    def since(self, event_id: int) -> list[tuple[int, str, str]] | None:
        """Notable events after ``event_id`` still in memory, or None when some events are no longer kept."""
        if self.last_id is not None and event_id >= self.last_id:
            return []
        if not self.recent or self.recent[0][0] > event_id + 1:
            return None
        return [item[:3] for item in self.recent if item[0] > event_id and item[3]]

    def _publish(self, text: str) -> None:
        for sub in self.subscribers:
            sub.put(text)

    def _set_database(self, ok: bool) -> None:
        if ok != self.database_ok:
            self.database_ok = ok
            self._publish(sse(0, "db", json.dumps({"ok": ok})))

    async def _run(self) -> None:
        while not self.closing.is_set():
            try:
                async with self.pool.connection() as conn:
                    await self._poll(conn)
                    await self._check_sessions(conn)
                self._set_database(True)
            except psycopg.Error as exc:  # PoolTimeout included: the database is away
                log.warning("console feed: database unavailable (%s)", type(exc).__name__)
                self._set_database(False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.poll_s)

    async def _check_sessions(self, conn: psycopg.AsyncConnection[Any]) -> None:
        watched = {sub.session for sub in self.subscribers if sub.session}
        if not watched:
            return
        alive = await live_sessions(conn, watched, self.clock())
        for sub in list(self.subscribers):
            if sub.session and sub.session not in alive:
                sub.session = ""  # told once
                sub.put(ENDED)

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
        found, rows = [], await cur.fetchall()
        for row in rows:
            event = dict(zip(names, row, strict=True))
            event_id = int(event["event_id"])
            self._gaps.pop(event_id, None)
            if event_id > self.last_id:
                for missing in range(self.last_id + 1, min(event_id, self.last_id + 1000)):
                    self._gaps[missing] = now + self.gap_s
                self.last_id = event_id
            event["at"] = event["at"].isoformat()
            item = (event_id, "alert", json.dumps(event, ensure_ascii=False))
            self.recent.append((*item, notable(event)))
            if notable(event):
                found.append(sse(*item))
        if rows:
            text = "".join(found)
            for view in self.views.values():
                view.changed(text)


def notable(event: dict[str, Any]) -> bool:
    """An event the browser announces (banner, sound): a red or orange alert raised, or one grown to red or orange,
    not suppressed. Other changes reach the browser through the board pushed after them."""
    worse = event["from_state"] is None or (event["from_grade"] and event["to_grade"] != event["from_grade"])
    return bool(worse) and event["to_grade"] in ("red", "orange") and event["state"] != "suppressed"


def sse(event_id: int, kind: str, data: str) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {data}\n\n"


async def stream(
    feed: AlertFeed,
    last_event_id: str | None,
    *,
    session: str = "",
    view: Hashable = None,
    render: Callable[[], Awaitable[str]] | None = None,
    max_s: float = 600.0,
) -> AsyncIterator[str]:
    """One browser's stream: catch-up after ``Last-Event-ID``, then live events and the board pushes of ``view``
    (rendered by ``render``, shared with every browser on that view), keep-alive comments, and an end after
    ``max_s`` (the browser reconnects on its own and catches up) so no stream outlives a shutdown for long;
    ``ended`` when ``session`` (the cookie token's digest) ends: signed out elsewhere, expired, key revoked."""
    sub = feed.subscribe(session, view, render)
    try:
        yield "retry: 1500\n\n"
        yield sse(0, "db", json.dumps({"ok": feed.database_ok}))
        if last_event_id and last_event_id.isdigit():
            missed = feed.since(int(last_event_id))
            if missed is None:
                yield sse(0, "reset", "{}")
            else:
                if missed:
                    yield "".join(sse(*item) for item in missed)
                if sub.view is not None and (feed.last_id or 0) > int(last_event_id):
                    sub.view.changed()  # changes were missed: the board as it is now follows, at the view's pace
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
            yield item
            if item is ENDED:
                return
    finally:
        feed.unsubscribe(sub)
