"""The registry in PostgreSQL: an idempotent upsert from a registry file, and the in-memory view ingest checks.

Secrets are never stored: a gateway's secret is its bearer token for HTTP ingest, kept as a SHA-256 digest in
``api_keys`` (the tokens are long random strings, so a fast digest is the usual choice, as for API tokens).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from sentinel.errors import RegistryFileError
from sentinel.registry.entries import RegistryFile
from sentinel.store.text import NUL_REASON, nul_path


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class UpsertReport:
    sites: int = 0
    gateways: int = 0
    devices: int = 0

    def __str__(self) -> str:
        return f"{self.sites} site(s), {self.gateways} gateway(s), {self.devices} device(s)"


def upsert_registry(
    conn: psycopg.Connection[Any], registry: RegistryFile, *, known_classes: Iterable[str] | None = None
) -> UpsertReport:
    """Insert or update every entry in one transaction; entries not in the file are left alone."""
    nul = nul_path(msgspec.to_builtins(registry))
    if nul is not None:  # PostgreSQL cannot store it: refuse with where, not with the database's error
        raise RegistryFileError(f"{nul}: {NUL_REASON}")
    classes = set(known_classes) if known_classes is not None else None
    report = UpsertReport()
    with conn.transaction():
        known_sites = {r[0] for r in conn.execute("SELECT site_id FROM sites")} | {s.id for s in registry.sites}
        for i, site in enumerate(registry.sites):
            conn.execute(
                """INSERT INTO sites (site_id, name, township, sector, lat, lon, operating, attrs)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, township = excluded.township,
                       sector = excluded.sector, lat = excluded.lat, lon = excluded.lon,
                       operating = excluded.operating, attrs = excluded.attrs, updated_at = now()""",
                (site.id, site.name, site.township, site.sector, site.lat, site.lon, site.operating, Jsonb(site.attrs)),
            )
            report.sites = i + 1
        for i, gw in enumerate(registry.gateways):
            for j, site_id in enumerate(gw.sites):
                if site_id not in known_sites:
                    raise RegistryFileError(f"$.gateways[{i}].sites[{j}]: unknown site {site_id!r}")
            conn.execute(
                "INSERT INTO gateways (gateway_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (gw.id,),
            )
            conn.execute("DELETE FROM gateway_sites WHERE gateway_id = %s", (gw.id,))
            for site_id in gw.sites:
                conn.execute("INSERT INTO gateway_sites VALUES (%s, %s)", (gw.id, site_id))
            if gw.secret is not None:
                conn.execute(
                    """INSERT INTO api_keys (name, role, key_hash, gateway_id) VALUES (%s, 'gateway', %s, %s)
                       ON CONFLICT (name) DO UPDATE SET key_hash = excluded.key_hash, revoked_at = NULL""",
                    (f"gateway:{gw.id}", token_digest(gw.secret), gw.id),
                )
            report.gateways = i + 1
        for i, dev in enumerate(registry.devices):
            if dev.site not in known_sites:
                raise RegistryFileError(f"$.devices[{i}].site: unknown site {dev.site!r}")
            if classes is not None and dev.device_class not in classes:
                raise RegistryFileError(
                    f"$.devices[{i}].class: unknown device class {dev.device_class!r} "
                    f"(the rule packs define: {', '.join(sorted(classes))})"
                )
            conn.execute(
                """INSERT INTO devices (device, site_id, device_class, expected_interval_s, attrs, secret_hash)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (device) DO UPDATE SET site_id = excluded.site_id,
                       device_class = excluded.device_class, expected_interval_s = excluded.expected_interval_s,
                       attrs = excluded.attrs, secret_hash = coalesce(excluded.secret_hash, devices.secret_hash),
                       updated_at = now()""",
                (
                    dev.id,
                    dev.site,
                    dev.device_class,
                    dev.expected_interval_s,
                    Jsonb(dev.attrs),
                    token_digest(dev.secret) if dev.secret else None,
                ),
            )
            report.devices = i + 1
    return report


def ensure_metrics(conn: psycopg.Connection[Any], names: Iterable[tuple[str, str]]) -> None:
    """Make sure every (metric, unit) of the catalogue has a row; existing ids never change."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO metrics (metric, unit) VALUES (%s, %s) ON CONFLICT (metric) DO NOTHING", list(names)
        )


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    device_id: int
    device: str
    site: str
    device_class: str
    sector: str
    expected_interval_s: float
    attrs: dict[str, float]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the HTTP layer sees it: its name, role, and for a gateway key the sites it may write for."""

    name: str
    role: str
    gateway: str | None = None
    sites: frozenset[str] | None = None


@dataclass
class RegistryView:
    """What ingest checks per message, in memory: devices by id, gateway bindings, metric ids, gateway tokens."""

    devices: dict[str, DeviceRecord] = field(default_factory=dict)
    gateway_sites: dict[str, frozenset[str]] = field(default_factory=dict)
    metric_ids: dict[str, int] = field(default_factory=dict)
    sites: dict[str, tuple[str, str]] = field(default_factory=dict)  # site -> (township, sector)
    keys: dict[str, ApiKey] = field(default_factory=dict)  # sha256 of the token -> key

    @classmethod
    def load(cls, conn: psycopg.Connection[Any]) -> RegistryView:
        view = cls()
        for row in conn.execute(
            """SELECT d.device_id, d.device, d.site_id, d.device_class, s.sector, d.expected_interval_s, d.attrs
               FROM devices d JOIN sites s USING (site_id) WHERE d.in_service"""
        ):
            record = DeviceRecord(row[0], row[1], row[2], row[3], row[4], float(row[5]), dict(row[6] or {}))
            view.devices[record.device] = record
        bindings: dict[str, set[str]] = {}
        for gateway_id, site_id in conn.execute("SELECT gateway_id, site_id FROM gateway_sites"):
            bindings.setdefault(gateway_id, set()).add(site_id)
        for (gateway_id,) in conn.execute("SELECT gateway_id FROM gateways"):
            bindings.setdefault(gateway_id, set())
        view.gateway_sites = {k: frozenset(v) for k, v in bindings.items()}
        view.metric_ids = {name: int(mid) for mid, name in conn.execute("SELECT metric_id, metric FROM metrics")}
        view.sites = {
            sid: (town, sector) for sid, town, sector in conn.execute("SELECT site_id, township, sector FROM sites")
        }
        for name, role, key_hash, gateway_id in conn.execute(
            "SELECT name, role, key_hash, gateway_id FROM api_keys WHERE revoked_at IS NULL"
        ):
            sites = view.gateway_sites.get(gateway_id, frozenset()) if role == "gateway" else None
            view.keys[key_hash] = ApiKey(name, role, gateway_id, sites)
        return view

    def key_for(self, token: str) -> ApiKey | None:
        return self.keys.get(token_digest(token))


def create_api_key(conn: psycopg.Connection[Any], name: str, role: str, gateway: str | None = None) -> str:
    """Create (or replace) the key ``name`` and return its token; only the token's digest is stored."""
    import secrets

    token = secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute(
            """INSERT INTO api_keys (name, role, key_hash, gateway_id) VALUES (%s, %s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET role = excluded.role, key_hash = excluded.key_hash,
                   gateway_id = excluded.gateway_id, revoked_at = NULL""",
            (name, role, token_digest(token), gateway),
        )
    return token
