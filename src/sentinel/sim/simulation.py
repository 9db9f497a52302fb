"""A running simulation: device models and faults in, wire messages out, in the order a broker would see them.

:class:`Simulation` advances device time in steps (:meth:`advance`); every device reports at its interval with a
little clock jitter, and each message gets a network delay: usually a fraction of a second, sometimes much longer
(a late message, which then arrives out of order), sometimes twice (a duplicate, same seq), sometimes never (a
drop-out). Messages come out sorted by arrival time. Everything is drawn from per-device random streams, so the
same scenario and seed give the same bytes however the run is cut into steps.
"""

from __future__ import annotations

import heapq
import random
import time
from dataclasses import dataclass

from sentinel.errors import ScenarioError
from sentinel.registry.entries import DeviceEntry, RegistryFile
from sentinel.sim.faults import FAULT_KINDS, HAZARDOUS_KINDS, STUCK, ActiveFault
from sentinel.sim.models import DeviceModel
from sentinel.sim.scenario import Scenario, build_registry
from sentinel.wire import Telemetry, device_topic, encode_telemetry

SETTLE_S = 900.0  # after a fault ends, its alerts may take this long to clear: not counted as false alerts


@dataclass(frozen=True, slots=True, order=True)
class Outgoing:
    """One message as it leaves the device: when it arrives (epoch µs), its topic and payload."""

    arrival_us: int
    device: str
    seq: int
    copy: int
    topic: str
    payload: bytes
    ts_us: int


class _Device:
    __slots__ = ("faults", "model", "net", "next_t", "seq", "topic_site")

    def __init__(self, model: DeviceModel, seed: int) -> None:
        self.model = model
        self.net = random.Random(f"{seed}:{model.id}:net")
        self.next_t = model.phase * model.interval_s
        self.seq = 0
        self.faults: list[ActiveFault] = []
        self.topic_site = model.site


class Simulation:
    """Scenario → registry, faults with ground truth, and the message stream."""

    def __init__(self, scenario: Scenario, start_us: int | None = None, seq_base: int = 0) -> None:
        self.scenario = scenario
        # Device time must not run ahead of the receiver's clock: by default the run ends "now".
        if start_us is None:
            start_us = (int(time.time()) - int(scenario.duration_s) - 60) * 1_000_000
        self.start_us = start_us
        self.registry: RegistryFile = build_registry(scenario)
        self.sites = {s.id: s for s in self.registry.sites}
        self.entries = {d.id: d for d in self.registry.devices}
        horizon = scenario.duration_s
        self.devices = [
            _Device(DeviceModel(d, scenario.seed, start_us / 1e6, horizon), scenario.seed)
            for d in self.registry.devices
        ]
        for dev in self.devices:  # a live run restarted on the same database must not look like redelivery
            dev.seq = seq_base
        self.faults = plan_faults(scenario, self.registry)
        by_id = {d.model.id: d for d in self.devices}
        for fault in self.faults:
            for device_id in fault.devices:
                by_id[device_id].faults.append(fault)
        self._pending: list[Outgoing] = []
        self.now_s = 0.0
        self.generated = 0
        self.dropped = 0

    @property
    def end_us(self) -> int:
        return self.start_us + round(self.scenario.duration_s * 1e6)

    def advance(self, until_s: float) -> list[Outgoing]:
        """Readings with device time before ``until_s`` (seconds into the run) are made; messages that have
        arrived by then are returned in arrival order."""
        d = self.scenario.delivery
        for dev in self.devices:
            model = dev.model
            while dev.next_t < until_s:
                t = dev.next_t
                dev.next_t = t + model.interval_s
                ts = t + dev.net.uniform(-d.jitter_s, d.jitter_s) if d.jitter_s else t
                values: dict[str, float | bool] | None = model.values(ts)
                for fault in dev.faults:
                    if values is not None and fault.start_s <= ts < fault.end_s:
                        values = fault.apply(model.id, model.device_class, model.attrs, ts, values)
                if values is None:
                    continue
                seq = dev.seq
                dev.seq += 1
                if dev.net.random() < d.dropout_rate:
                    self.dropped += 1
                    continue
                ts_us = self.start_us + round(ts * 1e6)
                payload = encode_telemetry(Telemetry(model.id, ts_us, seq, values))
                topic = device_topic(dev.topic_site, model.id, "telemetry")
                delay = dev.net.uniform(*d.delay_s)
                if dev.net.random() < d.late_rate:
                    delay += dev.net.uniform(*d.late_s)
                heapq.heappush(
                    self._pending, Outgoing(ts_us + round(delay * 1e6), model.id, seq, 0, topic, payload, ts_us)
                )
                self.generated += 1
                if dev.net.random() < d.duplicate_rate:  # a redelivery a few seconds later
                    again = ts_us + round((delay + dev.net.uniform(1.0, 5.0)) * 1e6)
                    heapq.heappush(self._pending, Outgoing(again, model.id, seq, 1, topic, payload, ts_us))
        self.now_s = max(self.now_s, until_s)
        # A reading made later has nominal time >= until_s, so device time >= until_s - jitter: only what arrived
        # before that is certain to come before everything still to be made (the stream is then step-independent).
        horizon_us = self.start_us + round((until_s - d.jitter_s) * 1e6)
        out: list[Outgoing] = []
        while self._pending and self._pending[0].arrival_us <= horizon_us:
            out.append(heapq.heappop(self._pending))
        return out

    def drain(self) -> list[Outgoing]:
        """Whatever is still in flight at the end of the run."""
        out = sorted(self._pending)
        self._pending.clear()
        return out

    def all_messages(self, step_s: float = 60.0) -> list[Outgoing]:
        out: list[Outgoing] = []
        t = 0.0
        while t < self.scenario.duration_s:
            t = min(t + step_s, self.scenario.duration_s)
            out.extend(self.advance(t))
        out.extend(self.drain())
        return out


