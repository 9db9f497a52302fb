"""One MQTT message (topic + payload) -> validated messages and rejections. Never raises for bad input.

A collector calls :func:`decode_mqtt` with what the broker delivered and turns ``rejected`` into dead letters
(:func:`sentinel.wire.deadletter.dead_letters`); everything else goes on to the batcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sentinel.errors import WireError
from sentinel.wire.contract import WireLimits, WireProblem
from sentinel.wire.decode import (
    DEFAULT_LIMITS,
    Rejected,
    decode_batch,
    decode_event,
    decode_status,
    decode_telemetry,
)
from sentinel.wire.messages import Event, Status, Telemetry
from sentinel.wire.topics import TopicInfo, TopicInvalid, check_sender, parse_topic


@dataclass(slots=True)
class MqttDecoded:
    """What one MQTT message held. ``topic`` is None when the topic itself is outside the contract."""

    topic: TopicInfo | None
    telemetry: list[Telemetry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    topic_reason: str | None = None  # why the topic is outside the contract (a TOPIC_REASONS word)


def _as_wire(problem: object) -> WireProblem:
    assert isinstance(problem, WireProblem), problem
    return problem


def decode_mqtt(
    topic: str, payload: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS
) -> MqttDecoded:
    """Decode ``payload`` as the topic type of ``topic`` and check the device against the topic."""
    try:
        info = parse_topic(topic)
    except TopicInvalid as exc:
        return MqttDecoded(None, rejected=[Rejected(_as_wire(exc.problem), payload)], topic_reason=exc.topic_reason)
    out = MqttDecoded(info)
    try:
        if info.topic_type == "telemetry" and info.is_gateway:
            batch = decode_batch(payload, now_us=now_us, limits=limits)
            out.telemetry, out.rejected = batch.messages, batch.rejected
        elif info.topic_type == "telemetry":
            msg = decode_telemetry(payload, now_us=now_us, limits=limits)
            check_sender(info, msg.device)
            out.telemetry.append(msg)
        elif info.topic_type == "event":
            event = decode_event(payload, now_us=now_us, limits=limits)
            check_sender(info, event.device)
            out.events.append(event)
        else:
            status = decode_status(payload, now_us=now_us, limits=limits)
            check_sender(info, status.device)
            out.statuses.append(status)
    except WireError as exc:  # DecodeError included: the payload as a whole is refused
        out.rejected.append(Rejected(_as_wire(exc.problem), payload))
    return out
