"""The plug points the web console and the notification channels use: a router whose routes reach the running
service (and a plugged-in part) through the ApiContext dependency, a part with start/stop, and a run loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends

from sentinel.api.context import ApiContext, context
from sentinel.testing.service import sentinel_for_tests
from sentinel.testing.waiting import wait_until
from sentinel.threaded import SentinelThread


class Counter:
    """A background part: started after the core parts, stopped before them."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.ticks = 0

    async def start(self) -> None:
        self.log.append("counter started")

    async def stop(self) -> None:
        self.log.append("counter stopped")


def test_a_router_a_part_and_a_run_loop_plug_into_the_root(migrated_db: str, tmp_path: Path) -> None:
    log: list[str] = []
    counter = Counter(log)
    router = APIRouter(prefix="/plugged")

    @router.get("/status")
    async def status(ctx: Annotated[ApiContext, Depends(context)]) -> dict[str, Any]:
        async with ctx.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM sites")
            row = await cur.fetchone()
        return {"sites": row[0] if row else None, "ticks": ctx.part(Counter).ticks, "spooling": ctx.sink.spooling}

    async def ticking() -> None:
        while True:
            counter.ticks += 1
            await asyncio.sleep(0.01)

    sentinel = sentinel_for_tests(migrated_db, tmp_path / "spool")
    sentinel.add_router(router)
    sentinel.add_part(counter)
    sentinel.add_part(ticking)
    service = SentinelThread(sentinel).start()
    try:
        assert "Counter" in sentinel.running()
        assert "ticking" in sentinel.running()
        wait_until(lambda: counter.ticks > 0, "the run loop running")
        answer = httpx.get(f"{service.url}/plugged/status", timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["sites"] == 0
        assert body["ticks"] > 0
        assert body["spooling"] is False
    finally:
        service.stop()
    assert log == ["counter started", "counter stopped"]
