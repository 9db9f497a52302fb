"""The registry file: sites, gateways and devices as YAML or CSV, validated into Structs.

YAML holds all three kinds::

    sites:
      - {id: gas-xz-01, name: 新庄燃气调压站, township: 新庄镇, sector: gas, lat: 31.61, lon: 120.21}
    gateways:
      - {id: gw-xz-01, secret: "a long random token", sites: [gas-xz-01]}
    devices:
      - {id: gas-xz-01-p1, site: gas-xz-01, class: gas_pipe_monitor, expected_interval_s: 30,
         attrs: {setpoint_mpa: 0.3}}

CSV holds one kind, told by its header: ``id,name,township,sector,lat,lon`` for sites, or
``id,site,class,expected_interval_s`` for devices, where any further column ``attr:<name>`` becomes a numeric
attribute. Problems name the file, the entry and the field.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from sentinel.errors import RegistryFileError
from sentinel.wire.contract import ID_PATTERN

# The wire contract's id rule: every registered id must be one a device can send and a topic can carry.
Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Sector = Literal["gas", "dust", "casting", "charging"]


class SiteEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Id
    name: str
    township: str
    sector: Sector
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    operating: bool = True
    attrs: dict[str, float] = msgspec.field(default_factory=dict)


class GatewayEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Id
    sites: list[Id]
    secret: Annotated[str, msgspec.Meta(min_length=16)] | None = None


class DeviceEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, rename={"device_class": "class"}):
    id: Id
    site: Id
    device_class: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    expected_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    attrs: dict[str, float] = msgspec.field(default_factory=dict)
    secret: Annotated[str, msgspec.Meta(min_length=16)] | None = None


class RegistryFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    sites: list[SiteEntry] = msgspec.field(default_factory=list)
    gateways: list[GatewayEntry] = msgspec.field(default_factory=list)
    devices: list[DeviceEntry] = msgspec.field(default_factory=list)


def _convert(path: Path, data: Any) -> RegistryFile:
    try:
        registry = msgspec.convert(data, RegistryFile, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec says "Expected `str`, got `int` - at `$.devices[3].site`"; keep its path, name the file.
        raise RegistryFileError(f"{path}: {exc}") from exc
    _check_references(path, registry)
    return registry


def _check_references(path: Path, registry: RegistryFile) -> None:
    for kind, ids in (
        ("sites", [s.id for s in registry.sites]),
        ("gateways", [g.id for g in registry.gateways]),
        ("devices", [d.id for d in registry.devices]),
    ):
        seen: set[str] = set()
        for i, ident in enumerate(ids):
            if ident in seen:
                raise RegistryFileError(f"{path}: $.{kind}[{i}].id: {ident!r} appears twice")
            seen.add(ident)


def load_registry_file(path: Path) -> RegistryFile:
    """Read a YAML or CSV registry file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RegistryFileError(f"{path}: cannot read: {exc.strerror}") from exc
    if path.suffix.lower() == ".csv":
        return _convert(path, _from_csv(path, text))
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RegistryFileError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise RegistryFileError(f"{path}: expected a mapping with sites, gateways and devices")
    return _convert(path, data)


_ATTR = re.compile(r"^attr:(.+)$")


def _from_csv(path: Path, text: str) -> dict[str, list[dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    header = set(reader.fieldnames or [])
    if {"id", "site", "class"} <= header:
        kind = "devices"
    elif {"id", "name", "township", "sector"} <= header:
        kind = "sites"
    else:
        raise RegistryFileError(
            f"{path}: header {sorted(header)} is neither sites (id,name,township,sector,lat,lon) "
            "nor devices (id,site,class,expected_interval_s,attr:<name>...)"
        )
    rows: list[dict[str, Any]] = []
    for line, row in enumerate(reader, start=2):
        entry: dict[str, Any] = {}
        attrs: dict[str, Any] = {}
        for key, value in row.items():
            if key is None:
                raise RegistryFileError(f"{path}:{line}: more values than header columns")
            if value is None or value == "":
                continue
            match = _ATTR.match(key)
            if match:
                attrs[match.group(1)] = value
            else:
                entry[key] = value
        if attrs:
            entry["attrs"] = attrs
        rows.append(entry)
    return {kind: rows}
