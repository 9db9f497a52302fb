"""The duplicate filter's cost per message and per key: the numpy-segment filter against the dict of tuples it
replaced (issue 13), on the same stream, in this process.

    python bench/dedup.py [--messages 2000000] [--batch 400] [--devices 1000]

Each batch is admitted (every message new), then committed, as the ingest sink does; a tenth of the batches are
sent again (QoS 1 redelivery: all duplicates). Prints µs per message and the bytes the filter holds per key
(tracemalloc, so the Python objects of the old filter are counted as well as the numpy columns of the new).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from sentinel.ingest.dedup import DuplicateFilter


def _old_filter() -> Any:
    """The filter as it was before (git e2f0250), loaded from that commit."""
    source = subprocess.run(
        ["git", "show", "e2f0250:src/sentinel/ingest/dedup.py"], capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_dedup.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_dedup", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DuplicateFilter


def run(make: Any, messages: int, batch: int, devices: int, batched: bool) -> tuple[float, float, int]:
    seconds, _size, _keys = _run(make, messages, batch, devices, batched, traced=False)
    _seconds, size, keys = _run(make, messages, batch, devices, batched, traced=True)
    return seconds, size, keys


def _run(make: Any, messages: int, batch: int, devices: int, batched: bool, traced: bool) -> tuple[float, float, int]:
    if traced:
        tracemalloc.start()
    dedup = make()
    seq = [0] * devices
    now_us = 1_700_000_000_000_000
    k = 0
    started = time.perf_counter()
    sent = 0
    while sent < messages:
        keys = []
        for _ in range(batch):
            d = k % devices
            k += 1
            seq[d] += 1
            keys.append((d + 1, seq[d], now_us + k))
        rounds = 2 if (k // batch) % 10 == 0 else 1  # a tenth sent again: all duplicates the second time
        for _ in range(rounds):
            if batched:
                fresh = dedup.admit_many([a for a, _, _ in keys], [b for _, b, _ in keys], [c for _, _, c in keys])
            else:
                fresh = [dedup.admit(a, b, c) for a, b, c in keys]
            dedup.commit([key for key, new in zip(keys, fresh, strict=True) if new], now_us)
            sent += len(keys)
        now_us += 50_000
    seconds = time.perf_counter() - started
    size = 0
    if traced:
        size, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return seconds / sent * 1e6, size / len(dedup), len(dedup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    old = _old_filter()
    rows = [
        ("dict of tuples (before)", run(old, args.messages, args.batch, args.devices, batched=False)),
        ("numpy segments (now)", run(DuplicateFilter, args.messages, args.batch, args.devices, batched=True)),
    ]
    base_us, base_bytes, _ = rows[0][1]
    print(f"{'filter':<28}{'keys':>10}{'µs/message':>12}{'vs before':>11}{'bytes/key':>11}{'vs before':>11}")
    for name, (us, per_key, keys) in rows:
        print(f"{name:<28}{keys:>10}{us:>12.2f}{us / base_us:>10.2f}x{per_key:>11.0f}{per_key / base_bytes:>10.2f}x")
    print(f"(python {sys.version.split()[0]}; timed without tracemalloc, sized in a second run with it)")


if __name__ == "__main__":
    main()
