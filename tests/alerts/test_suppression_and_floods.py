"""Suppression by design (maintenance, plant not operating, upstream comm fault: the comm fault is raised, the
device's process alarms are held back and released when it clears), and flood and chatter reports."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from sentinel.alerts.actions import get_alert
from sentinel.alerts.lifecycle import ApplyReport, apply_transitions
from sentinel.alerts.notify import add_webhook
from sentinel.alerts.watch import FLOOD_LIMIT, detect_floods_and_chatter, list_reports
from sentinel.engine import Transition, load_rules
from tests.alerts.support import make_plant

RULES = load_rules()
T0 = 1_764_300_000_000_000  # on a 10-minute boundary


def apply(conn: psycopg.Connection[object], *transitions: Transition) -> ApplyReport:
    now = datetime.now(UTC)
    with conn.transaction():
        report = apply_transitions(conn, list(transitions), RULES, now)
        detect_floods_and_chatter(conn, report, now)
    return report


def ch4(device: str, before: str, after: str, k: int, rule: str = "gas.ch4_lel") -> Transition:
    move = "raise" if before == "none" else "clear" if after == "none" else "escalate"
    return Transition(rule, device, device, before, after, move, T0 + k * 1_000_000, 1.0, k)


def test_suppressed_by_design_and_released_when_the_comm_fault_clears(migrated_db: str) -> None:
    plant = make_plant(migrated_db)
    d0, d1, d2 = plant.devices[0], plant.devices[1], plant.devices[2]
    with psycopg.connect(migrated_db) as conn:
        add_webhook(conn, "all", "http://127.0.0.1:9/", "0123456789abcdef")
        conn.execute("UPDATE devices SET maintenance = true WHERE device = %s", (d0,))
        conn.execute("UPDATE sites SET operating = false WHERE site_id = %s", (plant.registry.sites[1].id,))
        conn.commit()
        maint = apply(conn, ch4(d0, "none", "yellow", 1)).new_alerts[0]
        idle = apply(conn, ch4(d2, "none", "yellow", 2)).new_alerts[0]
        comm = apply(conn, ch4(d1, "none", "blue", 3, "gas.comm_loss")).new_alerts[0]
        held = apply(conn, ch4(d1, "none", "orange", 4)).new_alerts[0]
        states = {a: get_alert(conn, a) for a in (maint, idle, comm, held)}
        assert [(s["state"], s["suppressed_reason"]) for s in states.values()] == [
            ("suppressed", "device in maintenance"),
            ("suppressed", "plant not operating"),
            ("active_unack", None),  # the communication fault itself is raised
            ("suppressed", "upstream device offline (communication fault open)"),
        ]
        assert states[comm]["alert_class"] == "comm"
        notified = {r[0] for r in conn.execute("SELECT payload->>'alert_id' FROM outbox")}
        assert notified == {str(comm)}  # held-back alarms notify nobody
        apply(conn, ch4(d1, "blue", "none", 5, "gas.comm_loss"))
        released = get_alert(conn, held)
        assert released["state"] == "active_unack"
        assert released["events"][-1]["reason"] == "upstream back online"
        assert str(held) in {r[0] for r in conn.execute("SELECT payload->>'alert_id' FROM outbox")}


def test_flood_and_chatter_are_reported_once(migrated_db: str) -> None:
    plant = make_plant(migrated_db, devices_per_site=6)
    town0 = [d for d in plant.devices if "-s0-" in d]
    with psycopg.connect(migrated_db) as conn:
        burst = [ch4(d, "none", "yellow", i) for i, d in enumerate(town0)]
        burst += [ch4(d, "none", "blue", 10 + i, "gas.ch4_rising") for i, d in enumerate(town0[:5])]
        assert len(burst) == FLOOD_LIMIT + 1
        apply(conn, *burst[:FLOOD_LIMIT])
        assert list_reports(conn, "flood") == []  # ten is not yet a flood
        apply(conn, burst[FLOOD_LIMIT])
        apply(conn, ch4(town0[5], "none", "blue", 30, "gas.ch4_rising"))  # the twelfth: same flood, same report
        floods = list_reports(conn, "flood")
        assert [(r["desk"], r["count"], r["report_type"]) for r in floods] == [("town-0", FLOOD_LIMIT + 1, "flood")]
        assert floods[0]["kind"] == "flood"  # 0.1's name of report_type, deprecated until 0.2
        # A non-latching rule flapping on one device: a new alert per raise, one chatter report.
        d = plant.devices[-1]
        flaps = [
            ch4(d, "none" if k % 2 == 0 else "blue", "blue" if k % 2 == 0 else "none", 40 + k, "gas.ch4_rising")
            for k in range(8)
        ]
        for t in flaps:
            apply(conn, t)
        chatter = list_reports(conn, "chatter")
        assert len(chatter) == 1
        assert chatter[0]["desk"] == "town-1"
        assert chatter[0]["count"] >= 5


def test_major_hazard_rule_enters_the_register_once(migrated_db: str) -> None:
    from sentinel.registry.entries import DeviceEntry, RegistryFile, SiteEntry
    from sentinel.registry.repository import upsert_registry

    assert RULES.rule("casting.cw_loss_while_casting").major_hazard
    with psycopg.connect(migrated_db) as conn:
        upsert_registry(
            conn,
            RegistryFile(
                [SiteEntry("foundry", "foundry", "town-c", "casting")],
                [],
                [DeviceEntry("cm-1", "foundry", "casting_machine", attrs={"cw_pressure_setpoint_mpa": 0.5})],
            ),
        )
        red = Transition("casting.cw_loss_while_casting", "cm-1", "cm-1", "none", "red", "raise", T0, 0.1, 1)
        alert = apply(conn, red).new_alerts[0]
        apply(conn, red)  # replayed: nothing new
        hazards = conn.execute("SELECT hazard_id, source, sector, township, alert_id, state FROM hazards").fetchall()
        assert [h[1:] for h in hazards] == [("alert", "casting", "town-c", alert, "recorded")]
        assert get_alert(conn, alert)["hazard_id"] == hazards[0][0]


def test_alert_class_comes_from_the_rule(migrated_db: str) -> None:
    """One source decides alarm (报警) vs early warning (预警): the rule. A trend rule marked ``alert: warning``
    in its pack is stored as a warning; a rate rule that is a real-time alarm (burst bag) is not."""
    plant = make_plant(migrated_db)
    d0 = plant.devices[0]
    assert RULES.rule("gas.ch4_rising").alert_class == "warning"
    assert RULES.rule("dust.dc_dp_sudden_drop").alert_class == "alarm"
    with psycopg.connect(migrated_db) as conn:
        rising = apply(conn, ch4(d0, "none", "blue", 1, "gas.ch4_rising")).new_alerts[0]
        level = apply(conn, ch4(d0, "none", "yellow", 2)).new_alerts[0]
        assert (get_alert(conn, rising)["alert_class"], get_alert(conn, level)["alert_class"]) == ("warning", "alarm")
        # 0.1's name of the field stays until 0.2 (deprecated), in the API's rows and the webhook payloads.
        assert get_alert(conn, rising)["kind"] == "warning"
        payloads = [r[0] for r in conn.execute("SELECT payload FROM outbox WHERE payload->>'type' = 'alert'")]
        assert payloads
        assert all(p["kind"] == p["alert_class"] for p in payloads)
        assert {p["alert_class"] for p in payloads} == {"warning", "alarm"}
