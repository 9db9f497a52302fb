"""One gmqtt connection of the MQTT collector, with the hooks that let it acknowledge late.

With ``optimistic_acknowledgement=False`` and a coroutine handler gmqtt does not wait for the handler: it starts
one task per message and sends the PUBACK when that task ends (``handler.run_coroutine_or_function`` with a done
callback). That costs a task per message and, worse, sends a late PUBACK on whatever connection is current, which
after a reconnect may acknowledge a different message. With a plain function handler gmqtt sends no PUBACK at all
but does not give the handler the packet id. So :class:`GmqttSession` replaces the handler's per-message QoS 1
hook (``_handle_qos_1_publish_packet(mid, payload, topic, properties)``, read loop, synchronous) to keep the packet
id, and writes the PUBACKs of a batch as one buffer through ``MQTTConnection.send_package``. It also turns off
gmqtt's own reconnect (fixed delay, no jitter) by overriding ``Client.reconnect``. Checked at start against the
installed gmqtt (0.8).

For speed, the common PUBLISH (QoS 1, no properties, no topic alias) is parsed here directly; every other packet
goes through gmqtt's own parser. Everything that touches gmqtt's private names is in this module.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.mqtt.handler import MQTTConnectError

from sentinel.errors import BrokerError

if TYPE_CHECKING:
    from sentinel.collect.mqtt import CollectorConfig

log = logging.getLogger(__name__)

_PUBACK = struct.Struct("!BBH")  # MQTT 5 PUBACK, reason Success with no properties may omit the reason byte


class _NoAutoReconnectClient(gmqtt.Client):  # type: ignore[misc]
    """gmqtt's own reconnect uses a fixed delay; the collector runs its own loop instead."""

    async def reconnect(self, delay: bool = False) -> None:
        if self._connection_state.protocol_version < MQTTv50:
            # gmqtt answers a broker that refuses MQTT 5 by retrying with 3.1.1 through reconnect(). The
            # collector needs MQTT 5 (session expiry, Receive Maximum as backpressure): fail the connect instead.
            self._package_handler._error = MQTTConnectError(1)
            self._connack_received.set()


class GmqttSession:
    """One gmqtt connection with the collector's receive hook installed (see the module docstring)."""

    def __init__(
        self,
        config: CollectorConfig,
        on_message: Callable[[object, int | None, str, bytes], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.client = _NoAutoReconnectClient(
            config.client_id,
            clean_session=False,
            optimistic_acknowledgement=False,
            session_expiry_interval=config.session_expiry_s,
            receive_maximum=config.receive_maximum,
            logger=logging.getLogger("sentinel.collect.gmqtt"),
            **({"maximum_packet_size": config.max_packet_bytes} if config.max_packet_bytes is not None else {}),
        )
        handler = self.client._package_handler
        if not hasattr(handler, "_handle_qos_1_publish_packet") or not hasattr(handler, "current_connection"):
            raise BrokerError(
                f"gmqtt {gmqtt.__version__}: its QoS 1 receive hook is missing; the collector supports gmqtt 0.8"
            )
        self.session_present = False
        self.subscribed = asyncio.Event()

        def qos1(mid: int, payload: bytes, topic: str | bytes, properties: dict[str, Any]) -> None:
            on_message(handler.current_connection, mid, _topic_text(topic), payload)

        def qos0(_client: object, topic: str | bytes, payload: bytes, _qos: int, _props: object) -> None:
            on_message(handler.current_connection, None, _topic_text(topic), payload)

        general_publish = handler._handle_publish_packet

        def publish(cmd: int, raw: bytes) -> None:
            # Fast path for the common packet: QoS 1, topic not aliased, no properties (properties length 0).
            # Anything else takes gmqtt's general parser, which ends in qos1/qos0 above.
            if cmd & 0x06 == 0x02 and len(raw) >= 5:
                end = 2 + ((raw[0] << 8) | raw[1])
                if end > 2 and len(raw) > end + 2 and raw[end + 2] == 0:
                    topic = raw[2:end].decode("utf-8", "replace")
                    on_message(handler.current_connection, (raw[end] << 8) | raw[end + 1], topic, raw[end + 3 :])
                    return
            general_publish(cmd, raw)

        def connected(_client: object, session_present: int, _rc: int, _props: object) -> None:
            self.session_present = bool(session_present)

        handler._handle_qos_1_publish_packet = qos1
        handler._handle_publish_packet = publish  # found by gmqtt's per-type handler lookup (__get_handler__)
        self.client.on_message = qos0
        self.client.on_connect = connected
        self.refused: list[str] = []

        def subscribed(_client: object, _mid: int, granted: tuple[int, ...], _props: object) -> None:
            # Below QoS 1 would silently drop the at-least-once promise; >= 0x80 is a refusal (e.g. the ACL).
            self.refused = [f"{t} ({code:#x})" for t, code in zip(config.topics, granted, strict=False) if code != 1]
            self.subscribed.set()

        self.client.on_subscribe = subscribed
        self.client.on_disconnect = lambda *_args: on_lost()
        if config.username is not None:
            self.client.set_auth_credentials(config.username, config.password)

    @property
    def connection(self) -> object:
        return self.client._package_handler.current_connection

    async def open(self, config: CollectorConfig) -> None:
        tls = ssl.create_default_context(cafile=config.ca_file) if config.tls else False
        await self.client.connect(config.host, config.port, ssl=tls, keepalive=config.keepalive_s, version=MQTTv50)
        self.client.subscribe([gmqtt.Subscription(t, qos=1, retain_handling_options=1) for t in config.topics])
        await self.subscribed.wait()
        if self.refused:
            raise BrokerError(
                f"the broker did not grant QoS 1 on {', '.join(self.refused)} to user {config.username!r}: "
                "check its ACL (sentinel broker acl) and maximum QoS"
            )

    def send_pubacks(self, connection: object, packet_ids: list[int]) -> bool:
        """PUBACK every id, in order, in one write. False if that connection is no longer the live one."""
        if connection is not self.connection or connection.is_closing():  # type: ignore[attr-defined]
            return False
        connection.send_package(b"".join([_PUBACK.pack(0x40, 2, mid) for mid in packet_ids]))  # type: ignore[attr-defined]
        return True

    async def close(self, *, graceful: bool) -> None:
        connection = self.connection
        if connection is None:
            return
        if graceful:
            await self.client.disconnect()  # reason 0 keeps the session for session_expiry_s
        else:
            await connection.close()  # type: ignore[attr-defined]  # like a crash: no DISCONNECT packet


def _topic_text(topic: str | bytes) -> str:
    return topic if isinstance(topic, str) else topic.decode("utf-8", "replace")


async def close_quietly(session: GmqttSession) -> None:
    try:
        await session.close(graceful=False)
    except (OSError, RuntimeError) as exc:
        log.debug("closing MQTT connection: %s", exc)
