"""Admission: decoded messages meet the registry and the duplicate filter. Every authorisation decision of ingest
is taken here, the same way for both transports: who the sender is and what it may write for
(:meth:`Admission.sender_for_topic` for an MQTT topic, :meth:`Admission.sender_for_key` for an HTTP key), then per
message whether the sender may write for the device's site (:meth:`Admission.telemetry`, :meth:`Admission.events`).

A gateway topic is refused as a whole (a :class:`Refusal`, one dead letter of the payload) when its gateway is not
in the registry (``unknown_gateway``) or not bound to the topic's site (``foreign_site``). A message is refused (one
dead letter, with a reason naming the field) when its device is unknown, or when the sender may not write for the
device's site: an MQTT topic names a different site, or a gateway (topic or HTTP key) is not bound to it. A
duplicate (same device, seq and time) is dropped and counted. Readings of metrics outside the catalogue are refused
on their own (one dead letter listing them) while the message's other readings are kept: an extra diagnostic value
from new firmware must not silence a gas sensor. An event whose text PostgreSQL cannot
store (a NUL character in its note) is refused here, with a reason naming the field, rather than by the database.

Every :class:`Admitted` can say where each of its admitted items came from (:attr:`Admitted.origin`), so that the
store can still dead-letter an item with its own bytes and source should PostgreSQL refuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from typing import Literal

import numpy as np

from sentinel.batch import DeviceEvent, IngestBatch, MessageKeys, ReadingBatch
from sentinel.ingest.dedup import DuplicateFilter
from sentinel.registry.repository import ApiKey, DeviceRecord, RegistryView
from sentinel.wire.columns import to_columns
from sentinel.wire.contract import RejectCode
from sentinel.wire.deadletter import DeadLetter, Origin, OriginOf
from sentinel.wire.messages import Event, Status, Telemetry
from sentinel.wire.topics import TopicInfo


def _no_origin(kind: Literal["message", "event"], index: int) -> Origin | None:
    return None


@dataclass(frozen=True, slots=True)
class Sender:
    """Where messages came from and what that sender may write for.

    ``site``: the site an MQTT topic names (every device must belong to it); ``allowed_sites``: the sites a gateway
    is bound to (None: not a gateway)."""

    source: str
    site: str | None = None
    allowed_sites: frozenset[str] | None = None
    gateway: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A transport input refused as a whole before its messages are read: why (``code``, ``reason``) and where."""

    code: str
    reason: str
    path: str = "topic"

    def letter(self, raw: bytes, source: str, received: datetime) -> DeadLetter:
        return DeadLetter(raw, source, received, self.reason, self.path, self.code)


@dataclass(slots=True)
class ItemError:
    """Why item ``index`` of a payload was refused (HTTP reports these per item)."""

    index: int | None
    path: str
    reason: str
    code: str


@dataclass(slots=True)
class Admitted:
    batch: IngestBatch
    errors: list[ItemError] = field(default_factory=list)
    accepted_messages: int = 0
    origin: OriginOf = _no_origin


