"""Sending a simulation (or a recording) to Sentinel: pacing, MQTT and HTTP senders, recordings on disk.

:func:`paced_steps` turns a :class:`~sentinel.sim.simulation.Simulation` into lists of messages in arrival order,
held to ``speed`` × device time (``speed`` 0: as fast as possible). :func:`send_mqtt` publishes at QoS 1 through one
connection (per-device topics, as devices do); :class:`HttpSender` posts NDJSON per township gateway with its
bearer token. A recording is JSON lines: a header (scenario, seed, start, ground truth, registry), then one
``[arrival_us, topic, payload]`` line per message; ``.gz`` names are gzip-compressed.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

import msgspec

from sentinel.errors import ScenarioError
from sentinel.registry.entries import RegistryFile
from sentinel.sim.faults import ActiveFault
from sentinel.sim.simulation import Outgoing, Simulation

RECORDING_FORMAT = "sentinel-sim-recording/1"


@dataclass
class Progress:
    """Counters a progress bar or live view reads (written by one thread, read by another)."""

    sent: int = 0
    device_s: float = 0.0
    total_device_s: float = 0.0
    started: float = 0.0

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


def paced_steps(
    sim: Simulation,
    speed: float,
    *,
    step_s: float = 1.0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    endless: bool = False,
) -> Iterator[list[Outgoing]]:
    """Messages in arrival order, a step of device time at a time; ``speed`` > 0 holds device time to that many
    times wall time. ``endless`` keeps going past the scenario's duration (the demo)."""
    progress = progress or Progress()
    progress.total_device_s = sim.scenario.duration_s
    progress.started = time.perf_counter()
    t = 0.0
    step = step_s if speed > 0 else max(step_s, 60.0)
    while endless or t < sim.scenario.duration_s:
        if stop is not None and stop.is_set():
            return
        t = t + step if endless else min(t + step, sim.scenario.duration_s)
        if speed > 0:
            due = progress.started + t / speed
            while (delay := due - time.perf_counter()) > 0:
                if stop is not None and stop.wait(min(delay, 0.2)):
                    return
                if stop is None:
                    time.sleep(min(delay, 0.2))
        batch = sim.advance(t)
        progress.sent += len(batch)
        progress.device_s = t
        yield batch
    tail = sim.drain()
    progress.sent += len(tail)
    yield tail


def send_mqtt(
    host: str, port: int, steps: Iterable[list[Outgoing]], *, username: str | None = None, password: str | None = None
) -> int:
    """Publish every message at QoS 1 over one connection; returns how many the broker acknowledged."""
    from sentinel.collect.broker_process import publish

    messages = ((m.topic, m.payload) for step in steps for m in step)
    return asyncio.run(
        publish(
            host,
            port,
            messages,
            window=500,
            client_id=f"sentinel-sim-{id(messages)}",
            username=username,
            password=password,
        )
    )


class HttpSender:
    """POST /v1/telemetry as NDJSON, one request per gateway per step, each with its gateway's bearer token."""

    def __init__(self, base_url: str, registry: RegistryFile, tokens: dict[str, str], *, chunk: int = 2000) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ScenarioError(f"--http-url {base_url!r}: expected http://host:port")
        self.host, self.port = parts.hostname, parts.port or 80
        site_gateway = {site: gw.id for gw in registry.gateways for site in gw.sites}
        self.device_token = {d.id: tokens[site_gateway[d.site]] for d in registry.devices}
        self.chunk = chunk
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.accepted = 0

    def send(self, step: list[Outgoing]) -> None:
        groups: dict[str, list[bytes]] = {}
        for m in step:
            groups.setdefault(self.device_token[m.device], []).append(m.payload)
        for token, payloads in groups.items():
            for i in range(0, len(payloads), self.chunk):
                self._post(token, b"\n".join(payloads[i : i + self.chunk]))

    def _post(self, token: str, body: bytes) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        for attempt in range(50):
            try:
                self.conn.request("POST", "/v1/telemetry", body, headers)
                response = self.conn.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                time.sleep(0.2)
                continue
            if response.status == 503:  # the ingest queue is full: back off as asked
                time.sleep(float(response.getheader("Retry-After") or 0.5) if attempt < 5 else 1.0)
                continue
            if response.status != 202:
                raise ScenarioError(f"POST /v1/telemetry answered {response.status}: {text[:300]!r}")
            self.accepted += int(json.loads(text).get("accepted", 0))
            return
        raise ScenarioError(f"POST /v1/telemetry to {self.host}:{self.port} kept failing")

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------------------- recordings
def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast("IO[str]", gzip.open(path, mode + "t", encoding="utf-8"))
    return path.open(mode, encoding="utf-8")


