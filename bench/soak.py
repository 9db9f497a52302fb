"""Soak: Sentinel under a steady MQTT load with 1 % hostile messages, for minutes, watching what drifts.

    python bench/soak.py [--minutes 30] [--fraction 0.5] [--devices 500] [--hostile 0.01]

Not part of the test suite (issue 13). Runs a private Mosquitto, PostgreSQL (SENTINEL_TEST_DATABASE_URL's server,
else an embedded one) and Sentinel's ingest pipeline with the rule engine, in this process. First it measures the
maximum rate (a burst drained as fast as the pipeline stores it), then publishes from its own process at
``--fraction`` of that rate for ``--minutes``: methane readings of ``gas_well_monitor`` devices, each device
spiking over the alarm level once (one alert each; the spikes spread over the run, at most one a second), and
``--hostile`` of the messages poison (truncated JSON, nesting bombs, invalid UTF-8, bad topics, oversized
payloads). Prints one table:

  memory (RSS of the Sentinel process) after warm-up and at the end; the ingest queue depth (mean and max) and the
  p99 batch latency (publish batch received -> durable) in the first and last fifth of the run; p50/p95/p99 from a
  spike's publish to its alert row being visible in PostgreSQL (polled every 20 ms, so up to 20 ms high); and
  messages lost (published, acknowledged by the broker, good, not in message_log) and duplicated (stored twice).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from sentinel.app import Sentinel, prepare_catalogue
from sentinel.collect.mqtt import CollectorConfig
from sentinel.registry.entries import DeviceEntry, RegistryFile, SiteEntry
from sentinel.registry.repository import upsert_registry
from sentinel.store import migrations
from sentinel.testing.broker import PrivateMosquitto, publish
from sentinel.testing.postgres import postgres_for_tests
from sentinel.testing.service import start_service
from sentinel.testing.waiting import wait_until
from sentinel.wire import Telemetry, device_topic, encode_telemetry

SITES = 5
NORMAL, SPIKE = 2.0, 30.0  # gas.ch4_lel: blue at 10 %LEL, yellow at 25
POISON = [
    b'[{"device":"x","ts":17646',
    b'{"device":"x","ts":1e400',
    b"[" * 10_000 + b"]" * 10_000,
    b'{"device": "\xff"}',
    b'{"pad": "' + b"x" * (1_100_000) + b'"}',
]


def _device(prefix: str, i: int) -> tuple[str, str]:
    return f"{prefix}-s{i % SITES}", f"{prefix}-d{i}"


def registry(prefix: str, devices: int) -> RegistryFile:
    sites = [SiteEntry(f"{prefix}-s{i}", f"site {i}", f"town-{i}", "gas") for i in range(SITES)]
    entries = [
        DeviceEntry(_device(prefix, i)[1], _device(prefix, i)[0], "gas_well_monitor", 1.0) for i in range(devices)
    ]
    return RegistryFile(sites, [], entries)


# ------------------------------------------------------------------ the publisher (its own process)
def _stream(
    prefix: str, devices: int, rate: float, seconds: float, hostile: float, log: list[str], count: int
) -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    seq = [0] * devices
    spiked = 0
    spike_every = max(1.0, seconds / devices)
    k = 0
    while True:
        due = started + k / rate
        now = time.perf_counter()
        if due - started > seconds or k >= count:
            return
        if due - now > 0.01:
            time.sleep(due - now)
        i = k % devices
        site, device = _device(prefix, i)
        k += 1
        if rng.random() < hostile:
            choice = int(rng.integers(0, len(POISON) + 2))
            if choice == len(POISON):
                yield f"sentinel/v1/{site}/{device}/x/telemetry", b"{}"
            elif choice == len(POISON) + 1:
                yield f"sentinel/v1/{site}/_gateway/gw/event", b"{}"
            else:
                yield device_topic(site, device, "telemetry"), POISON[choice]
            continue
        value = NORMAL
        # Each device spikes once, the spikes spread over the whole run (at most one a second), so the latency
        # percentiles cover its end too, not only its first ``devices`` seconds.
        if time.perf_counter() - started >= (spiked + 1) * spike_every and spiked < devices:
            i, spiked = spiked, spiked + 1
            site, device = _device(prefix, i)
            value = SPIKE
        seq[i] += 1
        ts_us = time.time_ns() // 1000
        log.append(f"{i} {seq[i]} {ts_us} {int(value == SPIKE)}")
        yield (
            device_topic(site, device, "telemetry"),
            encode_telemetry(Telemetry(device, ts_us, seq[i], {"ch4_pct_lel": value})),
        )


def publisher_main(args: argparse.Namespace) -> None:
    log: list[str] = []
    started = time.time()
    stream = _stream(args.prefix, args.devices, args.rate, args.seconds, args.hostile, log, args.count)
    acked = asyncio.run(publish("127.0.0.1", args.port, stream, window=2000))
    Path(args.log).write_text("\n".join(log) + "\n", encoding="utf-8")
    print(json.dumps({"acked": acked, "good": len(log), "started": started}), flush=True)


def _publisher(
    port: int, prefix: str, devices: int, rate: float, seconds: float, hostile: float, log: Path, count: int = 10**12
) -> subprocess.Popen[str]:
    args = [sys.executable, __file__, "--publish", "--port", str(port), "--prefix", prefix, "--devices", str(devices)]
    args += ["--rate", str(rate), "--seconds", str(seconds), "--hostile", str(hostile), "--log", str(log)]
    args += ["--count", str(count)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": "src"})


# ------------------------------------------------------------------ Sentinel (this process)
@contextlib.contextmanager
def running_sentinel(conninfo: str, broker: PrivateMosquitto, client_id: str) -> Iterator[Sentinel]:
    """The service as the root assembles it (rule engine on), on its own event loop in a thread, MQTT connected."""
    config = CollectorConfig(host=broker.host, port=broker.port, client_id=client_id, batch_max_wait_s=0.05)
    svc = start_service(conninfo, Path(tempfile.mkdtemp()) / "spool", engine=True, mqtt=config)
    try:
        sentinel = svc.sentinel
        wait_until(
            lambda: sentinel.collector is not None and sentinel.collector.connected.is_set(), "MQTT connected", 60
        )
        yield sentinel
    finally:
        svc.stop()


class Profile:
    """--profile: how long the engine runner's steps take (wall clock), and tracemalloc's top growth; to find where
    a latency tail or memory growth comes from. Slows the run: not for the reported figures."""

    def __init__(self, sentinel: Sentinel, trace_memory: bool) -> None:
        import tracemalloc

        self.trace_memory = trace_memory
        self.steps: dict[str, list[tuple[float, float]]] = {}
        runner = sentinel.runner
        assert runner is not None
        for name in ("tick", "save_checkpoint", "catch_up"):
            setattr(runner, name, self._timed(name, getattr(runner, name)))
        runner.write_transitions = self._timed("write_transitions", runner.write_transitions)
        # Stages of each batch holding a spike: published (its ts) -> received -> durable -> evaluated (committed).
        self.spikes: list[tuple[float, float, float, float, float]] = []
        self._durable: dict[int, float] = {}
        handed, evaluate = sentinel.sink.on_durable, runner.evaluate
        assert handed is not None

        def on_durable(batch: Any) -> None:
            if len(batch.readings) and (batch.readings.value >= SPIKE).any():
                self._durable[id(batch.readings)] = time.time()
            handed(batch)

        def evaluated(conn: Any, readings: Any, received_at_us: int, commit_seq: int = 0) -> Any:
            started = time.time()
            try:
                return evaluate(conn, readings, received_at_us, commit_seq)
            finally:
                durable = self._durable.pop(id(readings), None)
                if durable is not None:
                    ts = float(readings.ts_us[readings.value >= SPIKE].min()) / 1e6
                    self.spikes.append((ts, received_at_us / 1e6, durable, started, time.time()))

        sentinel.sink.on_durable = on_durable
        runner.evaluate = self._timed("evaluate", evaluated)  # type: ignore[method-assign]
        sink = sentinel.sink
        sink._write = self._timed_async("ingest_write", sink._write)  # type: ignore[method-assign]
        if trace_memory:
            tracemalloc.start(8)
            self.snapshot = tracemalloc.take_snapshot()

    def _timed(self, name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.steps.setdefault(name, []).append((time.time(), time.perf_counter() - t0))

        return wrapper

    def _timed_async(self, name: str, fn: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.steps.setdefault(name, []).append((time.time(), time.perf_counter() - t0))

        return wrapper

    def report(self, slow_alerts: list[tuple[float, float]]) -> None:
        import tracemalloc

        if self.trace_memory:
            snap = tracemalloc.take_snapshot()
            print("\ntracemalloc: top growth since warm-up (by traceback)")
            for stat in snap.compare_to(self.snapshot, "traceback")[:8]:
                print(f"  {stat.size_diff / 2**20:+8.1f} MiB {stat.count_diff:+9d} blocks")
                for line in stat.traceback.format()[-6:]:
                    print("     ", line)
        print("\nrunner steps: count, p50, p99, max (ms)")
        for name, values in self.steps.items():
            d = np.array([v for _t, v in values]) * 1000
            print(f"  {name:<20}{len(d):>8}{np.percentile(d, 50):>10.1f}{np.percentile(d, 99):>10.1f}{d.max():>10.1f}")
        print("\nspike batches, ms from publish: received, durable, evaluation started, committed (p50 / p99 / max)")
        if self.spikes:
            stages = np.array([[r - p, d - p, e - p, c - p] for p, r, d, e, c in self.spikes]) * 1000
            for name, column in zip(("received", "durable", "eval start", "committed"), stages.T, strict=True):
                p50, p99_ = np.percentile(column, [50, 99])
                print(f"  {name:<12}{p50:>8.0f}{p99_:>8.0f}{column.max():>8.0f}")
        print("\nslowest alerts (raised -> seen, ms) and runner steps overlapping them (>50 ms)")
        for raised, seen in sorted(slow_alerts, key=lambda a: a[0] - a[1])[:12]:
            near = [
                f"{n} {v * 1000:.0f}"
                for n, vs in self.steps.items()
                for t, v in vs
                if v > 0.05 and t - v < seen and t > raised - 0.5
            ]
            print(f"  {(seen - raised) * 1000:8.0f}  {', '.join(near[:12])}")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _buckets(pipeline: Sentinel) -> dict[float, float]:
    out: dict[float, float] = {}
    for metric in pipeline.metrics.batch_latency.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                out[float(sample.labels["le"])] = sample.value
    return out


def p99(before: dict[float, float], after: dict[float, float]) -> float:
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return float("nan")
    return next(b for b, c in zip(bounds, counts, strict=True) if c >= 0.99 * total)


def _logged(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM message_log").fetchone()
    return int(row[0]) if row else 0


def _wait_stored(conn: psycopg.Connection[Any], target: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while _logged(conn) < target and time.monotonic() < deadline:
        time.sleep(0.02)


def measure_max(conn: psycopg.Connection[Any], port: int, prefix: str, devices: int, n: int) -> float:
    """Messages per second from the first published to the last stored, publishing as fast as QoS 1 allows."""
    before = _logged(conn)
    proc = _publisher(port, prefix, devices, 1e9, 3600, 0.0, Path(tempfile.mkdtemp()) / "max.log", count=n)
    out, _ = proc.communicate(timeout=600)
    result = json.loads(out.strip().splitlines()[-1])
    _wait_stored(conn, before + int(result["good"]))
    return int(result["good"]) / (time.time() - float(result["started"]))  # from its first publish, not its start


class Sampler(threading.Thread):
    """Samples the queue depth, RSS and the batch-latency histogram every 0.5 s while the soak runs."""

    def __init__(self, pipeline: Sentinel) -> None:
        super().__init__(daemon=True)
        self.pipeline = pipeline
        self.samples: list[tuple[float, float, float, dict[float, float]]] = []  # (t, depth, rss, buckets)
        self.filter: list[tuple[int, float]] = []  # (keys, MiB) of the duplicate filter, beside each sample
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            depth = self.pipeline.metrics.queue_depth._value.get()
            self.samples.append((time.perf_counter(), depth, rss_mib(), _buckets(self.pipeline)))
            dedup = self.pipeline.dedup
            self.filter.append((len(dedup), dedup.nbytes / 2**20))


class AlertWatch(threading.Thread):
    """Polls the alerts table every 20 ms; keeps when each alert was first seen (wall clock)."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.seen: dict[int, tuple[float, float]] = {}  # alert_id -> (raised_at epoch s, first seen epoch s)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            rows = self.conn.execute(
                "SELECT a.alert_id, extract(epoch FROM a.raised_at) FROM alerts a JOIN devices d USING (device_id)"
                " WHERE a.rule_id = 'gas.ch4_lel' AND d.device LIKE 'sk-%'"
            ).fetchall()
            now = time.time()
            for alert_id, raised in rows:
                self.seen.setdefault(int(alert_id), (float(raised), now))


