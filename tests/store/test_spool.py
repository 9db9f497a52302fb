"""The local spool on its own: segment names are never reused, and a record that was not acknowledged is never
left where it could hide later ones (a torn tail is cut when the spool opens; a write the disk cut short is taken
back). The database side of the replay is in tests/ingest/test_spool_handover.py and test_poison_batches.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sentinel.batch import IngestBatch
from sentinel.errors import StoreError
from sentinel.store.spool import Spool
from sentinel.wire.deadletter import DeadLetter

RECEIVED = datetime(2024, 5, 1, tzinfo=UTC)


def _batch(tag: bytes, size: int = 10) -> IngestBatch:
    letter = DeadLetter(tag * size, "mqtt:test", RECEIVED, "a test record", "", "malformed_json")
    return IngestBatch.of_dead_letters(1_714_521_600_000_000, [letter])


def _raws(spool: Spool) -> list[bytes]:
    return [batch.dead_letters[0].raw for _segment, _offset, batch in spool.records({})]


def _names(spool: Spool) -> list[str]:
    return [p.name for p in spool.segments()]


def test_a_cleared_segment_name_is_never_used_again_not_even_after_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    spool.append(_batch(b"a", 100))
    spool.append(_batch(b"b", 100))  # does not fit: a second segment
    first = _names(spool)
    assert len(first) == 2
    assert spool.clear() == first
    assert _names(spool) == []

    spool.append(_batch(b"c"))
    second = _names(spool)
    assert set(second).isdisjoint(first)
    assert second > first  # still in order: later segments sort after earlier ones
    assert spool.clear() == second

    restarted = Spool(tmp_path, segment_bytes=200)  # an empty folder after a restart
    restarted.append(_batch(b"d"))
    assert set(_names(restarted)).isdisjoint(first + second)
    assert _raws(restarted) == [b"d" * 10]


def test_a_spool_written_before_names_were_kept_does_not_reuse_them_either(tmp_path: Path) -> None:
    old = Spool(tmp_path)
    old.append(_batch(b"a"))
    (tmp_path / "next-segment").unlink()  # as a spool written by an older Sentinel: segments, no number kept
    (tmp_path / "0000000000000000.spool").rename(tmp_path / "0000000000000007.spool")

    spool = Spool(tmp_path)
    assert spool.clear() == ["0000000000000007.spool"]
    spool.append(_batch(b"b"))
    assert _names(spool) == ["0000000000000008.spool"]


def test_a_torn_tail_is_cut_when_the_spool_opens(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_batch(b"a"))
    spool.append(_batch(b"b"))
    [segment] = spool.segments()
    whole = segment.stat().st_size
    with segment.open("ab") as f:
        f.write(b"\x40\x00\x00\x00\x01\x02")  # a crash while appending: half a frame header, never acknowledged

    reopened = Spool(tmp_path)
    assert segment.stat().st_size == whole
    assert _raws(reopened) == [b"a" * 10, b"b" * 10]


def test_a_write_the_disk_cuts_short_is_refused_and_taken_back(tmp_path: Path) -> None:
    """A full disk (here: a file size limit) writes part of a record and reports success for that part. The record
    must not be acknowledged, and must not stay: records appended later would hide behind it."""
    script = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        from sentinel.errors import StoreError
        from sentinel.store.spool import Spool
        from tests.store.test_spool import _batch

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the limit then fails the write instead of killing us
        spool = Spool(Path({str(tmp_path)!r}))
        spool.append(_batch(b"a"))
        [segment] = spool.segments()
        whole = segment.stat().st_size
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (whole + 20, hard))  # room for part of the next record
        try:
            spool.append(_batch(b"b"))
            print("acknowledged")
        except StoreError:
            print("refused")
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        print(segment.stat().st_size == whole)
        spool.append(_batch(b"c"))
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused", "True"]
    assert _raws(Spool(tmp_path)) == [b"a" * 10, b"c" * 10]


def test_an_unreadable_segment_counter_is_loud(tmp_path: Path) -> None:
    (tmp_path / "next-segment").write_text("garbage")
    spool = Spool(tmp_path)
    with pytest.raises(StoreError, match="next-segment"):
        spool.append(_batch(b"a"))
