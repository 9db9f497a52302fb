"""Prometheus metrics of Sentinel itself.

Names follow Prometheus conventions: a ``sentinel_`` prefix, units in the name, ``_total`` for counters. Label
sets are bounded by design: transport, reject reason (a small fixed vocabulary), stage. Never a device or site id:
10,000 devices must not mean 10,000 series.

Counters kept elsewhere as plain numbers (the MQTT collector's :class:`~sentinel.collect.mqtt.CollectorStats`, the
engine's ``stats`` counter) are read at scrape time by custom collectors: :meth:`IngestMetrics.watch_mqtt` and
:meth:`IngestMetrics.watch_engine`. The owner of those objects registers them once; nothing is copied per message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from sentinel.collect.mqtt import CollectorStats

# Every transport's series exists from the start (at 0), so rate() over it works before the first message.
TRANSPORTS = ("mqtt", "http")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.received = Counter(
            "sentinel_ingest_messages_received_total", "Messages received, by transport", ["transport"], registry=r
        )
        for transport in TRANSPORTS:
            self.received.labels(transport)
        self.stored_messages = Counter("sentinel_ingest_messages_stored_total", "Messages durably stored", registry=r)
        self.stored_readings = Counter("sentinel_ingest_readings_stored_total", "Readings durably stored", registry=r)
        self.rejected = Counter(
            "sentinel_ingest_messages_rejected_total",
            "Messages (or batch items) refused and dead-lettered, by reason",
            ["reason"],
            registry=r,
        )
        self.store_refused_batches = Counter(
            "sentinel_ingest_store_refused_batches_total",
            "Batches PostgreSQL refused for a reason of their data: stored without the refused messages, which were"
            " dead-lettered (reason store_refused)",
            registry=r,
        )
        self.duplicates = Counter(
            "sentinel_ingest_duplicates_total", "Messages dropped as duplicates by (device, seq)", registry=r
        )
        self.late = Counter(
            "sentinel_ingest_late_readings_total",
            "Readings later than the lateness bound: stored, but they do not move rule state",
            registry=r,
        )
        self.queue_depth = Gauge("sentinel_ingest_queue_batches", "Batches waiting for the database writer", registry=r)
        self.spooled = Counter(
            "sentinel_ingest_spooled_batches_total", "Batches written to the local spool (database away)", registry=r
        )
        self.spool_pending = Gauge(
            "sentinel_ingest_spool_pending", "1 while the local spool holds batches not yet replayed", registry=r
        )
        self.backpressure = Counter(
            "sentinel_ingest_backpressure_total", "Requests refused because the ingest queue was full", registry=r
        )
        self.batch_latency = Histogram(
            "sentinel_ingest_batch_latency_seconds",
            "From receipt of a batch's first message to it being durable",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.db_write = Histogram(
            "sentinel_db_write_seconds", "Duration of one ingest transaction", buckets=_LATENCY_BUCKETS, registry=r
        )
        # Input limits (issue 13)
        self.internal_errors = Counter(
            "sentinel_ingest_internal_errors_total",
            "Messages whose processing raised unexpectedly: set aside as dead letters (reason internal)",
            registry=r,
        )
        self.topic_invalid = Counter(
            "sentinel_ingest_topic_invalid_total",
            "MQTT messages on a topic outside the contract, by what is wrong with the topic",
            ["reason"],
            registry=r,
        )
        self.dead_letters_suppressed = Counter(
            "sentinel_ingest_dead_letters_suppressed_total",
            "Dead letters not stored one by one because their sender exceeded its rate (summarised instead)",
            ["reason"],
            registry=r,
        )
        self.seq_conflicts = Counter(
            "sentinel_ingest_seq_conflicts_total",
            "Messages whose (device, seq) was seen with another device time: stored (a counter reset), counted",
            registry=r,
        )

    def watch_mqtt(
        self, stats: Callable[[], CollectorStats | None], connected: Callable[[], bool] | None = None
    ) -> None:
        """Export the MQTT collector's counters (``stats()`` is read at each scrape; None while there is none)."""
        self.registry.register(MqttStatsCollector(stats, connected))

    def watch_engine(self, stats: Callable[[], Mapping[str, int] | None]) -> None:
        """Export the rule engine's counters (``Engine.stats``), read at each scrape."""
        self.registry.register(EngineStatsCollector(stats))


