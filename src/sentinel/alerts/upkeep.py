"""Clock-driven work of the alert lifecycle and the register: expired shelves return, overdue hazards escalate.

Runs every ``interval_s`` in ``sentinel serve``; each pass is one call of :func:`upkeep_once` with the clock's
time, which tests call directly with a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sentinel.alerts.actions import expire_shelves
from sentinel.hazards.register import review_overdue
from sentinel.store.database import connect

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def upkeep_once(conninfo: str, now: datetime) -> tuple[int, int]:
    """(shelves expired, hazards escalated) at ``now``."""
    with connect(conninfo) as conn:
        return expire_shelves(conn, now), len(review_overdue(conn, now.date(), now))


async def upkeep_loop(conninfo: str, interval_s: float = 30.0, clock: Callable[[], datetime] = _now) -> None:
    failing = False
    while True:
        try:
            await asyncio.to_thread(upkeep_once, conninfo, clock())
        except Exception as exc:  # keep going: the next pass retries; said once per outage
            if not failing:
                log.warning("alert/hazard upkeep failed (retrying every %.0f s): %s", interval_s, exc)
            failing = True
        else:
            if failing:
                log.warning("alert/hazard upkeep works again")
            failing = False
        await asyncio.sleep(interval_s)
