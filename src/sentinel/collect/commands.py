"""``sentinel broker …``: Mosquitto configuration, password file and ACL for Sentinel's broker.

The ``acl`` command reads the registry as YAML (unknown keys are ignored, so the same file can carry what
``sentinel registry load`` needs)::

    sentinel:                 # Sentinel's own MQTT login: may read everything under sentinel/v1/. Optional: without
      id: sentinel-ingest     # it, the user:password of --sentinel-url or SENTINEL_MQTT_URL is used, so the file
      secret: change-me       # `sentinel registry load` reads (which has no such key) works as it is
    gateways:                 # may publish only under sentinel/v1/{site}/... for each bound site
      - id: gw-plant-a
        secret: gw-secret     # optional: a gateway without one gets no MQTT login
        sites: [plant-a, plant-b]
    devices:                  # may publish only on sentinel/v1/{site}/{id}/{telemetry|event|status}
      - id: ch4-0001
        site: plant-a
        secret: dev-secret    # optional: a device that talks only through its gateway needs no login

Ids are topic levels: 1-64 characters of letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit
(the wire contract's id pattern), so no id can contain ``/``, ``+`` or ``#`` and widen an ACL.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import typer
import yaml

from sentinel.collect.broker import (
    BrokerRegistry,
    DeviceAccount,
    GatewayAccount,
    QueueBudget,
    TlsListener,
    mosquitto_config,
    write_access_files,
)
from sentinel.errors import BrokerError
from sentinel.settings import Settings, load_settings

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the wire contract's ID_PATTERN

broker_app = typer.Typer(no_args_is_help=True, help="Mosquitto configuration, passwords and ACL for Sentinel.")


# --- registry file ----------------------------------------------------------------------------------------------


def load_broker_registry(path: Path, *, sentinel_login: tuple[str, str] | None = None) -> BrokerRegistry:
    """Read and check a registry YAML file; errors name the file and the entry (``gateways[2].sites[0]``).
    ``sentinel_login`` (user, password) is used when the file has no ``sentinel`` entry."""
    return parse_broker_registry(read_registry_yaml(path), str(path), sentinel_login=sentinel_login)


def read_registry_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BrokerError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise BrokerError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc


def parse_broker_registry(
    data: object, source: str = "registry", *, sentinel_login: tuple[str, str] | None = None
) -> BrokerRegistry:
    """Check plain data (as loaded from YAML or JSON) and build a :class:`BrokerRegistry`."""
    top = _mapping(data, source)
    if "sentinel" in top:
        sentinel = _mapping(top["sentinel"], f"{source}: sentinel")
        username = _id(sentinel, "id", f"{source}: sentinel")
        secret = _secret(sentinel, f"{source}: sentinel", required=True) or ""
    elif sentinel_login is not None:
        username = _id_value(sentinel_login[0], "Sentinel's MQTT user (from its broker URL)")
        secret = _secret({"secret": sentinel_login[1]}, "Sentinel's MQTT password (from its broker URL)",
                         required=True) or ""  # fmt: skip
    else:
        raise BrokerError(
            f"{source}: sentinel: missing, and no broker URL with credentials was given: Sentinel's own client "
            "needs a login (add `sentinel: {id, secret}`, or set SENTINEL_MQTT_URL=mqtt://user:password@host)"
        )
    registry = BrokerRegistry(
        sentinel_username=username,
        sentinel_secret=secret,
        gateways=tuple(_gateway(g, f"{source}: gateways[{i}]") for i, g in enumerate(_list(top, "gateways", source))),
        devices=tuple(_device(d, f"{source}: devices[{i}]") for i, d in enumerate(_list(top, "devices", source))),
    )
    _check_unique(registry, source)
    return registry


def _gateway(entry: object, where: str) -> GatewayAccount:
    fields = _mapping(entry, where)
    sites = fields.get("sites")
    if not isinstance(sites, list) or not sites:
        raise BrokerError(f"{where}.sites: expected a non-empty list of site ids, got {sites!r}")
    return GatewayAccount(
        username=_id(fields, "id", where),
        secret=_secret(fields, where, required=False),
        sites=tuple(_id_value(site, f"{where}.sites[{i}]") for i, site in enumerate(sites)),
    )


def _device(entry: object, where: str) -> DeviceAccount:
    fields = _mapping(entry, where)
    return DeviceAccount(
        username=_id(fields, "id", where),
        site=_id(fields, "site", where),
        secret=_secret(fields, where, required=False),
    )


def _check_unique(registry: BrokerRegistry, source: str) -> None:
    seen: dict[str, str] = {registry.sentinel_username: "sentinel"}
    logins = [(f"gateways[{i}]", g.username) for i, g in enumerate(registry.gateways) if g.secret is not None]
    logins += [(f"devices[{i}]", d.username) for i, d in enumerate(registry.devices) if d.secret is not None]
    for where, username in logins:
        if username in seen:
            raise BrokerError(f"{source}: {where}.id: {username!r} is already the login of {seen[username]}")
        seen[username] = where
    devices: dict[tuple[str, str], int] = {}
    for i, device in enumerate(registry.devices):
        key = (device.site, device.username)
        if key in devices:
            raise BrokerError(
                f"{source}: devices[{i}]: device {device.username!r} of site {device.site!r} is "
                f"already devices[{devices[key]}]"
            )
        devices[key] = i


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BrokerError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _list(top: dict[str, Any], key: str, source: str) -> list[object]:
    value = top.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise BrokerError(f"{source}: {key}: expected a list, got {type(value).__name__}")
    return value


def _id(fields: dict[str, Any], key: str, where: str) -> str:
    if key not in fields:
        raise BrokerError(f"{where}.{key}: missing")
    return _id_value(fields[key], f"{where}.{key}")


def _id_value(value: object, where: str) -> str:
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise BrokerError(
            f"{where}: expected an id of 1-64 letters, digits, '.', '_' or '-' starting with a "
            f"letter or digit, got {value!r}"
        )
    return value


def _secret(fields: dict[str, Any], where: str, *, required: bool) -> str | None:
    value = fields.get("secret")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\0"):
        raise BrokerError(f"{where}.secret: expected a non-empty one-line string")
    return value


# --- commands ---------------------------------------------------------------------------------------------------


@broker_app.command("config")
def config_command(
    ctx: typer.Context,
    persistence_dir: Annotated[Path, typer.Option(help="Where Mosquitto keeps sessions and queued messages")] = Path(
        "/var/lib/mosquitto"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 1883,
    bind: Annotated[str, typer.Option(help="Listener address")] = "0.0.0.0",
    batch_size: Annotated[int, typer.Option(min=1, help="Sentinel's batch_max_messages")] = 5000,
    rate: Annotated[int, typer.Option(min=1, help="Expected ingest rate, messages/s")] = 2000,
    outage_s: Annotated[int, typer.Option(min=1, help="Longest Sentinel outage the broker must absorb")] = 900,
    queue_mb: Annotated[int, typer.Option(min=1, help="Memory cap of a subscriber's queue, MiB")] = 1024,
    password_file: Annotated[Path, typer.Option(help="From `sentinel broker acl --out-dir /etc/mosquitto`")] = Path(
        "/etc/mosquitto/mosquitto.passwd"
    ),
    acl_file: Annotated[Path, typer.Option(help="From `sentinel broker acl`")] = Path("/etc/mosquitto/mosquitto.acl"),
    allow_anonymous: Annotated[
        bool, typer.Option("--allow-anonymous", help="No logins: anyone may publish (tests and demos only)")
    ] = False,
    max_payload: Annotated[
        int | None, typer.Option(min=1, help="Largest payload, bytes [SENTINEL_MAX_PAYLOAD_BYTES]")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Account Mosquitto switches to when started as root")] = None,
    tls_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the TLS listener")] = 8883,
    certfile: Annotated[Path | None, typer.Option(help="Server certificate (PEM): adds a TLS listener")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="Its private key (PEM)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of standard output")] = None,
) -> None:
    """Print a mosquitto.conf whose queue and in-flight limits match Sentinel's batching.

    Logins and an ACL are required by default (write them with `sentinel broker acl`); the payload limit is
    Sentinel's own."""
    if (certfile is None) != (keyfile is None):
        raise BrokerError("--certfile and --keyfile: give both for a TLS listener, or neither")
    tls = TlsListener(tls_port, certfile, keyfile) if certfile is not None and keyfile is not None else None
    text = mosquitto_config(
        port=port,
        bind_address=bind,
        persistence_dir=persistence_dir,
        batch_max_messages=batch_size,
        queue=QueueBudget(rate_msgs_per_s=rate, outage_s=outage_s, memory_bytes=queue_mb << 20),
        password_file=None if allow_anonymous else password_file,
        acl_file=None if allow_anonymous else acl_file,
        run_as_user=user,
        tls=tls,
        max_payload_bytes=max_payload if max_payload is not None else _settings(ctx).max_payload_bytes,
        allow_anonymous=allow_anonymous,
    )
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