def main() -> None:
    parser = argparse.ArgumentParser(description="soak: steady MQTT load with hostile messages")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--fraction", type=float, default=0.5, help="of the measured maximum rate")
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--hostile", type=float, default=0.01)
    parser.add_argument("--max-messages", type=int, default=20_000, help="burst that measures the maximum rate")
    parser.add_argument("--profile", action="store_true", help="time the runner's steps")
    parser.add_argument("--tracemalloc", action="store_true", help="with --profile: memory growth by traceback (slow)")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    for name, kind in (
        ("port", int),
        ("prefix", str),
        ("rate", float),
        ("seconds", float),
        ("log", str),
        ("count", int),
    ):
        parser.add_argument(f"--{name}", type=kind, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publisher_main(args)
        return
    seconds = args.minutes * 60
    with postgres_for_tests(os.environ.get("SENTINEL_TEST_DATABASE_URL")) as pg, PrivateMosquitto() as broker:
        conninfo = pg.create_database("sentinel_soak")
        migrations.upgrade(conninfo)
        prepare_catalogue(conninfo)
        with psycopg.connect(conninfo) as conn:
            upsert_registry(conn, registry("mx", args.devices))
            upsert_registry(conn, registry("sk", args.devices))
        conn = psycopg.connect(conninfo, autocommit=True)
        with running_sentinel(conninfo, broker, "soak") as sentinel:
            max_rate = measure_max(conn, broker.port, "mx", args.devices, args.max_messages)
            rate = max_rate * args.fraction
            print(
                f"maximum rate {max_rate:.0f} msg/s (live publisher, engine on); soaking at {rate:.0f} msg/s "
                f"for {args.minutes:g} min with {args.hostile:.0%} hostile",
                flush=True,
            )
            before = _logged(conn)
            profile = Profile(sentinel, args.tracemalloc) if args.profile else None
            sampler, watch = Sampler(sentinel), AlertWatch(conninfo)
            sampler.start()
            watch.start()
            log = Path(tempfile.mkdtemp()) / "soak.log"
            proc = _publisher(broker.port, "sk", args.devices, rate, seconds, args.hostile, log)
            out, _ = proc.communicate(timeout=seconds + 600)
            result = json.loads(out.strip().splitlines()[-1])
            _wait_stored(conn, before + int(result["good"]), timeout_s=120)
            time.sleep(1.0)
            sampler.done.set()
            watch.done.set()
            sampler.join()
            watch.join()
            collector = sentinel.collector
            assert collector is not None
            sink_failures = collector.stats.sink_failures
        report(conn, sampler, watch, log, result, sink_failures)
        if profile is not None:
            profile.report([(r, s) for r, s in watch.seen.values() if r > 0])


def report(
    conn: psycopg.Connection[Any],
    sampler: Sampler,
    watch: AlertWatch,
    log: Path,
    result: dict[str, int],
    sink_failures: int,
) -> None:
    published = {}
    spikes: dict[tuple[int, int], float] = {}
    rows = [line.split() for line in log.read_text().splitlines() if line]
    for i, seq, ts_us, spike in rows:
        published[(f"sk-d{i}", int(seq))] = int(ts_us)
        if spike == "1":
            spikes[(int(i), int(seq))] = int(ts_us) / 1e6
    stored = conn.execute(
        """SELECT d.device, m.seq, count(*) FROM message_log m JOIN devices d USING (device_id)
           WHERE d.device LIKE 'sk-%' GROUP BY 1, 2"""
    ).fetchall()
    counts = {(str(dev), int(seq)): int(n) for dev, seq, n in stored}
    lost = sum(1 for key in published if key not in counts)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    letters = conn.execute("SELECT code, count(*) FROM dead_letters GROUP BY 1 ORDER BY 2 DESC").fetchall()
    samples = sampler.samples
    fifth = max(1, len(samples) // 5)
    first, last = samples[:fifth], samples[-fifth:]
    latencies = np.array([seen - raised for raised, seen in watch.seen.values() if raised > 0]) * 1000
    warm_rss, end_rss = first[-1][2], last[-1][2]
    (warm_keys, warm_filter), (end_keys, end_filter) = sampler.filter[fifth - 1], sampler.filter[-1]
    t0 = samples[0][0]
    every = [f"{(t - t0) / 60:.0f}m {r:.0f}" for t, _d, r, _b in samples[:: max(1, int(300 / 0.5))]]

    def depth(part: list[tuple[float, float, float, dict[float, float]]]) -> str:
        values = [d for _t, d, _r, _b in part]
        return f"{np.mean(values):.2f} / {max(values):.0f}"

    print()
    print(f"{'soak':<44}{'start':>16}{'end':>16}")
    print(f"{'memory RSS (MiB)':<44}{warm_rss:>16.0f}{end_rss:>16.0f}   growth {end_rss - warm_rss:+.0f} MiB")
    print(f"{'  duplicate filter: keys (thousands)':<44}{warm_keys / 1000:>16.0f}{end_keys / 1000:>16.0f}")
    print(f"{'  duplicate filter: frozen keys (MiB)':<44}{warm_filter:>16.1f}{end_filter:>16.1f}")
    rest_warm, rest_end = warm_rss - warm_filter, end_rss - end_filter
    print(
        f"{'  RSS without the filter keys (MiB)':<44}{rest_warm:>16.0f}{rest_end:>16.0f}"
        f"   growth {rest_end - rest_warm:+.0f} MiB"
    )
    print(f"{'  RSS every 5 min (MiB)':<44}{', '.join(every)}")
    print(f"{'ingest queue depth, batches (mean / max)':<44}{depth(first):>16}{depth(last):>16}")
    p_first = p99(first[0][3], first[-1][3]) * 1000
    p_last = p99(last[0][3], last[-1][3]) * 1000
    print(f"{'p99 batch latency, ms (histogram bucket)':<44}{p_first:>16.0f}{p_last:>16.0f}")
    if len(latencies):
        p50, p95, p99_ = np.percentile(latencies, [50, 95, 99])
        print(
            f"{'publish -> alert row committed, ms':<44}p50 {p50:.0f}  p95 {p95:.0f}  p99 {p99_:.0f}  "
            f"({len(latencies)} alerts, {len(spikes)} spikes)"
        )
    else:
        print(f"{'publish -> alert row committed, ms':<44}no alerts seen ({len(spikes)} spikes)")
    print(f"{'published good / acknowledged (all)':<44}{len(published):>16}{result['acked']:>16}")
    print(f"{'lost / duplicated':<44}{lost:>16}{duplicated:>16}")
    print(f"{'sink failures (batches not acknowledged)':<44}{sink_failures:>16}")
    print(f"{'dead letters by code':<44}{ {str(c): int(n) for c, n in letters} }")


if __name__ == "__main__":
    main()
