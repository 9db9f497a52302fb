"""The live feed's pushes without a server: however many changes arrive and however many browsers show a view, the
view renders its board at most once per ``every_s`` and every browser gets the very same text, the notable events
gathered meanwhile first; only events the page announces are sent."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sentinel.console.live import AlertFeed, notable, sse

GRADES = (None, "none", "blue", "yellow", "orange", "red")
STATES = (None, "active_unack", "active_ack", "cleared_unack", "shelved", "suppressed", "normal")


def test_a_burst_of_changes_is_one_rendering_a_period_shared_by_every_browser() -> None:
    async def run() -> tuple[int, float, list[list[str]]]:
        feed = AlertFeed(None, every_s=0.3)  # type: ignore[arg-type]  # no poller: changes are fed by hand
        renders = 0

        async def render() -> str:
            nonlocal renders
            renders += 1
            await asyncio.sleep(0.01)  # a query and a template take a while
            return sse(renders, "board", f'"body {renders}"')

        subs = [feed.subscribe(f"s{i}", ("", "zh"), render) for i in range(50)]
        other = feed.subscribe("x", ("grade=red", "zh"), render)  # another view: nothing changed there
        start = time.monotonic()
        for k in range(100):  # 100 poll results over ~1 s
            feed.views[("", "zh")].changed(sse(k + 1, "alert", "{}") if k % 10 == 0 else "")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        took = time.monotonic() - start
        got = []
        for sub in subs:
            items = []
            while not sub.queue.empty():
                items.append(sub.queue.get_nowait())
            got.append(items)
        assert other.queue.empty()
        for sub in [*subs, other]:
            feed.unsubscribe(sub)
        await asyncio.sleep(0)
        assert feed.views == {}
        return renders, took, got

    renders, took, got = asyncio.run(run())
    assert 2 <= renders <= math.ceil(took / 0.3) + 1, (renders, took)
    assert all(items == got[0] for items in got), "browsers on one view got different pushes"
    assert len(got[0]) == renders, "one write per rendering"
    joined = "".join(got[0])
    assert joined.count("event: alert") == 10, "a notable event was lost or repeated"
    assert joined.count("event: board") == renders


@given(
    from_state=st.sampled_from(STATES),
    state=st.sampled_from(STATES[1:]),
    from_grade=st.sampled_from(GRADES),
    to_grade=st.sampled_from(GRADES),
)
def test_notable_is_what_the_page_announces(
    from_state: str | None, state: str, from_grade: str | None, to_grade: str | None
) -> None:
    event: dict[str, Any] = {"from_state": from_state, "state": state, "from_grade": from_grade, "to_grade": to_grade}
    # The page's rule (console.js): raised, or its grade moved; to red or orange; not suppressed.
    raised_or_moved = from_state is None or bool(from_grade and to_grade and to_grade != from_grade)
    assert notable(event) == (raised_or_moved and to_grade in ("red", "orange") and state != "suppressed")
