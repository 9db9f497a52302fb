"""mqtts://: the collector verifies the broker's certificate against a given CA, and refuses an unknown one."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from sentinel.collect.mqtt import CollectorConfig, MqttCollector, MqttMessage
from sentinel.testing.broker import BrokerUnavailable, PrivateMosquitto, publish


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
        "-subj", "/CN=sentinel-test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "1", "-extfile", "san.ext")  # fmt: skip
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


def test_collector_over_tls(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    try:
        broker = PrivateMosquitto(tls_cert_and_key=(cert, key))
        broker.start()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    received: list[MqttMessage] = []

    async def sink(batch: list[MqttMessage]) -> None:
        received.extend(batch)

    async def scenario() -> tuple[MqttCollector, MqttCollector]:
        url = f"mqtts://127.0.0.1:{broker.tls_port}"
        trusted = MqttCollector(
            CollectorConfig.from_url(url, ca_file=ca, client_id="tls-ok", batch_max_wait_s=0.02), sink
        )
        untrusted = MqttCollector(
            CollectorConfig.from_url(url, client_id="tls-unknown-ca", backoff_initial_s=0.01, backoff_max_s=0.05), sink
        )
        tasks = [asyncio.create_task(trusted.run()), asyncio.create_task(untrusted.run())]
        await asyncio.wait_for(trusted.connected.wait(), 20)
        await publish(broker.host, broker.port, [("sentinel/v1/s/d-1/telemetry", b"over tls")])
        for _ in range(2000):
            if received and untrusted.stats.connect_failures >= 1:
                break
            await asyncio.sleep(0.01)
        for collector in (trusted, untrusted):
            await collector.stop()
        await asyncio.gather(*tasks)
        return trusted, untrusted

    try:
        trusted, untrusted = asyncio.run(scenario())
    finally:
        broker.close()
    assert [m.payload for m in received] == [b"over tls"]
    assert trusted.stats.acknowledged == 1
    assert untrusted.stats.connects == 0
    assert untrusted.last_error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error
