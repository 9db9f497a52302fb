"""Wire decoding speed: sentinel.wire against stdlib json + hand validation, in the same run.

    python bench/wire.py [--quick]

Prints µs per message (and per reading for flattening) and the ratio baseline / sentinel. Messages are ~230 bytes
with 8 readings, like the ingest target (1,000 devices x 8 readings). The baseline makes the same checks the
decoder makes (fields, types, id patterns, RFC 3339 with offset, finite numbers, future time) the way one would
write them by hand with ``json.loads``.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sentinel.wire import Telemetry, decode_batch, decode_telemetry, to_columns
from sentinel.wire.contract import ID_PATTERN, METRIC_PATTERN, TIMESTAMP_PATTERN

NOW_US = 1_795_867_200_000_000
METRICS = ("ch4_pct_lel", "pipe_pressure_mpa", "dc_dp_pa", "hopper_temp_c", "cw_flow_m3h", "valve_ready",
           "airlock_fault", "launder_level_mm")  # fmt: skip


def message(i: int, ts_ms: bool = False) -> dict[str, Any]:
    values: list[float | bool] = [3.5 + i % 7, 0.32, 1250.0 + i, 41.5, 118.25, True, False, 612.0]
    ts: int | str = 1_795_867_200_000 + i if ts_ms else f"2026-11-28T20:00:00.{i % 1000:03d}+08:00"
    return {
        "device": f"dev-{i % 1000:05d}",
        "ts": ts,
        "seq": 1000 + i,
        "metrics": dict(zip(METRICS, values, strict=True)),
    }


# --- the baseline: json.loads and checks written by hand -------------------------------------------------------
_ID = re.compile(ID_PATTERN)
_NAME = re.compile(METRIC_PATTERN)
_TS = re.compile(TIMESTAMP_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIELDS = {"device", "ts", "seq", "metrics"}


def hand_validate(obj: Any, now_us: int) -> Telemetry:
    if not isinstance(obj, dict) or set(obj) != _FIELDS:
        raise ValueError("fields")
    device, ts, seq, metrics = obj["device"], obj["ts"], obj["seq"], obj["metrics"]
    if not isinstance(device, str) or not _ID.search(device):
        raise ValueError("device")
    if isinstance(ts, str):
        if not _TS.search(ts):
            raise ValueError("ts")
        delta = datetime.fromisoformat(ts) - _EPOCH
        ts_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    elif isinstance(ts, int) and not isinstance(ts, bool):
        ts_us = ts * 1000
    else:
        raise ValueError("ts")
    if ts_us - now_us > 900_000_000:
        raise ValueError("future")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
        raise ValueError("seq")
    if not isinstance(metrics, dict) or not 1 <= len(metrics) <= 256:
        raise ValueError("metrics")
    for key, value in metrics.items():
        if not _NAME.search(key):
            raise ValueError("metric id")
        if not isinstance(value, bool) and not (isinstance(value, int | float) and math.isfinite(value)):
            raise ValueError("metric value")
    return Telemetry(device, ts_us, seq, metrics)


def baseline_single(raw: bytes) -> Telemetry:
    return hand_validate(json.loads(raw), NOW_US)


def baseline_batch(raw: bytes) -> list[Telemetry]:
    return [hand_validate(item, NOW_US) for item in json.loads(raw)["messages"]]


def naive_columns(messages: list[Telemetry]) -> tuple[np.ndarray, ...]:
    devices, seqs, stamps, metrics, values = [], [], [], [], []
    for m in messages:
        for metric, value in m.metrics.items():
            devices.append(m.device)
            seqs.append(m.seq)
            stamps.append(m.ts_us)
            metrics.append(metric)
            values.append(float(value))
    return (np.array(devices, dtype=object), np.array(seqs, dtype=np.int64), np.array(stamps, dtype=np.int64),
            np.array(metrics, dtype=object), np.array(values, dtype=np.float64))  # fmt: skip


# --- timing ----------------------------------------------------------------------------------------------------
def best_us(fn: Callable[[], object], repeat: int, number: int) -> float:
    """Best of ``repeat`` runs of ``number`` calls, in µs per call (the least disturbed by other load)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number / 1000)
    return best


def main() -> None:
    quick = "--quick" in sys.argv
    repeat, number = (3, 2000) if quick else (7, 20000)
    single = json.dumps(message(7)).encode()
    single_ms = json.dumps(message(7, ts_ms=True)).encode()
    batch = json.dumps({"messages": [message(i) for i in range(100)]}).encode()
    bad_items = [message(i) for i in range(100)]
    bad_items[50]["metrics"]["ch4_pct_lel"] = "high"
    batch_one_bad = json.dumps({"messages": bad_items}).encode()
    messages = decode_batch(batch, now_us=NOW_US).messages * 10  # 1,000 messages, 8,000 readings
    assert baseline_batch(batch) == decode_batch(batch, now_us=NOW_US).messages
    assert all(
        np.array_equal(a, b) for a, b in zip(naive_columns(messages), vars_of(to_columns(messages)), strict=True)
    )

    rows = [
        ("one message, RFC 3339 ts", "msg", 1, lambda: decode_telemetry(single, now_us=NOW_US),
         lambda: baseline_single(single)),
        ("one message, epoch-ms ts", "msg", 1, lambda: decode_telemetry(single_ms, now_us=NOW_US),
         lambda: baseline_single(single_ms)),
        ("gateway batch of 100", "msg", 100, lambda: decode_batch(batch, now_us=NOW_US),
         lambda: baseline_batch(batch)),
        ("batch of 100, one item bad", "msg", 100, lambda: decode_batch(batch_one_bad, now_us=NOW_US), None),
        ("columns from 1,000 messages", "reading", 8000, lambda: to_columns(messages),
         lambda: naive_columns(messages)),
    ]  # fmt: skip
    print(f"payloads: single {len(single)} B, batch {len(batch)} B ({len(batch) // 100} B/message), 8 readings each")
    print(f"{'case':30} {'unit':>8} {'sentinel µs':>12} {'baseline µs':>12} {'ratio':>7}")
    for name, unit, per, ours, theirs in rows:
        scale = max(1, per // 10)
        ours_us = best_us(ours, repeat, max(1, number // scale)) / per
        if theirs is None:
            print(f"{name:30} {unit:>8} {ours_us:12.3f} {'-':>12} {'-':>7}")
            continue
        theirs_us = best_us(theirs, repeat, max(1, number // scale)) / per
        print(f"{name:30} {unit:>8} {ours_us:12.3f} {theirs_us:12.3f} {theirs_us / ours_us:6.1f}x")
    print("baseline = json.loads + hand checks (and a Python loop for columns); ratio = baseline / sentinel")


def vars_of(columns: Any) -> tuple[np.ndarray, ...]:
    return (columns.device, columns.seq, columns.ts_us, columns.metric, columns.value)


if __name__ == "__main__":
    main()
