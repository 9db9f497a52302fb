"""Wire contract: message Structs, decoding, validation and dead letters.

The folder reads in flow order: ``contract`` (patterns, limits, reject codes), ``messages`` (Structs and
encoders), ``topics`` (MQTT topic names), ``decode`` (bytes -> messages), ``checks`` (the per-message checks
after msgspec's: ids, names, time, limits), ``explain`` (precise reasons on the slow path), ``dispatch`` (one
MQTT message by its topic), ``columns`` (numpy columns for the batcher) and ``deadletter`` (the record of a
refused input). The published form of the contract is ``schemas/``.
"""

from sentinel.wire.columns import ReadingColumns, to_columns
from sentinel.wire.contract import RejectCode, WireLimits, WireProblem
from sentinel.wire.deadletter import DeadLetter, dead_letters, http_source, mqtt_source
from sentinel.wire.decode import (
    Decoded,
    Rejected,
    decode_array,
    decode_batch,
    decode_event,
    decode_http_body,
    decode_ndjson,
    decode_status,
    decode_telemetry,
)
from sentinel.wire.dispatch import MqttDecoded, decode_mqtt
from sentinel.wire.messages import (
    Event,
    Status,
    Telemetry,
    encode_batch,
    encode_event,
    encode_status,
    encode_telemetry,
    format_ts,
)
from sentinel.wire.topics import TopicInfo, check_sender, device_topic, gateway_topic, parse_topic

__all__ = [
    "DeadLetter",
    "Decoded",
    "Event",
    "MqttDecoded",
    "ReadingColumns",
    "RejectCode",
    "Rejected",
    "Status",
    "Telemetry",
    "TopicInfo",
    "WireLimits",
    "WireProblem",
    "check_sender",
    "dead_letters",
    "decode_array",
    "decode_batch",
    "decode_event",
    "decode_http_body",
    "decode_mqtt",
    "decode_ndjson",
    "decode_status",
    "decode_telemetry",
    "device_topic",
    "encode_batch",
    "encode_event",
    "encode_status",
    "encode_telemetry",
    "format_ts",
    "gateway_topic",
    "http_source",
    "mqtt_source",
    "parse_topic",
    "to_columns",
]