def plan_faults(scenario: Scenario, registry: RegistryFile) -> list[ActiveFault]:
    """Resolve the scenario's faults (and the periodic ones) against the registry, with their ground truth."""
    rng = random.Random(f"{scenario.seed}:faults")
    by_site: dict[str, list[DeviceEntry]] = {}
    for d in registry.devices:
        by_site.setdefault(d.site, []).append(d)
    devices = {d.id: d for d in registry.devices}
    sectors = {s.id: s.sector for s in registry.sites}
    busy: dict[str, float] = {}  # device or site id -> until when a fault (and its settling) holds it
    specs: list[tuple[str, float, str | None, str | None, float | None]] = [
        (f.kind, f.at_s, f.device, f.site, f.duration_s) for f in scenario.faults
    ]
    if scenario.fault_every_s:
        kinds = list(scenario.fault_kinds or HAZARDOUS_KINDS)
        order: list[str] = []
        t = scenario.fault_every_s
        while t < scenario.duration_s:
            if not order:
                order = rng.sample(kinds, len(kinds))
            specs.append((order.pop(), t, None, None, None))
            t += scenario.fault_every_s
    out: list[ActiveFault] = []
    for i, (kind, at_s, device_asked, site_asked, duration) in enumerate(specs):
        device, site = device_asked, site_asked
        spec = FAULT_KINDS[kind]
        where = f"fault {i} ({kind} at {at_s:g} s)"
        if spec.target == "site":
            if site is None:
                candidates = [
                    s
                    for s, ds in by_site.items()
                    if busy.get(s, -1.0) < at_s
                    and (not spec.classes or any(d.device_class in spec.classes for d in ds))
                ]
                if not candidates:
                    raise ScenarioError(f"{where}: no site left for it in this county")
                site = rng.choice(sorted(candidates))
            if site not in by_site:
                raise ScenarioError(f"{where}: unknown site {site!r}")
            targets = by_site[site]
        else:
            if device is None:
                candidates = [
                    d for d in sorted(devices) if busy.get(d, -1.0) < at_s and devices[d].device_class in spec.classes
                ]
                if not candidates:
                    raise ScenarioError(f"{where}: no {'/'.join(spec.classes)} device left for it in this county")
                device = rng.choice(candidates)
            if device not in devices:
                raise ScenarioError(f"{where}: unknown device {device!r}")
            if devices[device].device_class not in spec.classes:
                raise ScenarioError(
                    f"{where}: device {device!r} is a {devices[device].device_class}, "
                    f"the fault needs one of {', '.join(spec.classes)}"
                )
            targets = [devices[device]]
            site = devices[device].site
        rule, deadline, default_duration = spec.rule, spec.deadline_s, spec.default_duration_s
        if kind == "gateway_offline":
            rule = rule.format(sector=sectors[site])
            deadline = 6 * max(d.expected_interval_s for d in targets) + 60  # blue at 3x, ticks
        if kind == "stuck_sensor":
            _, rule, stuck_at = STUCK[targets[0].device_class]
            deadline = stuck_at + 3 * targets[0].expected_interval_s + 60
            default_duration = deadline + 300
        start = float(at_s)
        end = min(start + (duration or default_duration), scenario.duration_s)
        for ident in [site, *(d.id for d in targets)]:
            busy[ident] = max(busy.get(ident, -1.0), end + 900.0)
        hit = tuple(d.id for d in targets)
        subjects = (site,) if spec.subject == "site" else (site, *hit) if spec.subject == "either" else hit
        out.append(
            ActiveFault(
                i,
                kind,
                start,
                end,
                site,
                tuple(d.id for d in targets),
                subjects,
                rule,
                spec.grade,
                deadline,
                spec.hazardous,
                rng=random.Random(f"{scenario.seed}:fault:{i}"),
            )
        )
    return out
