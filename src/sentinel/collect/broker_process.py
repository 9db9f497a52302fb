"""A private MQTT broker for the demo, tests and benchmarks (and :func:`publish`, the simulated devices' sender).

Production code (``sentinel demo``) starts it, so it lives here; :mod:`sentinel.testing.broker` re-exports it for
the tests.

:class:`PrivateMosquitto` runs the real ``mosquitto`` binary on a free loopback port with the configuration that
``sentinel broker config`` generates (persistence on, raised queue and in-flight limits) in its own temporary
directory, and removes every trace when stopped. It can be stopped and started again on the same port with the
same persistence file, which is how tests prove that persistent sessions survive a broker restart.

Usage::

    with PrivateMosquitto() as broker:
        client.connect(broker.host, broker.port)      # or broker.url == "mqtt://127.0.0.1:<port>"

    # pytest (conftest.py):
    @pytest.fixture
    def mosquitto() -> Iterator[PrivateMosquitto]:
        try:
            with PrivateMosquitto() as broker:   # starts; on leaving, stops and deletes its directory
                yield broker
        except BrokerUnavailable as exc:         # no mosquitto here: skip, saying why
            pytest.skip(str(exc))

    broker.stop(); broker.start()   # clean restart, same port and persistence file (sessions survive)
    broker.kill(); broker.start()   # crash restart: loses what Mosquitto had not autosaved

Without the binary (a fresh machine), :class:`BrokerUnavailable` says so and how to install it; tests turn that
into a skip. There is no in-process Python fallback, because the one candidate failed when measured here with
gmqtt (amqtt 0.12.1 from PyPI, in-process): it speaks MQTT 3.1.1 only, so it refuses the collector's MQTT 5
CONNECT; with gmqtt at 3.1.1 and clean_session off it delivered 0 of 200 QoS 1 messages published while the
subscriber was away (the persistent-session promise the tests check); and it moved about 1,600-2,000 QoS 1
msg/s. A test passing on it would prove less than the test claims.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.storage import PersistentStorage

from sentinel.collect.broker import QueueBudget, TlsListener, mosquitto_config
from sentinel.errors import BrokerError

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


class BrokerUnavailable(BrokerError):
    """No broker can be started here; the message says why (tests turn it into a skip reason)."""


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((c for c in MOSQUITTO_CANDIDATES if os.access(c, os.X_OK)), None)


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM the broker if the test process dies without cleaning up."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PrivateMosquitto:
    """A mosquitto process of our own. Restartable on the same port and persistence file until :meth:`close`."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        batch_max_messages: int = 5000,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        binary: str | None = None,
        start_timeout_s: float = 10.0,
        extra_config: str = "",
        tls_cert_and_key: tuple[Path, Path] | None = None,
    ) -> None:
        if binary is not None and not os.access(binary, os.X_OK):
            raise BrokerUnavailable(f"{binary}: no such executable (asked for as the mosquitto binary)")
        self._binary = binary or find_mosquitto()
        if self._binary is None:
            raise BrokerUnavailable(
                "mosquitto is not installed (looked on PATH and in /usr/sbin, /usr/local/sbin); install it "
                "(apt install mosquitto / brew install mosquitto) to run broker tests"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="sentinel-mosquitto-"))
        self.port = free_port(self.host)
        # A second listener with TLS when given a server certificate and key (PEM); tls_port is then its port.
        self.tls_port = free_port(self.host) if tls_cert_and_key is not None else None
        tls = TlsListener(self.tls_port, *tls_cert_and_key) if self.tls_port and tls_cert_and_key else None
        self._start_timeout_s = start_timeout_s
        self._log = self._dir / "mosquitto.log"
        self.config_path = self._dir / "mosquitto.conf"
        # As root, mosquitto would switch to user "mosquitto", which cannot write our temp dir: stay who we are.
        me = pwd.getpwuid(os.geteuid()).pw_name
        self.config_path.write_text(
            mosquitto_config(
                port=self.port,
                bind_address=self.host,
                persistence_dir=self._dir / "data",
                batch_max_messages=batch_max_messages,
                queue=QueueBudget(rate_msgs_per_s=10_000, outage_s=60, memory_bytes=512 << 20),
                password_file=password_file,
                acl_file=acl_file,
                log_dest=f"file {self._log}",
                autosave_interval_s=5,
                run_as_user=me,
                tls=tls,
                allow_anonymous=password_file is None,
            )
            + extra_config,  # e.g. "max_qos 0\n": options after the listener line apply to it
            encoding="utf-8",
        )
        (self._dir / "data").mkdir()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        try:
            return self._log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> PrivateMosquitto:
        """Start the broker and return once it accepts TCP connections."""
        if self.running:
            return self
        assert self._binary is not None
        self._process = subprocess.Popen(
            [self._binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                self._process = None
                raise BrokerUnavailable(
                    f"mosquitto exited at start (config {self.config_path}): {stderr.strip()} {self.log_text()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerUnavailable(
            f"mosquitto did not accept connections on port {self.port} within "
            f"{self._start_timeout_s:g} s: {self.log_text()}"
        )

    def stop(self) -> None:
        """Clean shutdown (SIGTERM): Mosquitto writes its persistence file, so sessions survive a start()."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Crash the broker (SIGKILL): whatever it had not autosaved is lost, as in a power cut."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the broker and delete its directory (config, persistence file, log)."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrivateMosquitto:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _AckTracker(PersistentStorage):  # type: ignore[misc]
    """gmqtt keeps each unacknowledged outbound QoS 1 packet here; counting removals counts PUBACKs."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.slots = asyncio.Semaphore(window)
        self.acknowledged = 0
        self._in_flight: set[int] = set()

    def push_message(self, mid: int, raw_package: bytes) -> None:
        self._in_flight.add(mid)
        super().push_message(mid, raw_package)

    def remove_message_by_mid(self, mid: int) -> None:
        if mid in self._in_flight:
            self._in_flight.discard(mid)
            self.acknowledged += 1
            self.slots.release()
        super().remove_message_by_mid(mid)


async def publish(
    host: str,
    port: int,
    messages: Iterable[tuple[str, bytes]],
    *,
    qos: int = 1,
    window: int = 1000,
    client_id: str | None = None,
    username: str | None = None,
    password: str | None = None,
    properties: dict[str, Any] | None = None,
) -> int:
    """Publish ``(topic, payload)`` pairs in order with at most ``window`` unacknowledged, wait for every PUBACK
    (QoS 1) and disconnect. Returns how many the broker acknowledged (at QoS 0: how many were written).

    A PUBACK only says the broker took the message: Mosquitto acknowledges even a PUBLISH its ACL refuses."""
    tracker = _AckTracker(window)
    client = gmqtt.Client(client_id or f"sentinel-test-pub-{os.getpid()}-{id(tracker)}", persistent_storage=tracker)
    if username is not None:
        client.set_auth_credentials(username, password)
    connack: dict[str, Any] = {}

    def on_connect(_client: Any, _flags: Any, _rc: Any, properties: dict[str, Any]) -> None:
        connack.update(properties)

    client.on_connect = on_connect
    await client.connect(host, port, keepalive=60, version=MQTTv50)
    # The broker's Receive Maximum (Mosquitto: max_inflight_messages, 20 by default) caps gmqtt's packet ids:
    # more unacknowledged publishes than that make gmqtt raise "All ids has already used".
    receive_maximum = connack.get("receive_maximum", [65535])
    limit = int(receive_maximum[0] if isinstance(receive_maximum, list) else receive_maximum)
    if qos > 0 and window > limit - 1:
        tracker.slots = asyncio.Semaphore(max(1, limit - 1))
    written = 0
    try:
        for topic, payload in messages:
            if qos > 0:
                await tracker.slots.acquire()
            client.publish(topic, payload, qos=qos, **(properties or {}))
            written += 1
        if qos > 0:
            await tracker.wait_empty()
    finally:
        await client.disconnect()
    return tracker.acknowledged if qos > 0 else written