@broker_app.command("acl")
def acl_command(
    ctx: typer.Context,
    registry: Annotated[Path, typer.Argument(help="Registry YAML: sentinel, gateways, devices")],
    out_dir: Annotated[Path, typer.Option(help="Directory for mosquitto.passwd and mosquitto.acl")] = Path("."),
    sentinel_url: Annotated[
        str | None, typer.Option(help="mqtt://user:password@host of Sentinel's own client [SENTINEL_MQTT_URL]")
    ] = None,
) -> None:
    """Write Mosquitto's password file ($7$ PBKDF2-SHA512) and ACL from the registry.

    \b
    Registry YAML (other keys are ignored):
      sentinel: {id: sentinel-ingest, secret: ...}  # optional: else the user:password of --sentinel-url
      gateways: [{id: gw-1, secret: ..., sites: ["plant-a"]}]  # publishes under sentinel/v1/plant-a/#
      devices:  [{id: ch4-0001, site: plant-a, secret: ...}] # publishes on sentinel/v1/plant-a/ch4-0001/+
    A gateway or device without a secret gets no MQTT login.
    """
    data = read_registry_yaml(registry)
    needs_login = not (isinstance(data, dict) and "sentinel" in data)
    login = _login_of(ctx, sentinel_url) if needs_login else None
    accounts = parse_broker_registry(data, str(registry), sentinel_login=login)
    if not out_dir.is_dir():
        raise BrokerError(f"{out_dir}: not a directory")
    password_path, acl_path = out_dir / "mosquitto.passwd", out_dir / "mosquitto.acl"
    write_access_files(accounts, password_path, acl_path)
    logins = 1 + sum(g.secret is not None for g in accounts.gateways)
    logins += sum(d.secret is not None for d in accounts.devices)
    typer.echo(f"wrote {password_path} ({logins} logins) and {acl_path}; reload Mosquitto (SIGHUP) to apply")


def _settings(ctx: typer.Context) -> Settings:
    obj: dict[str, Any] = ctx.find_root().obj or {}
    config = obj.get("config")
    return load_settings(config if isinstance(config, Path) else None)


def _login_of(ctx: typer.Context, url: str | None) -> tuple[str, str] | None:
    """User and password of Sentinel's broker URL: the flag, else the settings (``SENTINEL_MQTT_URL``)."""
    if url is None:
        obj: dict[str, Any] = ctx.find_root().obj or {}
        config = obj.get("config")
        url = load_settings(config if isinstance(config, Path) else None).mqtt_url
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.username is None or parts.password is None:
        return None
    return unquote(parts.username), unquote(parts.password)
