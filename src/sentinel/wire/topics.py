"""MQTT topics of the wire contract.

::

    sentinel/v1/{site}/{device}/telemetry | event | status
    sentinel/v1/{site}/_gateway/{gateway}/telemetry | status

Site, device and gateway ids follow :data:`~sentinel.wire.contract.ID_PATTERN`, which never starts with ``_``,
so ``_gateway`` cannot be mistaken for a device.

The collector subscribes to everything under the root (:data:`SUBSCRIPTION`), so a topic outside the contract is
not silently never received: :func:`parse_topic` refuses it with :class:`TopicInvalid` (dead letter code
``topic_invalid``) whose ``topic_reason`` is one word of :data:`TOPIC_REASONS`, the label of its counter.

The last level is the *topic type*: what a message on it is (readings, a discrete event, a status).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from sentinel.errors import WireError
from sentinel.wire.contract import ID_PATTERN, RejectCode, WireProblem

TopicType = Literal["telemetry", "event", "status"]
TOPIC_TYPES: tuple[TopicType, ...] = ("telemetry", "event", "status")
GATEWAY_TOPIC_TYPES: tuple[TopicType, ...] = ("telemetry", "status")
ROOT = "sentinel/v1"
GATEWAY_WORD = "_gateway"
#: What a collector subscribes to: every topic of the contract (others under the root are refused by parse).
SUBSCRIPTION = f"{ROOT}/#"

_ID = re.compile(ID_PATTERN)
_SHAPES = (
    f"{ROOT}/{{site}}/{{device}}/{{{'|'.join(TOPIC_TYPES)}}} or "
    f"{ROOT}/{{site}}/{GATEWAY_WORD}/{{gateway}}/{{{'|'.join(GATEWAY_TOPIC_TYPES)}}}"
)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What a topic says: the site, the sender (a device or a gateway) and the topic type."""

    site: str
    topic_type: TopicType
    device: str | None = None
    gateway: str | None = None

    @property
    def sender(self) -> str:
        """The device id, or the gateway id on a gateway topic."""
        return self.device if self.device is not None else str(self.gateway)

    @property
    def is_gateway(self) -> bool:
        return self.gateway is not None


#: Why a topic is outside the contract: the label of ``sentinel_ingest_topic_invalid_total``. ``unknown_kind`` (a
#: topic type not in the contract) and ``gateway_kind`` (a topic type a gateway may not publish) keep 0.1's word:
#: they are label values of a counter, and a new value would split its series.
TOPIC_REASONS = ("outside_root", "too_few_levels", "extra_level", "unknown_kind", "gateway_kind", "bad_id")


class TopicInvalid(WireError):
    """A topic outside the contract; ``topic_reason`` (why) is one of :data:`TOPIC_REASONS`."""

    def __init__(self, problem: WireProblem, reason: str) -> None:
        super().__init__(problem)
        self.topic_reason = reason


def _bad(topic: str, why: str, reason: str) -> TopicInvalid:
    return TopicInvalid(WireProblem("topic", f"{why}; expected {_SHAPES}, got {topic!r}", RejectCode.BAD_TOPIC), reason)


def _check_id(topic: str, what: str, value: str) -> None:
    if not _ID.search(value):
        raise _bad(
            topic, f"{what} {value!r} is not an id (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -)", "bad_id"
        )


@functools.lru_cache(maxsize=65_536)
def parse_topic(topic: str) -> TopicInfo:
    """Split a topic of the contract; raise TopicInvalid (path ``topic``, code topic_invalid) for any other topic.

    Cached: a fleet publishes on a fixed set of topics, and parsing was a third of the per-message decode cost
    (bench/ingest.py). Errors are not cached; TopicInfo is frozen, so sharing it is safe."""
    levels = topic.split("/")
    if "/".join(levels[:2]) != ROOT:
        raise _bad(topic, f"not under {ROOT}/", "outside_root")
    gateway = len(levels) > 3 and levels[3] == GATEWAY_WORD
    expected = 6 if gateway else 5
    if len(levels) < expected:
        raise _bad(topic, f"too few levels: {len(levels)} levels, expected {expected}", "too_few_levels")
    if len(levels) > expected:
        raise _bad(topic, f"extra level: {len(levels)} levels, expected {expected}", "extra_level")
    topic_type = levels[-1]
    if gateway:
        site, gateway_id = levels[2], levels[4]
        if topic_type not in GATEWAY_TOPIC_TYPES:
            why = f"a gateway publishes {' and '.join(GATEWAY_TOPIC_TYPES)} only, not {topic_type!r}"
            raise _bad(topic, why, "gateway_kind" if topic_type in TOPIC_TYPES else "unknown_kind")
        _check_id(topic, "site", site)
        _check_id(topic, "gateway", gateway_id)
        return TopicInfo(site=site, topic_type=topic_type, gateway=gateway_id)
    site, device = levels[2], levels[3]
    if topic_type not in TOPIC_TYPES:
        raise _bad(topic, f"unknown topic type {topic_type!r}", "unknown_kind")
    _check_id(topic, "site", site)
    _check_id(topic, "device", device)
    return TopicInfo(site=site, topic_type=topic_type, device=device)


def device_topic(site: str, device: str, topic_type: TopicType) -> str:
    """The topic a device publishes messages of ``topic_type`` on."""
    return f"{ROOT}/{site}/{device}/{topic_type}"


def gateway_topic(site: str, gateway: str, topic_type: TopicType = "telemetry") -> str:
    """The topic a gateway publishes its batches (or its status) on."""
    return f"{ROOT}/{site}/{GATEWAY_WORD}/{gateway}/{topic_type}"


def check_sender(info: TopicInfo, device: str, where: str = "device") -> None:
    """Refuse a message whose device differs from the one its topic names (gateway batches name many)."""
    expected = info.sender if (info.device is not None or info.topic_type == "status") else None
    if expected is not None and device != expected:
        raise WireError(
            WireProblem(
                where, f"expected {expected!r} as the topic names it, got {device!r}", RejectCode.DEVICE_MISMATCH
            )
        )
