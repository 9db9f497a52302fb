"""MQTT collector: raw messages in, handed over in batches, acknowledged only once a batch is durable.

Bytes in, nothing else: the collector knows topics and payload bytes, not JSON, devices or the database.

Delivery contract (at least once, never acknowledged early)
-----------------------------------------------------------
* Subscribes at QoS 1 with a fixed client id and a persistent session (MQTT 5, clean start off, session expiry
  from the config), so the broker queues what arrives while Sentinel is away and redelivers whatever it sent but
  never saw acknowledged.
* Messages are gathered into batches (``batch_max_messages`` or ``batch_max_wait_s``, whichever comes first) and
  passed to ``sink(batch)``; the sink returns only once the batch is durable. Only then are the PUBACKs of that
  batch sent, in the order the messages arrived (MQTT 5 §4.6 requires that order). Batches go to the sink one at a
  time, in arrival order; batches sealed while the sink was busy go together, as one (up to
  ``batch_max_messages``), so a backlog is one write rather than one per batch.
* Backpressure is the broker's in-flight window: the collector announces Receive Maximum = :func:`ack_window_for`
  (two batches), and the broker sends nothing more while that many messages are unacknowledged. A slow sink
  therefore slows the broker, and the collector never holds more than that window plus what it already had from a
  dead connection (it waits for those to be handed over before reconnecting).
* Connection lost: batches already read are still handed to the sink (they are good data; if the broker lost the
  session they would exist nowhere else), but their PUBACKs are not sent: a packet id belongs to its connection,
  and on the new one the broker redelivers those messages (duplicates are dropped downstream by device and seq).
* A PUBACK sent is not a PUBACK the broker has read: if the broker stops or the connection drops before it reads
  one, the broker redelivers that message (DUP) on the next connection although the sink already has it, and it
  reaches the sink again. ``stats.acknowledged`` counts PUBACKs sent.
* The sink raises: that batch is NOT acknowledged, the batches queued behind it on the same connection are
  discarded unacknowledged (acknowledging later messages first would break PUBACK order), and the collector
  disconnects and reconnects after a capped, jittered backoff that grows with consecutive sink failures. The broker
  then redelivers every unacknowledged message of the persistent session: redelivery *is* the retry.
* Reconnects use capped exponential backoff with full jitter, forever, until :meth:`MqttCollector.stop`.
* MQTT 5 only: a broker that refuses MQTT 5 is reported as a refused connection (code 1) and retried.

The gmqtt-specific part (deferred PUBACKs, the receive hook, no auto-reconnect) is in
:mod:`sentinel.collect.mqtt_session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from gmqtt.mqtt.handler import MQTTConnectError

from sentinel.collect.mqtt_session import GmqttSession, close_quietly
from sentinel.errors import BrokerError, ConfigError
from sentinel.settings import Settings

log = logging.getLogger(__name__)

TOPIC_ROOT = "sentinel/v1"
#: Everything under the root: a topic outside the contract (an extra level, an unknown topic type, a gateway event) is
#: received and dead-lettered with its reason by the sink, rather than never delivered and lost unseen.
SUBSCRIPTIONS = (f"{TOPIC_ROOT}/#",)
MQTT_MAX_RECEIVE = 65535


def ack_window_for(batch_max_messages: int) -> int:
    """Unacknowledged messages the broker may have out to the collector: one batch being committed plus one
    filling, so reading never waits for a commit. Capped by MQTT's two-byte Receive Maximum."""
    return max(2, min(MQTT_MAX_RECEIVE, 2 * batch_max_messages))


#: The broker passes payloads up to this many times Sentinel's limit: Sentinel dead-letters those (their prefix,
#: size and hash kept), so a moderately oversized message is seen by whoever reads dead letters; the broker refuses
#: anything larger before Sentinel reads a byte of it.
BROKER_PAYLOAD_FACTOR = 4
#: Room for the topic, packet id and properties of a PUBLISH above its payload.
PACKET_OVERHEAD_BYTES = 65_536


def broker_payload_limit(max_payload_bytes: int) -> int:
    """Mosquitto's ``message_size_limit`` for Sentinel's ``max_payload_bytes``."""
    return min(0xFFFFFFFF - PACKET_OVERHEAD_BYTES, BROKER_PAYLOAD_FACTOR * max_payload_bytes)


def max_packet_for(max_payload_bytes: int) -> int:
    """The Maximum Packet Size the collector announces (and the broker's ``max_packet_size``)."""
    return broker_payload_limit(max_payload_bytes) + PACKET_OVERHEAD_BYTES


class MqttMessage(NamedTuple):
    """One message as received: topic, raw payload, and wall-clock receive time (Unix seconds)."""

    topic: str
    payload: bytes
    received_at: float


BatchSink = Callable[[list[MqttMessage]], Awaitable[None]]