class Admission:
    def __init__(self, registry: RegistryView, dedup: DuplicateFilter) -> None:
        self.registry = registry
        self.dedup = dedup

    def sender_for_topic(self, info: TopicInfo, source: str) -> Sender | Refusal:
        """The sender of an MQTT topic: it writes for devices of the topic's site; a gateway topic's gateway must be
        in the registry and bound to that site."""
        if info.gateway is not None:
            bound = self.registry.gateway_sites.get(info.gateway)
            if bound is None:
                return Refusal("unknown_gateway", f"unknown gateway {info.gateway!r}: not in the registry")
            if info.site not in bound:
                return Refusal("foreign_site", f"gateway {info.gateway!r} is not bound to site {info.site!r}")
        return Sender(source, site=info.site, gateway=info.gateway)

    def sender_for_key(self, key: ApiKey, source: str) -> Sender:
        """The sender of an HTTP body: a gateway key writes for the sites its gateway is bound to; an admin key (no
        sites) for any site."""
        return Sender(source, allowed_sites=key.sites, gateway=key.gateway)

    def _device_problem(self, device: str, sender: Sender) -> tuple[str, str] | None:
        record = self.registry.devices.get(device)
        if record is None:
            return "unknown_device", f"unknown device {device!r}: not in the registry"
        if sender.site is not None and record.site != sender.site:
            return "foreign_site", f"device {device!r} belongs to site {record.site!r}, not {sender.site!r}"
        if sender.allowed_sites is not None and record.site not in sender.allowed_sites:
            return (
                "foreign_site",
                f"gateway {sender.gateway!r} is not bound to site {record.site!r} of device {device!r}",
            )
        return None

    def telemetry(
        self,
        messages: Sequence[Telemetry],
        senders: Sequence[Sender],
        received_at_us: int,
        *,
        raw_of: Callable[[int], bytes],
        indices: Sequence[int | None] | None = None,
        path_prefix: Callable[[int | None], str] = lambda i: "" if i is None else f"messages[{i}]",
    ) -> Admitted:
        """Admit telemetry: message k came from ``senders[k]``, its bytes are ``raw_of(k)`` (asked only when it is
        refused) and ``indices[k]`` is its index in its payload (None for a lone message)."""
        received = datetime.fromtimestamp(received_at_us / 1e6, UTC)
        devices = self.registry.devices
        accepted: list[Telemetry] = []
        positions: list[int] = []  # accepted[j] is messages[positions[j]]
        records: list[DeviceRecord] = []
        errors: list[ItemError] = []
        letters: list[DeadLetter] = []
        known: list[int] = []  # messages[known[j]] has a device the sender may write for
        for k, msg in enumerate(messages):
            problem = self._device_problem(msg.device, senders[k])
            if problem is None:
                known.append(k)
                continue
            index = indices[k] if indices is not None else k
            code, reason = problem
            path = f"{path_prefix(index)}.device".lstrip(".")
            errors.append(ItemError(index, path, reason, code))
            letters.append(DeadLetter(raw_of(k), senders[k].source, received, reason, path, code, index))
        candidates = [devices[messages[k].device] for k in known]
        fresh = self.dedup.admit_many(  # one look-up of the whole batch in the filter's frozen keys
            [r.device_id for r in candidates], [messages[k].seq for k in known], [messages[k].ts_us for k in known]
        )
        duplicates = fresh.count(False)
        for k, record, new in zip(known, candidates, fresh, strict=True):
            if new:
                accepted.append(messages[k])
                positions.append(k)
                records.append(record)
        readings, unknown = self._readings(accepted, records)
        for j, names in unknown:
            k = positions[j]
            index = indices[k] if indices is not None else k
            path = f"{path_prefix(index)}.metrics".lstrip(".")
            reason = f"unknown metric(s) {', '.join(sorted(names))}: not in the metric catalogue (other readings kept)"
            errors.append(ItemError(index, path, reason, "unknown_metric"))
            letters.append(DeadLetter(raw_of(k), senders[k].source, received, reason, path, "unknown_metric", index))
        keys = MessageKeys(
            np.fromiter((r.device_id for r in records), np.int32, len(records)),
            np.fromiter((m.seq for m in accepted), np.int64, len(accepted)),
            np.fromiter((m.ts_us for m in accepted), np.int64, len(accepted)),
        )
        batch = IngestBatch(received_at_us, readings, keys, dead_letters=letters, duplicates=duplicates)

        def origin(kind: Literal["message", "event"], j: int) -> Origin | None:
            if kind != "message":
                return None
            k = positions[j]
            index = indices[k] if indices is not None else k
            return Origin(raw_of(k), senders[k].source, received, path_prefix(index), index)

        return Admitted(batch, errors, len(accepted), origin)

    def _readings(
        self, accepted: list[Telemetry], records: list[DeviceRecord]
    ) -> tuple[ReadingBatch, list[tuple[int, set[str]]]]:
        if not accepted:
            return ReadingBatch.empty(), []
        cols = to_columns(accepted)
        per_message = np.fromiter((len(m.metrics) for m in accepted), np.int64, len(accepted))
        device_id = np.repeat(np.fromiter((r.device_id for r in records), np.int32, len(records)), per_message)
        ids = self.registry.metric_ids
        metric_id = np.fromiter(map(ids.get, cols.metric, repeat(-1)), np.int32, len(cols))
        known = metric_id >= 0
        unknown: list[tuple[int, set[str]]] = []
        if not known.all():
            owner = np.repeat(np.arange(len(accepted)), per_message)
            for k in np.unique(owner[~known]):
                names = {str(n) for n in cols.metric[(owner == k) & ~known]}
                unknown.append((int(k), names))
        batch = ReadingBatch(
            cols.ts_us[known], device_id[known], metric_id[known].astype(np.int16), cols.value[known], cols.seq[known]
        )
        return batch, unknown

    def events(
        self, events: Sequence[Event], statuses: Sequence[Status], sender: Sender, received_at_us: int, *, raw: bytes
    ) -> Admitted:
        """Admit discrete events and online/offline statuses of single-device MQTT topics."""
        received = datetime.fromtimestamp(received_at_us / 1e6, UTC)
        out: list[DeviceEvent] = []
        letters: list[DeadLetter] = []
        errors: list[ItemError] = []
        # PostgreSQL text cannot hold NUL; event names and states are patterned, only a note can carry one.
        for device, make, text in [(e.device, _event(e), e.note) for e in events] + [
            (s.device, _status(s, received_at_us), None) for s in statuses
        ]:
            if sender.gateway is not None and device == sender.gateway:
                continue  # a gateway's own online/offline: nothing to store per device
            problem = self._device_problem(device, sender)
            path = "device"
            if problem is None and text is not None and "\x00" in text:
                path = "note"
                at = text.index("\x00")
                problem = (
                    str(RejectCode.BAD_VALUE),
                    f"expected text without NUL (\\u0000), which the database cannot store; one is at character {at}",
                )
            if problem is not None:
                code, reason = problem
                errors.append(ItemError(None, path, reason, code))
                letters.append(DeadLetter(raw, sender.source, received, reason, path, code))
                continue
            out.append(make(self.registry.devices[device].device_id))
        empty = MessageKeys(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64))

        def origin(kind: Literal["message", "event"], i: int) -> Origin | None:
            return Origin(raw, sender.source, received) if kind == "event" else None

        batch = IngestBatch(received_at_us, ReadingBatch.empty(), empty, out, letters)
        return Admitted(batch, errors, len(out), origin)


def _event(e: Event) -> Callable[[int], DeviceEvent]:
    return lambda device_id: DeviceEvent(device_id, e.ts_us, "event", e.event, e.value, e.state, e.note)


def _status(s: Status, received_at_us: int) -> Callable[[int], DeviceEvent]:
    ts = s.ts_us if s.ts_us is not None else received_at_us
    return lambda device_id: DeviceEvent(device_id, ts, "status", s.status)
