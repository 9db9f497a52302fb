"""Prometheus metrics of Sentinel itself.

Names follow Prometheus conventions: a ``sentinel_`` prefix, units in the name, ``_total`` for counters. Label
sets are bounded by design: transport, reject reason (a small fixed vocabulary), stage. Never a device or site id:
10,000 devices must not mean 10,000 series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.received = Counter(
            "sentinel_ingest_messages_received_total", "Messages received, by transport", ["transport"], registry=r
        )
        self.stored_messages = Counter("sentinel_ingest_messages_stored_total", "Messages durably stored", registry=r)
        self.stored_readings = Counter("sentinel_ingest_readings_stored_total", "Readings durably stored", registry=r)
        self.rejected = Counter(
            "sentinel_ingest_messages_rejected_total",
            "Messages (or batch items) refused and dead-lettered, by reason",
            ["reason"],
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
