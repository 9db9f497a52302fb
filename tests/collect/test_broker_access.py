"""Generated password file, ACL and configuration, checked by the real Mosquitto."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import gmqtt
import pytest
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.mqtt.handler import MQTTConnectError
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sentinel.collect.broker import (
    BrokerRegistry,
    mosquitto_config,
    password_entry,
    password_matches,
    write_access_files,
)
from sentinel.collect.commands import broker_app, load_broker_registry, parse_broker_registry
from sentinel.collect.mqtt import CollectorConfig, MqttCollector, MqttMessage
from sentinel.errors import BrokerError
from sentinel.testing.broker import BrokerUnavailable, PrivateMosquitto, find_mosquitto, free_port, publish
from tests.examples import examples

REGISTRY_YAML = """
sentinel: {id: sentinel-ingest, secret: "ingest secret"}
sites: [{id: plant-a}, {id: plant-b}]   # ignored here: for `sentinel registry load`
gateways:
  - {id: gw-a, secret: "gw-a secret", sites: [plant-a]}
devices:
  - {id: ch4-0001, site: plant-b, secret: "device secret"}
  - {id: ch4-0002, site: plant-b}
"""


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    (tmp_path / "registry.yaml").write_text(REGISTRY_YAML, encoding="utf-8")
    result = CliRunner().invoke(broker_app, ["acl", str(tmp_path / "registry.yaml"), "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    try:
        broker = PrivateMosquitto(password_file=tmp_path / "mosquitto.passwd", acl_file=tmp_path / "mosquitto.acl")
        broker.start()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    yield broker
    broker.close()


async def try_login(broker: PrivateMosquitto, username: str, password: str) -> None:
    await try_login_at(broker.host, broker.port, username, password)


async def try_login_at(host: str, port: int, username: str | None = None, password: str | None = None) -> None:
    client = gmqtt.Client(f"login-{username}")
    if username is not None:
        client.set_auth_credentials(username, password)
    await client.connect(host, port, version=MQTTv50)
    await client.disconnect()


def test_mosquitto_accepts_generated_passwords_and_refuses_wrong_ones(secured: PrivateMosquitto) -> None:
    asyncio.run(try_login(secured, "gw-a", "gw-a secret"))
    asyncio.run(try_login(secured, "ch4-0001", "device secret"))
    with pytest.raises(MQTTConnectError):
        asyncio.run(try_login(secured, "gw-a", "gw-a secreT"))
    with pytest.raises(MQTTConnectError):
        asyncio.run(try_login(secured, "ch4-0002", "anything"))  # no secret in the registry: no login


def test_acl_keeps_each_sender_to_its_own_topics(secured: PrivateMosquitto) -> None:
    received: list[MqttMessage] = []

    async def sink(batch: list[MqttMessage]) -> None:
        received.extend(batch)

    async def scenario() -> None:
        config = CollectorConfig(
            host=secured.host, port=secured.port, username="sentinel-ingest", password="ingest secret",
            client_id="acl-test", batch_max_wait_s=0.02,
        )  # fmt: skip
        collector = MqttCollector(config, sink)
        task = asyncio.create_task(collector.run())
        await asyncio.wait_for(collector.connected.wait(), 20)
        gateway = [
            ("sentinel/v1/plant-b/x-1/telemetry", b"gateway foreign site"),
            ("sentinel/v1/plant-a/_gateway/gw-a/telemetry", b"gateway own site"),
        ]
        device = [
            ("sentinel/v1/plant-b/ch4-0002/telemetry", b"device posing as another"),
            ("sentinel/v1/plant-a/ch4-0001/telemetry", b"device wrong site"),
            ("sentinel/v1/plant-b/ch4-0001/telemetry", b"device own topic"),
        ]
        # Mosquitto acknowledges a refused PUBLISH too (the publisher cannot tell); the subscriber never sees it.
        assert await publish(secured.host, secured.port, gateway, username="gw-a", password="gw-a secret") == 2
        assert await publish(secured.host, secured.port, device, username="ch4-0001", password="device secret") == 3
        # The allowed message of each publisher comes after its refused ones: once both are in, nothing else can be.
        for _ in range(2000):
            if {b"gateway own site", b"device own topic"} <= {m.payload for m in received}:
                break
            await asyncio.sleep(0.01)
        await collector.stop()
        await task

    asyncio.run(scenario())
    assert sorted(m.payload for m in received) == [b"device own topic", b"gateway own site"]


def test_generated_config_is_accepted_by_mosquitto(tmp_path: Path) -> None:
    binary = find_mosquitto()
    if binary is None:
        pytest.skip("mosquitto is not installed")
    conf, port = tmp_path / "mosquitto.conf", free_port()
    user = pwd.getpwuid(os.geteuid()).pw_name
    args = ["config", "--persistence-dir", str(tmp_path), "--port", str(port), "--bind", "127.0.0.1", "--user", user]
    result = CliRunner().invoke(broker_app, [*args, "--batch-size", "8000", "--rate", "100", "--outage-s", "60",
                                             "--allow-anonymous", "--out", str(conf)])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = conf.read_text()
    assert "max_inflight_messages 16000" in text
    assert "max_queued_messages 6000" in text
    assert "message_size_limit 4194304" in text  # 4 x SENTINEL_MAX_PAYLOAD_BYTES
    # Mosquitto refuses to start on an unknown or malformed option, so serving a client proves the file is good.
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                asyncio.run(try_login_at("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.02)
        else:
            pytest.fail("mosquitto never accepted a client")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def test_password_entry_matches_mosquitto_passwd(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    subprocess.run([tool, "-c", "-b", str(tmp_path / "pw"), "alice", "s3cret"], check=True, timeout=10)
    theirs = (tmp_path / "pw").read_text().strip()
    assert password_matches(theirs, "s3cret")
    assert not password_matches(theirs, "s3creT")
    salt = __import__("base64").b64decode(theirs.split("$")[3])
    assert password_entry("alice", "s3cret", salt=salt) == theirs


@settings(max_examples=examples(25), deadline=None)
@given(
    secret=st.text(min_size=1, max_size=40).filter(lambda s: not any(c in s for c in "\r\n\0")),
    other=st.text(min_size=1, max_size=40),
)
def test_password_entries_verify_only_their_secret(secret: str, other: str) -> None:
    entry = password_entry("user-1", secret)
    assert password_matches(entry, secret)
    assert password_matches(entry, other) == (other == secret)
    assert entry.startswith("user-1:$7$101$")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"gateways": []}, "sentinel: missing, and no broker URL"),
        ({"sentinel": "me", "gateways": []}, "sentinel: expected a mapping"),
        ({"sentinel": {"id": "s", "secret": "x"}, "gateways": [{"id": "g/1", "secret": "x", "sites": ["a"]}]},
         r"gateways\[0\]\.id: expected an id"),
        ({"sentinel": {"id": "s", "secret": "x"}, "gateways": [{"id": "g", "secret": "x", "sites": ["a", "#"]}]},
         r"gateways\[0\]\.sites\[1\]: expected an id"),
        ({"sentinel": {"id": "s", "secret": "x"}, "gateways": [{"id": "g", "secret": "x", "sites": []}]},
         r"gateways\[0\]\.sites: expected a non-empty list"),
        ({"sentinel": {"id": "s", "secret": "x"}, "devices": [{"id": "d", "site": "a", "secret": ""}]},
         r"devices\[0\]\.secret: expected a non-empty"),
        ({"sentinel": {"id": "s", "secret": "x"}, "devices": [{"id": "s", "site": "a", "secret": "y"}]},
         r"devices\[0\]\.id: 's' is already the login of sentinel"),
        ({"sentinel": {"id": "s", "secret": "x"}, "devices": [{"id": "d", "site": "a"}, {"id": "d", "site": "a"}]},
         r"devices\[1\]: device 'd' of site 'a' is already devices\[0\]"),
        ({"sentinel": {"id": "s", "secret": "x"}, "devices": [{"site": "a"}]}, r"devices\[0\]\.id: missing"),
    ],
)  # fmt: skip
def test_bad_registries_say_where_and_what(data: object, problem: str) -> None:
    with pytest.raises(BrokerError, match=problem):
        parse_broker_registry(data, "reg.yaml")


def test_registry_yaml_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "reg.yaml"
    path.write_text("sentinel: {id: s, secret: x}\ngateways: [\n", encoding="utf-8")
    with pytest.raises(BrokerError, match=r"reg\.yaml:3: not valid YAML"):
        load_broker_registry(path)


def test_password_file_is_private_and_acl_is_exact(tmp_path: Path) -> None:
    registry = parse_broker_registry(__import__("yaml").safe_load(REGISTRY_YAML))
    assert isinstance(registry, BrokerRegistry)
    write_access_files(registry, tmp_path / "pw", tmp_path / "acl")
    assert (tmp_path / "pw").stat().st_mode & 0o777 == 0o600
    users = [line.split(":", 1)[0] for line in (tmp_path / "pw").read_text().splitlines()]
    assert users == ["sentinel-ingest", "gw-a", "ch4-0001"]
    rules = [line for line in (tmp_path / "acl").read_text().splitlines() if line and not line.startswith("#")]
    assert rules == [
        "user sentinel-ingest", "topic read sentinel/v1/#",
        "user gw-a", "topic write sentinel/v1/plant-a/#",
        "user ch4-0001", "topic write sentinel/v1/plant-b/ch4-0001/+",
    ]  # fmt: skip


def test_sentinel_login_from_the_broker_url_when_the_registry_has_none(tmp_path: Path) -> None:
    # The file `sentinel registry load` reads has no `sentinel` key; the acl command takes the login from the URL.
    (tmp_path / "reg.yaml").write_text(
        "sites: [{id: plant-a, name: A, township: T, sector: gas}]\n"
        "gateways: [{id: gw-a, secret: 0123456789abcdef, sites: [plant-a]}, {id: gw-http, sites: [plant-a]}]\n"
        "devices: [{id: d-1, site: plant-a, class: gas_pressure}]\n",
        encoding="utf-8",
    )
    url = "mqtt://ingest:p%40ss@broker:1883"
    args = ["acl", str(tmp_path / "reg.yaml"), "--out-dir", str(tmp_path), "--sentinel-url", url]
    result = CliRunner().invoke(broker_app, args)
    assert result.exit_code == 0, result.output
    entries = (tmp_path / "mosquitto.passwd").read_text().splitlines()
    assert [e.split(":", 1)[0] for e in entries] == ["ingest", "gw-a"]  # gw-http has no secret: no login
    assert password_matches(entries[0], "p@ss")
    assert "user gw-http" not in (tmp_path / "mosquitto.acl").read_text()


def test_generated_config_requires_logins_by_default(tmp_path: Path) -> None:
    # Issue 13: the default config is the secure one; an open broker must be asked for by name.
    result = CliRunner().invoke(broker_app, ["config", "--persistence-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "allow_anonymous false" in result.output
    assert "password_file /etc/mosquitto/mosquitto.passwd" in result.output
    assert "allow_anonymous true" not in result.output
    with pytest.raises(BrokerError, match="allow-anonymous"):
        mosquitto_config(persistence_dir=tmp_path)


def test_default_config_refuses_anonymous_and_oversize_at_the_broker(tmp_path: Path) -> None:
    binary = find_mosquitto()
    if binary is None:
        pytest.skip("mosquitto is not installed")
    (tmp_path / "registry.yaml").write_text(REGISTRY_YAML, encoding="utf-8")
    result = CliRunner().invoke(broker_app, ["acl", str(tmp_path / "registry.yaml"), "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    conf, port = tmp_path / "mosquitto.conf", free_port()
    user = pwd.getpwuid(os.geteuid()).pw_name
    args = ["config", "--persistence-dir", str(tmp_path), "--port", str(port), "--bind", "127.0.0.1", "--user", user,
            "--password-file", str(tmp_path / "mosquitto.passwd"), "--acl-file", str(tmp_path / "mosquitto.acl"),
            "--max-payload", "2048", "--out", str(conf)]  # fmt: skip
    assert CliRunner().invoke(broker_app, args).exit_code == 0
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE)
    received: list[MqttMessage] = []

    async def sink(batch: list[MqttMessage]) -> None:
        received.extend(batch)

    async def scenario() -> None:
        for _ in range(500):
            try:
                await try_login_at("127.0.0.1", port, "sentinel-ingest", "ingest secret")
                break
            except OSError:
                await asyncio.sleep(0.02)
        with pytest.raises(MQTTConnectError):
            await try_login_at("127.0.0.1", port)  # anonymous
        config = CollectorConfig(
            host="127.0.0.1", port=port, username="sentinel-ingest", password="ingest secret", batch_max_wait_s=0.05
        )
        collector = MqttCollector(config, sink)
        task = asyncio.create_task(collector.run())
        await asyncio.wait_for(collector.connected.wait(), 10)
        topic = "sentinel/v1/plant-a/_gateway/gw-a/telemetry"
        auth = ("gw-a", "gw-a secret")
        await publish(
            "127.0.0.1",
            port,
            [(topic, b"x" * (4 * 2048 + 1)), (topic, b"y" * 3000), (topic, b"small")],
            username=auth[0],
            password=auth[1],
        )
        for _ in range(200):
            if len(received) >= 2:
                break
            await asyncio.sleep(0.05)
        await collector.stop()
        await task

    try:
        asyncio.run(scenario())
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()
    # Over 4 x the limit never reaches Sentinel; over the limit but within 4 x does (and is dead-lettered there).
    assert [m.payload for m in received] == [b"y" * 3000, b"small"]