@dataclass(frozen=True)
class CollectorConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False  # mqtts://: verify the broker's certificate and host name
    ca_file: Path | None = None  # CA bundle for that check; None: the system's trust store
    client_id: str = "sentinel-ingest"
    session_expiry_s: int = 7 * 24 * 3600
    batch_max_messages: int = 5000
    batch_max_wait_s: float = 0.2
    topics: tuple[str, ...] = SUBSCRIPTIONS
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: MQTT 5 Maximum Packet Size announced at CONNECT: the broker discards larger messages for us instead of
    #: sending them. gmqtt buffers a whole packet (concatenating 64 KiB reads, quadratic in its size) before we
    #: see a byte, so this, and the broker's own limit (`sentinel broker config`), are the protection against a
    #: 100 MB payload. Payloads up to it but over SENTINEL_MAX_PAYLOAD_BYTES still reach the sink and are
    #: dead-lettered as oversized (a prefix kept), so a moderately oversized message is seen, not lost silently.
    max_packet_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.batch_max_messages < 1:
            raise BrokerError(f"batch_max_messages: must be at least 1, got {self.batch_max_messages}")
        if self.batch_max_wait_s <= 0:
            raise BrokerError(f"batch_max_wait_s: must be positive, got {self.batch_max_wait_s}")
        if not 0 <= self.session_expiry_s <= 0xFFFFFFFF:
            raise BrokerError(f"session_expiry_s: must be 0..4294967295, got {self.session_expiry_s}")

    @property
    def receive_maximum(self) -> int:
        return ack_window_for(self.batch_max_messages)

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None, **overrides: Any) -> CollectorConfig:
        """The collector's part of Sentinel's settings. ``url`` (e.g. the embedded broker's) wins over
        ``SENTINEL_MQTT_URL``."""
        broker_url = url or settings.mqtt_url
        if broker_url is None:
            raise ConfigError("SENTINEL_MQTT_URL", "not set, and no broker URL was given")
        values: dict[str, Any] = {
            "client_id": settings.mqtt_client_id,
            "session_expiry_s": settings.mqtt_session_expiry_s,
            "batch_max_messages": settings.batch_max_messages,
            "batch_max_wait_s": settings.batch_max_wait_ms / 1000,
            "max_packet_bytes": max_packet_for(settings.max_payload_bytes),
        }
        return cls.from_url(broker_url, **{**values, **overrides})

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> CollectorConfig:
        """``mqtt://[user[:password]@]host[:port]`` (or ``mqtts://``, TLS, port 8883) plus any field as keyword."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise BrokerError(f"{url!r}: expected an mqtt://host:port or mqtts://host:port URL")
        if not parts.hostname:
            raise BrokerError(f"{url!r}: the URL names no host")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            **overrides,
        )


class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits uniform(0, min(cap, initial * 2**n))."""

    def __init__(self, initial_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self._initial = initial_s
        self._cap = cap_s
        self._attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._initial * 2 ** min(self._attempt, 32))
        self._attempt += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self._attempt = 0


@dataclass
class CollectorStats:
    received: int = 0
    acknowledged: int = 0  # PUBACKs sent (written to the connection; the broker may not have read them)
    batches: int = 0
    connects: int = 0
    connect_failures: int = 0  # refused, unreachable, timed out, or subscriptions not granted
    sessions_lost: int = 0  # CONNACK said no session although we had connected before
    sink_failures: int = 0
    discarded_unacked: int = 0  # read, not handed to the sink, left for the broker to redeliver


@dataclass
class _Batch:
    connection: object  # the gmqtt MQTTConnection the messages came in on; their packet ids belong to it
    messages: list[MqttMessage] = field(default_factory=list)
    packet_ids: list[int] = field(default_factory=list)


