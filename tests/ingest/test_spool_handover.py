"""The hand-over from the spool back to direct writes loses nothing acknowledged.

When the replay has caught up, the sink switches back to writing to PostgreSQL directly and the replayed segments
go away. A batch acknowledged around that moment must end up in the database exactly once: it must neither land in a
segment that is then deleted, nor be left in the spool unreplayed, nor be replayed twice. And a segment name, once
its segment is deleted, is never used again: its ``spool_progress`` row may outlive it (the database went away just
then), and a new segment of that name would be replayed from that stale offset.

The interleavings are forced, not hoped for: the database's bookkeeping call at the end of the replay
(``forget_segment``) is where the old replayer yielded between "nothing left" and "write directly again", so a
writer subclass acts there (a batch arrives, or the database is away again). Real PostgreSQL and a real spool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psycopg
import pytest

from sentinel.collect.mqtt import MqttMessage
from sentinel.registry.entries import RegistryFile
from sentinel.store.ingest_writer import IngestWriter
from sentinel.store.spool import Spool
from sentinel.testing.service import sink_for_tests
from sentinel.wire import Telemetry, device_topic, encode_telemetry

AWAY = "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2"
NOW_US = time.time_ns() // 1000
US = 1_000_000
WAIT_S = 30.0  # an upper bound on waiting for the sink, never an assertion


class _Hooked(IngestWriter):
    """A writer to the real database that runs ``hook`` in place of (``replace``) or before the first
    ``forget_segment`` call: the moment a replay has caught up and is dropping its bookkeeping."""

    def __init__(self, conninfo: str, hook: Callable[[str], None], *, replace: bool = False) -> None:
        super().__init__(conninfo, "native")
        self.hook = hook
        self.replace = replace
        self.hooked = False

    def forget_segment(self, segment: str) -> None:
        if not self.hooked:
            try:
                self.hook(segment)
            finally:
                self.hooked = True
            if self.replace:
                return
        super().forget_segment(segment)


def _messages(topic: str, device: str, seqs: Iterable[int]) -> list[MqttMessage]:
    received = time.time()
    return [
        MqttMessage(
            topic,
            encode_telemetry(
                Telemetry(device, NOW_US - 60 * US + s * 1000, s, {"pipe_pressure_mpa": 0.3, "ch4_pct_lel": 1.5})
            ),
            received,
        )
        for s in seqs
    ]


def _seqs(db: str) -> list[int]:
    with psycopg.connect(db) as conn:
        return sorted(int(s) for (s,) in conn.execute("SELECT seq FROM message_log").fetchall())


def _progress_rows(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM spool_progress").fetchone()
    assert row is not None
    return int(row[0])


def _spooled(directory: Path) -> list[str]:
    """Segments that hold anything."""
    return sorted(p.name for p in directory.glob("*.spool") if p.stat().st_size > 0)


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def _restart_and_replay(db: str, directory: Path) -> None:
    """A fresh sink over the same spool folder (a restart) replays whatever the spool still holds."""
    sink = sink_for_tests(db, Spool(directory), IngestWriter(db, "native"))
    await sink.start()
    await _until(lambda: not sink.spooling)
    await sink.stop()


@pytest.mark.parametrize("segments", [1, 2])
def test_a_batch_acknowledged_while_the_replay_hands_over_is_stored_once(
    ingest_db: str, registry: RegistryFile, tmp_path: Path, segments: int
) -> None:
    site, device = registry.sites[0].id, registry.devices[0].id
    topic = device_topic(site, device, "telemetry")
    directory = tmp_path / "spool"
    away = IngestWriter(AWAY, "native")

    async def run() -> tuple[list[str], list[int], list[str], list[int]]:
        loop = asyncio.get_running_loop()
        spool = Spool(directory)
        sink = sink_for_tests(ingest_db, spool, away)
        await sink.start()
        await sink.mqtt(_messages(topic, device, range(20)))  # the database is away: spooled, then acknowledged
        if segments == 2:
            # The next record starts a second segment; the one after that (small) would still fit in it.
            spool.segment_bytes = sum(p.stat().st_size for p in spool.segments())
        await sink.mqtt(_messages(topic, device, [20]))
        layout = _spooled(directory)

        def a_batch_arrives(_segment: str) -> None:
            # Returns once the sink has acknowledged seq 21 (made it durable, one way or the other).
            asyncio.run_coroutine_threadsafe(sink.mqtt(_messages(topic, device, [21])), loop).result()

        back = _Hooked(ingest_db, a_batch_arrives)
        sink.writer = back  # the database is back: the replayer catches up
        await _until(lambda: back.hooked and not sink.spooling)
        await sink.stop()
        away.close()
        after_handover = _seqs(ingest_db)
        left = _spooled(directory)
        await _restart_and_replay(ingest_db, directory)
        return layout, after_handover, left, _seqs(ingest_db)

    layout, after_handover, left, after_restart = asyncio.run(run())
    assert len(layout) == segments  # the interleaving under test had the layout it names
    assert after_handover == list(range(22)), "an acknowledged batch is not in the database after the hand-over"
    assert left == [], "the spool still holds data after the hand-over"
    assert after_restart == list(range(22)), "acknowledged data lost, or replayed twice, after a restart"
    assert _progress_rows(ingest_db) == 0


def test_a_segment_name_is_not_reused_when_its_progress_row_outlives_it(
    ingest_db: str, registry: RegistryFile, tmp_path: Path
) -> None:
    """The database goes away again just as the replay finishes: the replayed segment is gone but its progress
    row stays. A later outage spools into a new segment, and its replay must start at that segment's beginning."""
    site, device = registry.sites[0].id, registry.devices[0].id
    topic = device_topic(site, device, "telemetry")
    directory = tmp_path / "spool"
    away = IngestWriter(AWAY, "native")

    def database_away_again(segment: str) -> None:
        gone = IngestWriter(AWAY, "native")
        try:
            gone.forget_segment(segment)  # fails as the real call fails when the database has just gone away
        finally:
            gone.close()

    async def run() -> tuple[bool, int, str | None, list[int]]:
        sink = sink_for_tests(ingest_db, Spool(directory), away)
        await sink.start()
        await sink.mqtt(_messages(topic, device, range(10)))  # spooled: a large first record
        back = _Hooked(ingest_db, database_away_again, replace=True)
        sink.writer = back
        await _until(lambda: back.hooked and not sink.spooling)
        handed_over = not sink.spooling
        stale_rows = _progress_rows(ingest_db)
        sink.writer = away  # a second outage
        await sink.mqtt(_messages(topic, device, [10]))  # spooled: a small record
        stopped: str | None = None
        try:
            await sink.stop()
        except Exception as exc:  # the replayer died of it: asserted below, after what matters most
            stopped = repr(exc)
        away.close()
        await _restart_and_replay(ingest_db, directory)
        return handed_over, stale_rows, stopped, _seqs(ingest_db)

    handed_over, stale_rows, stopped, stored = asyncio.run(run())
    assert stored == list(range(11)), "an acknowledged batch spooled after a replay was lost"
    assert handed_over, "the sink did not switch back to direct writes when only the bookkeeping failed"
    assert stopped is None
    assert stale_rows >= 1  # the interleaving under test happened: a row outlived its segment
    assert _spooled(directory) == []
    assert _progress_rows(ingest_db) == 0  # the stale row is dropped by the next replay that finishes


