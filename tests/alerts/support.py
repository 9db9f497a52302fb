"""A small gas plant for alert tests: two townships, methane well monitors, a gateway, keys of every role, and a
scenario of methane readings whose expected transitions a fresh in-process engine computes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx
import psycopg

from sentinel.alerts.lifecycle import transition_key
from sentinel.alerts.states import is_latching
from sentinel.engine import DeviceSpec, Engine, load_rules
from sentinel.registry.entries import DeviceEntry, GatewayEntry, RegistryFile, SiteEntry
from sentinel.registry.repository import create_api_key, upsert_registry
from sentinel.testing.waiting import wait_until
from sentinel.wire import Telemetry, encode_batch

DEVICE_CLASS = "gas_well_monitor"
INTERVAL_S = 3600.0  # long: no staleness alert during a test
# One device's methane walk: blue, yellow, orange, back down, clear, raise again.
CH4_WALK = [2.0, 12.0, 30.0, 55.0, 30.0, 5.0, 3.0, 15.0, 2.0, 28.0, 60.0, 1.0]


@dataclass
class Plant:
    db: str
    registry: RegistryFile
    gateway_token: str
    keys: dict[str, str]  # role -> token

    @property
    def devices(self) -> list[str]:
        return [d.id for d in self.registry.devices]


def make_plant(db: str, devices_per_site: int = 2) -> Plant:
    p = f"a{uuid.uuid4().hex[:6]}"
    sites = [SiteEntry(f"{p}-s{i}", f"site {i}", f"town-{i}", "gas", 31.5, 120.3) for i in range(2)]
    devices = [
        DeviceEntry(f"{p}-s{i}-w{j}", f"{p}-s{i}", DEVICE_CLASS, INTERVAL_S)
        for i in range(2)
        for j in range(devices_per_site)
    ]
    secret = f"{p}-gateway-secret-token"
    registry = RegistryFile(sites, [GatewayEntry(f"{p}-gw", [s.id for s in sites], secret=secret)], devices)
    with psycopg.connect(db) as conn:
        upsert_registry(conn, registry)
        keys = {
            role: create_api_key(conn, f"{p}-{role}", role, f"{p}-gw" if role == "gateway" else None)
            for role in ("gateway", "officer", "supervisor", "admin")
        }
    return Plant(db, registry, secret, keys)


def scenario(devices: list[str], start_us: int | None = None) -> list[Telemetry]:
    """CH4_WALK on every device, one reading per second each, in device-time order; seq from 1."""
    start = start_us if start_us is not None else (time.time_ns() // 1_000_000 - 3_600_000) * 1000
    out = []
    for k, value in enumerate(CH4_WALK):
        for d in devices:
            out.append(Telemetry(d, start + k * 1_000_000, k + 1, {"ch4_pct_lel": value}))
    return out


def expected(plant: Plant, messages: list[Telemetry]) -> tuple[set[str], int]:
    """Transition keys a fresh engine gives for ``messages`` and how many alerts they open (latching rules keep
    one open alert per subject when nobody acknowledges)."""
    rules = load_rules()
    sites = {d.id: d.site for d in plant.registry.devices}
    engine = Engine(rules, [DeviceSpec(d, DEVICE_CLASS, sites[d], "gas", INTERVAL_S, {}) for d in plant.devices])
    import numpy as np

    metric = engine.metric_index("ch4_pct_lel")
    out = engine.process(
        np.array([engine.device_index(m.device) for m in messages], dtype=np.int32),
        np.full(len(messages), metric, dtype=np.int16),
        np.array([m.ts_us for m in messages], dtype=np.int64),
        np.array([float(m.metrics["ch4_pct_lel"]) for m in messages]),
        np.array([m.seq for m in messages], dtype=np.int64),
    )
    keys, opened, open_now = set(), 0, set()
    for t in out.records():
        keys.add(transition_key(t))
        rule = rules.rule(t.rule_id)
        latching = is_latching(max((lv.grade for lv in rule.levels), default=0), rule.major_hazard)
        subject = (t.rule_id, t.subject)
        if t.from_grade == "none" and subject not in open_now:
            opened += 1
            open_now.add(subject)
        if t.to_grade == "none" and not latching:
            open_now.discard(subject)
    return keys, opened


def post_messages(url: str, token: str, messages: list[Telemetry], per_request: int = 4) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for i in range(0, len(messages), per_request):
            r = http.post(
                "/v1/telemetry",
                content=encode_batch(messages[i : i + per_request]),
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 202, r.text


def db_transitions(db: str) -> tuple[list[str], list[str]]:
    """(engine transition keys of alert_events, alert keys) as stored, repeats kept."""
    with psycopg.connect(db) as conn:
        events = [
            r[0] for r in conn.execute("SELECT transition_key FROM alert_events WHERE transition_key IS NOT NULL")
        ]
        alerts = [r[0] for r in conn.execute("SELECT alert_key FROM alerts")]
    return events, alerts


wait_for = wait_until