class Recorder:
    """Writes the header, then every message as it is sent."""

    def __init__(self, path: Path, sim: Simulation) -> None:
        self.file = _open(path, "w")
        header = {
            "format": RECORDING_FORMAT,
            "scenario": sim.scenario.name,
            "seed": sim.scenario.seed,
            "start_us": sim.start_us,
            "duration_s": sim.scenario.duration_s,
            "faults": [_fault_json(f) for f in sim.faults],
            "registry": msgspec.to_builtins(sim.registry),
            "tokens": {gw.id: gw.secret for gw in sim.registry.gateways},
        }
        self.file.write(json.dumps(header, ensure_ascii=False) + "\n")

    def tee(self, steps: Iterable[list[Outgoing]]) -> Iterator[list[Outgoing]]:
        for step in steps:
            for m in step:
                self.file.write(json.dumps([m.arrival_us, m.topic, m.payload.decode()], ensure_ascii=False) + "\n")
            yield step

    def close(self) -> None:
        self.file.close()


def _fault_json(f: ActiveFault) -> dict[str, Any]:
    d = asdict(f)
    d.pop("frozen")
    d.pop("rng")
    d["devices"], d["subjects"] = list(f.devices), list(f.subjects)
    return d


@dataclass
class Recording:
    scenario: str
    seed: int
    start_us: int
    duration_s: float
    faults: list[ActiveFault]
    registry: RegistryFile
    tokens: dict[str, str]
    messages: list[tuple[int, str, bytes]]


def read_recording(path: Path) -> Recording:
    try:
        with _open(path, "r") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    if not lines:
        raise ScenarioError(f"{path}: empty, expected a header line")
    try:
        header = json.loads(lines[0])
    except ValueError as exc:
        raise ScenarioError(f"{path}:1: the header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != RECORDING_FORMAT:
        raise ScenarioError(f"{path}:1: not a Sentinel recording (expected format {RECORDING_FORMAT!r})")
    try:
        registry = msgspec.convert(header["registry"], RegistryFile)
        faults = [
            ActiveFault(**{**f, "devices": tuple(f["devices"]), "subjects": tuple(f["subjects"])})
            for f in header["faults"]
        ]
        messages = []
        for line in lines[1:]:
            arrival, topic, payload = json.loads(line)
            messages.append((int(arrival), str(topic), str(payload).encode()))
    except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
        raise ScenarioError(f"{path}: bad recording: {exc}") from exc
    return Recording(
        header["scenario"],
        int(header["seed"]),
        int(header["start_us"]),
        float(header["duration_s"]),
        faults,
        registry,
        dict(header.get("tokens", {})),
        messages,
    )


def recording_steps(
    rec: Recording, speed: float, stop: threading.Event | None = None, on_step: Callable[[int], None] | None = None
) -> Iterator[list[Outgoing]]:
    """The recorded messages again, in recorded order; ``speed`` > 0 keeps the recorded pace (× speed)."""
    started = time.perf_counter()
    first = rec.messages[0][0] if rec.messages else 0
    step: list[Outgoing] = []
    step_end = first + 1_000_000
    for arrival, topic, payload in rec.messages:
        if arrival >= step_end and step:
            yield step
            if on_step:
                on_step(len(step))
            step = []
            step_end = arrival + 1_000_000
            if speed > 0:
                due = started + (arrival - first) / 1e6 / speed
                delay = due - time.perf_counter()
                if delay > 0 and stop is not None and stop.wait(delay):
                    return
                if delay > 0 and stop is None:
                    time.sleep(delay)
        device = topic.split("/")[3]
        step.append(Outgoing(arrival, device, 0, 0, topic, payload, 0))
    if step:
        yield step
        if on_step:
            on_step(len(step))