def test_a_spool_ending_in_a_torn_record_is_replayed_and_handed_over_without_new_traffic(
    ingest_db: str, registry: RegistryFile, tmp_path: Path
) -> None:
    """A crash while appending leaves half a record, never acknowledged. After the restart the replay must still
    reach "nothing left" and switch back, even when no batch arrives to trigger the cut."""
    site, device = registry.sites[0].id, registry.devices[0].id
    topic = device_topic(site, device, "telemetry")
    directory = tmp_path / "spool"
    away = IngestWriter(AWAY, "native")

    async def spool_some() -> None:
        sink = sink_for_tests(ingest_db, Spool(directory), away)
        await sink.start()
        await sink.mqtt(_messages(topic, device, range(5)))
        await sink.stop()

    asyncio.run(spool_some())
    [segment] = Spool(directory).segments()
    with segment.open("ab") as f:
        f.write(b"\x40\x00\x00\x00\x01\x02")  # the crash: half a frame header

    async def restart() -> tuple[bool, bool]:
        sink = sink_for_tests(ingest_db, Spool(directory), IngestWriter(ingest_db, "native"))
        spooling_at_start = sink.spooling
        await sink.start()
        await _until(lambda: not sink.spooling)
        handed_over = not sink.spooling
        await sink.stop()
        return spooling_at_start, handed_over

    spooling_at_start, handed_over = asyncio.run(restart())
    assert spooling_at_start
    assert handed_over, "the replay never reached the end of a spool ending in a torn record"
    assert _seqs(ingest_db) == list(range(5))
    assert _spooled(directory) == []