class MqttCollector:
    """Runs until :meth:`stop`: connects, subscribes, batches, hands batches to ``sink``, acknowledges them.

    ``await collector.run()`` in a task; ``await collector.stop()`` for a clean end (pending batches are handed
    over and acknowledged, then DISCONNECT, which keeps the session). Cancelling the run task instead behaves like
    a crash: the socket is closed without acknowledging anything still in hand.
    """

    def __init__(self, config: CollectorConfig, sink: BatchSink, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.stats = CollectorStats()
        self.connected = asyncio.Event()  # set while subscribed on a live connection
        self.last_error: str | None = None  # why the last connection attempt failed
        self._sink = sink
        self._session: GmqttSession | None = None
        self._open: _Batch | None = None
        self._open_timer: asyncio.TimerHandle | None = None
        self._sealed: deque[_Batch] = deque()
        self._work = asyncio.Event()
        self._handed_over = asyncio.Event()
        self._handed_over.set()
        self._lost = asyncio.Event()
        self._stopping = asyncio.Event()
        self._failed_connection: object | None = None
        self._reconnect_backoff = Backoff(config.backoff_initial_s, config.backoff_max_s, rng)
        self._sink_backoff = Backoff(config.backoff_initial_s, config.backoff_max_s, rng)

    # --- receive path: runs inside gmqtt's read loop, synchronously, once per message -------------------------

    def _on_message(self, connection: object, packet_id: int | None, topic: str, payload: bytes) -> None:
        batch = self._open
        if batch is None or batch.connection is not connection:
            self._seal()
            batch = self._open = _Batch(connection)
            self._open_timer = asyncio.get_running_loop().call_later(
                self.config.batch_max_wait_s, self._seal_if_open, batch
            )
        batch.messages.append(MqttMessage(topic, payload, time.time()))
        if packet_id is not None:
            batch.packet_ids.append(packet_id)
        self.stats.received += 1
        if len(batch.messages) >= self.config.batch_max_messages:
            self._seal()

    def _seal_if_open(self, batch: _Batch) -> None:
        if self._open is batch:
            self._seal()

    def _seal(self) -> None:
        batch, self._open = self._open, None
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        if batch is None or not batch.messages:
            return
        self._sealed.append(batch)
        self._handed_over.clear()
        self._work.set()

    def _on_lost(self) -> None:
        self._lost.set()

    # --- hand-over path: one batch at a time, in order ------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            if not self._sealed:
                self._handed_over.set()
                self._work.clear()
                await self._work.wait()
                continue
            batch = self._merged_head()
            if batch.connection is self._failed_connection:
                self.stats.discarded_unacked += len(batch.messages)
            else:
                await self._hand_over(batch)
            self._sealed.popleft()

    def _merged_head(self) -> _Batch:
        """The oldest sealed batch, with the batches sealed behind it on the same connection while the sink was busy
        (up to ``batch_max_messages``): a backlog after a slow write goes to the sink as one batch, one transaction,
        instead of one write per batch each waiting for the last (the tail of publish-to-alert latency, issue 13).
        Order and PUBACK order are unchanged: the messages stay in arrival order, acknowledged together."""
        sealed, head = self._sealed, self._sealed[0]
        cap = self.config.batch_max_messages
        while len(sealed) > 1 and sealed[1].connection is head.connection:
            later = sealed[1]
            if len(head.messages) + len(later.messages) > cap:
                break
            del sealed[1]
            head = sealed[0] = _Batch(
                head.connection, head.messages + later.messages, head.packet_ids + later.packet_ids
            )
        return head

    async def _hand_over(self, batch: _Batch) -> None:
        try:
            await self._sink(batch.messages)
        except Exception:
            self.stats.sink_failures += 1
            log.exception(
                "MQTT batch of %d messages not stored; not acknowledging it, the broker will redeliver after reconnect",
                len(batch.messages),
            )
            self._failed_connection = batch.connection
            if self._session is not None and batch.connection is self._session.connection:
                self._lost.set()
            return
        self._sink_backoff.reset()
        self.stats.batches += 1
        session = self._session
        if batch.packet_ids and session is not None and session.send_pubacks(batch.connection, batch.packet_ids):
            self.stats.acknowledged += len(batch.packet_ids)

    # --- connection loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_loop(), name="mqtt-batch-handover")
        try:
            await self._connection_loop()
        finally:
            flusher.cancel()
            self.connected.clear()
            session, self._session = self._session, None
            if session is not None:
                await session.close(graceful=False)  # no-op after a clean stop; like a crash otherwise

    async def _connection_loop(self) -> None:
        config = self.config
        ever_connected = False
        while not self._stopping.is_set():
            self._lost.clear()
            session = GmqttSession(config, self._on_message, self._on_lost)
            # Current before CONNACK: the broker resends the session's unacknowledged messages right after it,
            # before our SUBACK, and those must be acknowledged on this connection once stored.
            self._session = session
            try:
                await asyncio.wait_for(session.open(config), config.connect_timeout_s)
            except (OSError, TimeoutError, MQTTConnectError, BrokerError) as exc:
                self.stats.connect_failures += 1
                self.last_error = str(exc) or type(exc).__name__
                log.warning(
                    "MQTT %s:%d: cannot connect as %r: %s",
                    config.host,
                    config.port,
                    config.client_id,
                    exc or type(exc).__name__,
                )
                self._session = None
                await close_quietly(session)
                await self._pause(self._reconnect_backoff.next_delay())
                continue
            self.stats.connects += 1
            if ever_connected and not session.session_present:
                self.stats.sessions_lost += 1
                log.warning(
                    "MQTT broker had no session for %r: anything queued for it meanwhile is gone",
                    config.client_id,
                )
            ever_connected = True
            self._reconnect_backoff.reset()
            self.connected.set()
            await self._lost.wait()
            self.connected.clear()
            self._seal()  # the open batch's packet ids die with this connection
            sink_failed = self._failed_connection is session.connection
            if self._stopping.is_set():
                return
            await close_quietly(session)
            self._session = None
            # Hand over what the dead connection delivered before taking more: memory stays bounded.
            await _first_of(self._handed_over, self._stopping)
            backoff = self._sink_backoff if sink_failed else self._reconnect_backoff
            await self._pause(backoff.next_delay())

    async def _pause(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_s)

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Hand over and acknowledge what is in hand, then disconnect keeping the session."""
        self._stopping.set()
        self._seal()
        try:
            await asyncio.wait_for(self._handed_over.wait(), timeout_s)
        except TimeoutError:
            log.warning("MQTT stop: sink still busy after %g s; the broker will redeliver the rest", timeout_s)
        session = self._session
        if session is not None:
            await session.close(graceful=True)
        self._lost.set()


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
