"""The duplicate filter against a plain reference model (a dict of every key ever committed, with its arrival):
exact within the window, whatever the freezing into numpy segments does (issue 13, memory)."""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.ingest.dedup import DuplicateFilter

WINDOW_S = 80.0  # 10 s per segment with 8 segments; tiny young dict so freezing and merging happen constantly

_devices = st.integers(1, 4)
_seqs = st.one_of(st.integers(0, 6), st.integers(0, 3).map(lambda k: k << 32), st.just(2**63 - 1))
_ts = st.integers(0, 2)
_message = st.tuples(_devices, _seqs, _ts)
# A step: a batch admitted then committed or aborted, some seconds of arrival time later than the last.
_step = st.tuples(st.lists(_message, max_size=6), st.booleans(), st.integers(0, 15))


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, max_size=40), st.integers(1, 5))
def test_the_filter_is_exact_within_the_window(
    steps: list[tuple[list[tuple[int, int, int]], bool, int]], young: int
) -> None:
    dedup = DuplicateFilter(window_s=WINDOW_S, young_max=young)
    committed: dict[tuple[int, int, int], int] = {}  # the reference: key -> arrival µs
    now_us = 1_000_000_000
    for batch, commit, advance in steps:
        now_us += advance * 1_000_000
        fresh = dedup.admit_many([m[0] for m in batch], [m[1] for m in batch], [m[2] for m in batch])
        seen: set[tuple[int, int, int]] = set()
        for message, new in zip(batch, fresh, strict=True):
            window_ago = now_us - int(WINDOW_S * 1e6)
            known = message in seen or committed.get(message, -(2**62)) >= window_ago
            if known:
                assert not new, f"{message} admitted again within the window"
            elif committed.get(message) is None:
                assert new, f"{message} never committed, yet taken for a duplicate"
            seen.add(message)
        admitted = [m for m, new in zip(batch, fresh, strict=True) if new]
        if commit:
            dedup.commit(admitted, now_us)
            for m in admitted:
                committed[m] = now_us
        else:
            dedup.abort(admitted)


def test_a_reset_device_is_a_conflict_not_a_duplicate_and_a_rollback_uncounts_it() -> None:
    dedup = DuplicateFilter(young_max=1)  # frozen at once: the look-up goes through the numpy segments
    assert dedup.admit(7, 41, 1000)
    dedup.commit([(7, 41, 1000)], 1)
    assert not dedup.admit(7, 41, 1000)
    dedup.begin()
    assert dedup.admit(7, 41, 2000)  # same seq, another time: a device that restarted
    assert dedup.conflicts == 1
    dedup.rollback()  # that part raised and is admitted again: the conflict is counted once, not twice
    dedup.end()
    assert dedup.conflicts == 0
    assert dedup.admit(7, 41, 2000)
    assert dedup.conflicts == 1


def test_a_key_takes_about_20_bytes_once_frozen() -> None:
    dedup = DuplicateFilter(young_max=10_000)
    n = 200_000
    for start in range(0, n, 10_000):
        dedup.commit(((d % 500 + 1, d // 500, 10 * d) for d in range(start, start + 10_000)), 1_000_000 + start)
    assert len(dedup) == n
    assert dedup.nbytes <= 21 * n
    assert sys.getsizeof(dedup._young) < 1_000_000  # the young dict was frozen, not left to grow


def test_keys_expire_with_the_window_and_the_cap_bounds_them() -> None:
    dedup = DuplicateFilter(window_s=80.0, young_max=100, max_keys=2_000)
    for second in range(1000):
        dedup.commit(((1, second * 10 + i, 0) for i in range(10)), second * 1_000_000)
    assert len(dedup) <= 2_000 + 100  # the cap (plus the young dict) holds, whatever the rate
    dedup = DuplicateFilter(window_s=80.0, young_max=100)
    for second in range(1000):
        dedup.commit(((1, second * 10 + i, 0) for i in range(10)), second * 1_000_000)
    assert 800 <= len(dedup) <= 900 + 100  # 80 s at 10 keys/s, plus at most one segment's span
    assert not dedup.admit(1, 9_990, 0)  # the newest are remembered
    assert dedup.admit(1, 0, 0)  # the oldest were forgotten with the window
