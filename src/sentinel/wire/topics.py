"""MQTT topics of the wire contract.

::

    sentinel/v1/{site}/{device}/telemetry | event | status
    sentinel/v1/{site}/_gateway/{gateway}/telemetry | status

Site, device and gateway ids follow :data:`~sentinel.wire.contract.ID_PATTERN`, which never starts with ``_``,
so ``_gateway`` cannot be mistaken for a device.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from sentinel.errors import WireError
from sentinel.wire.contract import ID_PATTERN, RejectCode, WireProblem

Kind = Literal["telemetry", "event", "status"]
KINDS: tuple[Kind, ...] = ("telemetry", "event", "status")
GATEWAY_KINDS: tuple[Kind, ...] = ("telemetry", "status")
ROOT = "sentinel/v1"
GATEWAY_WORD = "_gateway"
#: What a collector subscribes to: every topic of the contract (others under the root are refused by parse).
SUBSCRIPTION = f"{ROOT}/#"

_ID = re.compile(ID_PATTERN)
_SHAPES = (
    f"{ROOT}/{{site}}/{{device}}/{{{'|'.join(KINDS)}}} or "
    f"{ROOT}/{{site}}/{GATEWAY_WORD}/{{gateway}}/{{{'|'.join(GATEWAY_KINDS)}}}"
)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What a topic says: the site, the sender (a device or a gateway) and the kind of message."""

    site: str
    kind: Kind
    device: str | None = None
    gateway: str | None = None

    @property
    def sender(self) -> str:
        """The device id, or the gateway id on a gateway topic."""
        return self.device if self.device is not None else str(self.gateway)

    @property
    def is_gateway(self) -> bool:
        return self.gateway is not None


def _bad(topic: str, why: str) -> WireError:
    return WireError(WireProblem("topic", f"{why}; expected {_SHAPES}, got {topic!r}", RejectCode.BAD_TOPIC))


def _check_id(topic: str, what: str, value: str) -> None:
    if not _ID.search(value):
        raise _bad(topic, f"{what} {value!r} is not an id (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -)")


@functools.lru_cache(maxsize=65_536)
def parse_topic(topic: str) -> TopicInfo:
    """Split a topic of the contract; raise WireError (path ``topic``, code bad_topic) for any other topic.

    Cached: a fleet publishes on a fixed set of topics, and parsing was a third of the per-message decode cost
    (bench/ingest.py). Errors are not cached; TopicInfo is frozen, so sharing it is safe."""
    levels = topic.split("/")
    if len(levels) < 5 or "/".join(levels[:2]) != ROOT:
        raise _bad(topic, f"not under {ROOT}/ or too few levels")
    kind = levels[-1]
    if len(levels) == 6 and levels[3] == GATEWAY_WORD:
        site, gateway = levels[2], levels[4]
        if kind not in GATEWAY_KINDS:
            raise _bad(topic, f"a gateway publishes {' and '.join(GATEWAY_KINDS)} only, not {kind!r}")
        _check_id(topic, "site", site)
        _check_id(topic, "gateway", gateway)
        return TopicInfo(site=site, kind=kind, gateway=gateway)
    if len(levels) != 5:
        raise _bad(topic, f"{len(levels)} levels")
    site, device = levels[2], levels[3]
    if kind not in KINDS:
        raise _bad(topic, f"unknown kind {kind!r}")
    _check_id(topic, "site", site)
    _check_id(topic, "device", device)
    return TopicInfo(site=site, kind=kind, device=device)


def device_topic(site: str, device: str, kind: Kind) -> str:
    """The topic a device publishes ``kind`` on."""
    return f"{ROOT}/{site}/{device}/{kind}"


def gateway_topic(site: str, gateway: str, kind: Kind = "telemetry") -> str:
    """The topic a gateway publishes its batches (or its status) on."""
    return f"{ROOT}/{site}/{GATEWAY_WORD}/{gateway}/{kind}"


def check_sender(info: TopicInfo, device: str, where: str = "device") -> None:
    """Refuse a message whose device differs from the one its topic names (gateway batches name many)."""
    expected = info.sender if (info.device is not None or info.kind == "status") else None
    if expected is not None and device != expected:
        raise WireError(
            WireProblem(
                where, f"expected {expected!r} as the topic names it, got {device!r}", RejectCode.DEVICE_MISMATCH
            )
        )
