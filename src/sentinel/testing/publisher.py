"""A device fleet publishing telemetry at QoS 1 from its own process, for end-to-end tests and benchmarks.

    python -m sentinel.testing.publisher --port 1883 --prefix t1 --devices 1000 --messages 100000 --metrics 8

Devices are ``<prefix>-s<site>-d<n>`` spread over ``--sites`` sites (the registry :func:`fleet_registry` makes);
message k goes to device ``k % devices`` with seq ``k // devices`` and device time ``base + seq`` seconds. Prints
one JSON line: how many messages the broker acknowledged and the publish rate. Values are deterministic, so two
runs publish the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Iterator

from sentinel.engine.catalog import METRICS
from sentinel.registry.entries import DeviceEntry, RegistryFile, SiteEntry
from sentinel.testing.broker import publish
from sentinel.wire import Telemetry, device_topic, encode_telemetry

BASE_TS_US = 1_790_000_000_000_000  # 2026-09-21, fixed so runs are comparable


def device_name(prefix: str, index: int, sites: int) -> tuple[str, str]:
    site = f"{prefix}-s{index % sites}"
    return site, f"{site}-d{index}"


def fleet_registry(prefix: str, devices: int, sites: int = 10) -> RegistryFile:
    site_entries = [SiteEntry(f"{prefix}-s{i}", f"site {i}", f"town-{i % 4}", "gas") for i in range(sites)]
    device_entries = [
        DeviceEntry(device_name(prefix, i, sites)[1], device_name(prefix, i, sites)[0], "gas_pipe_monitor", 1.0)
        for i in range(devices)
    ]
    return RegistryFile(site_entries, [], device_entries)


def fleet_messages(
    prefix: str, devices: int, messages: int, metrics: int, *, sites: int = 10, start: int = 0
) -> Iterator[tuple[str, bytes]]:
    names = [m.id for m in METRICS[:metrics]]
    for k in range(start, start + messages):
        index, seq = k % devices, k // devices
        site, device = device_name(prefix, index, sites)
        values = {name: round(((k * 7 + j * 13) % 1000) / 100.0, 2) for j, name in enumerate(names)}
        msg = Telemetry(device, BASE_TS_US + seq * 1_000_000 + index, seq, values)
        yield device_topic(site, device, "telemetry"), encode_telemetry(msg)


def paced(payloads: list[tuple[str, bytes]], rate: float) -> Iterator[tuple[str, bytes]]:
    """Hold the stream to ``rate`` messages per second (sleeps in 10 ms steps; the publisher's loop is blocked
    meanwhile, which only delays reading PUBACKs)."""
    started = time.perf_counter()
    for k, item in enumerate(payloads):
        due = started + k / rate
        delay = due - time.perf_counter()
        if delay > 0.01:
            time.sleep(delay)
        yield item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--metrics", type=int, default=8)
    parser.add_argument("--start", type=int, default=0, help="index of the first message")
    parser.add_argument("--window", type=int, default=2000, help="unacknowledged messages in flight")
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second (0: as fast as possible)")
    args = parser.parse_args()
    payloads = list(
        fleet_messages(args.prefix, args.devices, args.messages, args.metrics, sites=args.sites, start=args.start)
    )
    started = time.perf_counter()
    stream = paced(payloads, args.rate) if args.rate > 0 else payloads
    acked = asyncio.run(publish(args.host, args.port, stream, window=args.window))
    elapsed = time.perf_counter() - started
    print(json.dumps({"acked": acked, "seconds": round(elapsed, 3), "msg_per_s": round(acked / elapsed)}), flush=True)


if __name__ == "__main__":
    main()
