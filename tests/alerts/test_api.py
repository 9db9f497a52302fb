"""Alerts over HTTP: roles (an officer cannot do admin actions; a gateway cannot read alerts, and the refusal is
logged), acknowledge, shelve, escalate to the register, and 409 for actions the state does not allow."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from sentinel.alerts.lifecycle import apply_transitions
from sentinel.engine import Transition, load_rules
from sentinel.testing.service import running_service
from tests.alerts.support import Plant, make_plant

RULES = load_rules()


def raise_alert(plant: Plant, device: str, grade: str = "yellow", ts_us: int = 1_764_300_000_000_000) -> int:
    t = Transition("gas.ch4_lel", device, device, "none", grade, "raise", ts_us, 30.0, 7)
    with psycopg.connect(plant.db) as conn, conn.transaction():
        report = apply_transitions(conn, [t], RULES, datetime.now(UTC))
    return report.new_alerts[0]


@pytest.fixture
def served(migrated_db: str, tmp_path: Path) -> Iterator[tuple[Plant, httpx.Client]]:
    plant = make_plant(migrated_db)
    with running_service(migrated_db, tmp_path / "spool") as svc, httpx.Client(base_url=svc.url, timeout=30) as http:
        yield plant, http


def auth(plant: Plant, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plant.keys[role]}"}


def test_gateway_key_cannot_read_alerts_and_the_attempt_is_logged(
    served: tuple[Plant, httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    plant, http = served
    raise_alert(plant, plant.devices[0])
    with caplog.at_level(logging.WARNING, logger="sentinel.api.auth"):
        r = http.get("/v1/alerts", headers=auth(plant, "gateway"))
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    assert any("refused" in m and "/v1/alerts" in m and "gateway" in m for m in caplog.messages)
    assert http.get("/v1/alerts").status_code == 401
    listed = http.get("/v1/alerts", headers=auth(plant, "officer"))
    assert listed.status_code == 200
    assert [a["subject"] for a in listed.json()] == [plant.devices[0]]
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/v1/alerts", "/v1/alerts/{alert_id}/shelve", "/v1/hazards/{hazard_id}/transitions"} <= set(paths)


def test_officer_cannot_do_admin_actions(served: tuple[Plant, httpx.Client], caplog: pytest.LogCaptureFixture) -> None:
    plant, http = served
    alert = raise_alert(plant, plant.devices[0])
    officer = auth(plant, "officer")
    hook = {"name": "desk", "url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef"}
    with caplog.at_level(logging.WARNING, logger="sentinel.api.auth"):
        refused = [
            http.post(f"/v1/alerts/{alert}/out-of-service", json={"reason": "sensor swap"}, headers=officer),
            http.put("/v1/webhooks", json=hook, headers=officer),
            http.put("/v1/registry", content=b"{}", headers=officer),
        ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert sum("refused" in m for m in caplog.messages) == 3
    shown = http.get(f"/v1/alerts/{alert}", headers=officer).json()
    assert shown["state"] == "active_unack"
    assert len(shown["events"]) == 1
    admin = auth(plant, "admin")
    done = http.post(f"/v1/alerts/{alert}/out-of-service", json={"reason": "sensor swap"}, headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "out_of_service"
    assert http.put("/v1/webhooks", json=hook, headers=admin).status_code == 200


def test_ack_shelve_escalate_and_refusals(served: tuple[Plant, httpx.Client]) -> None:
    plant, http = served
    alert = raise_alert(plant, plant.devices[1])
    officer = auth(plant, "officer")
    acked = http.post(f"/v1/alerts/{alert}/ack", headers=officer)
    assert acked.status_code == 200
    assert acked.json()["state"] == "active_ack"
    again = http.post(f"/v1/alerts/{alert}/ack", headers=officer)
    assert again.status_code == 409
    assert again.json()["from"] == "active_ack"
    assert "only from" in again.json()["reason"]
    no_reason = http.post(f"/v1/alerts/{alert}/shelve", json={"reason": "", "minutes": 30}, headers=officer)
    assert no_reason.status_code == 422
    no_expiry = http.post(f"/v1/alerts/{alert}/shelve", json={"reason": "maintenance crew on site"}, headers=officer)
    assert no_expiry.status_code == 409
    shelved = http.post(f"/v1/alerts/{alert}/shelve", json={"reason": "crew on site", "minutes": 30}, headers=officer)
    assert shelved.json()["state"] == "shelved"
    assert http.post(f"/v1/alerts/{alert}/unshelve", headers=officer).json()["state"] == "active_ack"
    first = http.post(f"/v1/alerts/{alert}/escalate", json={"reason": "methane near a school"}, headers=officer)
    second = http.post(f"/v1/alerts/{alert}/escalate", json={"reason": "again"}, headers=officer)
    assert first.status_code == second.status_code == 200
    assert first.json()["hazard_id"] == second.json()["hazard_id"]
    hazard = http.get(f"/v1/hazards/{first.json()['hazard_id']}", headers=officer).json()
    assert (hazard["source"], hazard["state"], hazard["township"]) == ("alert", "recorded", "town-0")
    events = http.get(f"/v1/alerts/{alert}", headers=officer).json()["events"]
    assert [e["actor"] for e in events][1:] == [plant_key_name(plant, "officer")] * 5
    assert http.get("/v1/alerts/999999", headers=officer).status_code == 404


def plant_key_name(plant: Plant, role: str) -> str:
    site = plant.registry.sites[0].id
    return f"{site.rsplit('-', 1)[0]}-{role}"


def test_unknown_body_fields_are_refused_with_422_naming_the_field(served: tuple[Plant, httpx.Client]) -> None:
    plant, http = served
    alert = raise_alert(plant, plant.devices[2])
    officer = auth(plant, "officer")
    ack = http.post(f"/v1/alerts/{alert}/ack", json={"note": "on my way"}, headers=officer)
    assert ack.status_code == 422, ack.text
    assert ack.json()["path"] == "body.note"
    assert "'note'" in ack.json()["reason"]
    assert http.get(f"/v1/alerts/{alert}", headers=officer).json()["state"] == "active_unack"
    shelve = http.post(
        f"/v1/alerts/{alert}/shelve", json={"reason": "crew", "minutes": 5, "minutes_typo": 3}, headers=officer
    )
    assert (shelve.status_code, shelve.json()["path"]) == (422, "body.minutes_typo")
    entry = {"title": "阀门锈蚀", "sector": "gas", "township": "town-0", "source": "self_inspection", "owner": "x"}
    created = http.post("/v1/hazards", json=entry, headers=officer)
    assert (created.status_code, created.json()["path"]) == (422, "body.owner")
    assert http.post(f"/v1/alerts/{alert}/ack", json={"reason": "on my way"}, headers=officer).status_code == 200


def test_alert_class_and_report_type_by_their_names_and_by_the_deprecated_kind(
    served: tuple[Plant, httpx.Client],
) -> None:
    """0.1 called the alert class and the report type both ``kind``: the new names are served, and the old one
    still works (in rows and as the reports filter) until 0.2, marked deprecated in the OpenAPI document."""
    plant, http = served
    raise_alert(plant, plant.devices[0])
    with psycopg.connect(plant.db) as conn:
        for i, report_type in enumerate(("flood", "chatter")):
            conn.execute(
                """INSERT INTO alert_reports (report_type, report_key, desk, window_start, window_end, count)
                   VALUES (%s, %s, 'town-0', now(), now(), %s)""",
                (report_type, f"k{i}", 11 + i),
            )
    officer = auth(plant, "officer")
    [alert] = http.get("/v1/alerts", headers=officer).json()
    assert (alert["alert_class"], alert["kind"]) == ("alarm", "alarm")
    by_new = http.get("/v1/alerts/reports", params={"report_type": "flood"}, headers=officer).json()
    by_old = http.get("/v1/alerts/reports", params={"kind": "flood"}, headers=officer).json()
    assert [(r["report_type"], r["kind"], r["count"]) for r in by_new] == [("flood", "flood", 11)]
    assert by_old == by_new
    assert len(http.get("/v1/alerts/reports", headers=officer).json()) == 2
    params = http.get("/openapi.json").json()["paths"]["/v1/alerts/reports"]["get"]["parameters"]
    assert {p["name"]: p.get("deprecated", False) for p in params} == {"report_type": False, "kind": True}