# CollectorStats field -> (metric name without _total, help). A fixed table, so a new field is not exported by
# accident under a name nobody chose.
MQTT_COUNTERS: dict[str, tuple[str, str]] = {
    "received": ("sentinel_mqtt_messages_received", "PUBLISH packets read from the broker"),
    "acknowledged": ("sentinel_mqtt_messages_acknowledged", "QoS 1 messages acknowledged after the sink took them"),
    "batches": ("sentinel_mqtt_batches", "Batches handed to the ingest sink"),
    "connects": ("sentinel_mqtt_connects", "Successful connections (first and reconnects)"),
    "connect_failures": ("sentinel_mqtt_connect_failures", "Connection attempts refused, unreachable or timed out"),
    "sessions_lost": ("sentinel_mqtt_sessions_lost", "Reconnects where the broker had no session for us"),
    "sink_failures": ("sentinel_mqtt_sink_failures", "Batches the ingest sink refused (left for redelivery)"),
    "discarded_unacked": (
        "sentinel_mqtt_messages_discarded_unacked",
        "Messages read but left unacknowledged for the broker to redeliver",
    ),
}

# Engine.stats keys that count readings the engine did not evaluate, exported as the bounded label ``reason``.
ENGINE_SKIP_REASONS = ("invalid", "unmapped", "too_late")
# Engine stats key -> (metric name, help): how late readings were put back in order (engine/rewind.py).
ENGINE_ORDER_COUNTERS = {
    "out_of_order": (
        "sentinel_engine_readings_out_of_order",
        "Late readings the rewind log no longer covered: not put back in order, evaluated at their series' latest time",
    ),
    "late": (
        "sentinel_engine_readings_late",
        "Readings older than what their device had evaluated, put back in device-time order by a rewind",
    ),
    "rewinds": ("sentinel_engine_rewinds", "Batches that rewound devices for late readings"),
    "replayed": ("sentinel_engine_readings_replayed", "Logged readings evaluated again by rewinds"),
}
# Old metric name -> (Engine.stats key, help), exported beside the new name for one release (0.2 drops them).
DEPRECATED_ENGINE_COUNTERS = {
    "sentinel_engine_readings_reordered": (
        "out_of_order",
        "Deprecated: use sentinel_engine_readings_out_of_order_total (the same count; these were *not* reordered)",
    ),
}


class MqttStatsCollector(Collector):
    def __init__(self, stats: Callable[[], CollectorStats | None], connected: Callable[[], bool] | None) -> None:
        self._stats = stats
        self._connected = connected

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if stats is None:
            return
        for attr, (name, help_text) in MQTT_COUNTERS.items():
            yield CounterMetricFamily(name, help_text, value=float(getattr(stats, attr)))
        if self._connected is not None:
            yield GaugeMetricFamily(
                "sentinel_mqtt_connected",
                "1 while subscribed on a live broker connection",
                value=float(self._connected()),
            )


class EngineStatsCollector(Collector):
    def __init__(self, stats: Callable[[], Mapping[str, int] | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if stats is None:
            return
        yield CounterMetricFamily(
            "sentinel_engine_readings", "Readings the rule engine was given", value=float(stats.get("readings", 0))
        )
        skipped = CounterMetricFamily(
            "sentinel_engine_readings_skipped",
            "Readings not evaluated: not finite, no series for them, or later than the lateness bound",
            labels=["reason"],
        )
        for reason in ENGINE_SKIP_REASONS:
            skipped.add_metric([reason], float(stats.get(reason, 0)))
        yield skipped
        for key, (name, help_text) in ENGINE_ORDER_COUNTERS.items():
            yield CounterMetricFamily(name, help_text, value=float(stats.get(key, 0)))
        for old, (key, help_text) in DEPRECATED_ENGINE_COUNTERS.items():
            yield CounterMetricFamily(old, help_text, value=float(stats.get(key, 0)))
