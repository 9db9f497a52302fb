"""The console over plain HTTP: the session cookie's flags, sign-out and key revocation ending a session, pages in
English on request, refusals as pages (never a stack trace), the evidence size limit, device maintenance through
the API and the page recorded with who did it and suppressing the device's next alert, the shipped assets' size,
and the API's OpenAPI document unchanged by the console."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import psycopg
import pytest

from sentinel.registry.keys import revoke_key
from sentinel.testing.service import ServiceThread
from tests.alerts.support import Plant, make_plant, post_messages
from tests.console.support import console_service, csrf_of, raise_orange, readings, sign_in_http, wait_for


@pytest.fixture
def served(migrated_db: str, tmp_path: Path) -> Iterator[tuple[Plant, ServiceThread]]:
    plant = make_plant(migrated_db)
    with console_service(migrated_db, tmp_path / "spool") as svc:
        yield plant, svc


def test_the_session_cookie_is_http_only_strict_and_expires(served: tuple[Plant, ServiceThread]) -> None:
    plant, svc = served
    with httpx.Client(base_url=svc.url) as http:
        csrf = csrf_of(http.get("/login").text)
        r = http.post("/login", data={"csrf": csrf, "api_key": plant.keys["officer"], "next": "/map"})
    assert r.status_code == 303
    assert r.headers["location"] == "/map"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=43200" in cookie
    assert "secure" not in cookie, "plain HTTP on loopback: Secure is set only under TLS"
    with httpx.Client(base_url=svc.url) as http:
        refused = http.post("/login", data={"api_key": plant.keys["officer"]})
    assert refused.status_code == 403, "a sign-in form without its CSRF token"


def test_sign_out_and_key_revocation_end_sessions(served: tuple[Plant, ServiceThread]) -> None:
    plant, svc = served
    first = sign_in_http(svc.url, plant.keys["officer"])
    second = sign_in_http(svc.url, plant.keys["officer"])
    assert first.get("/board").status_code == 200
    stolen = dict(first.cookies)
    page = first.get("/board")
    assert first.post("/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
    with httpx.Client(base_url=svc.url, cookies=stolen) as replay:
        assert replay.get("/board").headers["location"].startswith("/login"), "a signed-out cookie still works"
    board = second.get("/board")
    assert board.status_code == 200
    assert second.get("/board").status_code == 200  # a page view just before the revocation
    with psycopg.connect(plant.db) as conn:
        revoke_key(conn, f"{plant.devices[0].split('-')[0]}-officer")
    # At once, from the very next request: a page view as much as an action.
    assert second.get("/board").headers["location"].startswith("/login?next="), "a revoked key still reads pages"
    acted = second.post("/logout", data={"csrf": csrf_of(board.text)})
    assert acted.headers["location"].startswith("/login?next="), "an action of a revoked key's session went through"
    first.close()
    second.close()


def test_a_revoked_keys_live_stream_ends(served: tuple[Plant, ServiceThread]) -> None:
    plant, svc = served
    http = sign_in_http(svc.url, plant.keys["officer"])
    kinds: list[str] = []
    closed = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=svc.url, cookies=dict(http.cookies), timeout=None) as sse:  # noqa: SIM117
            with sse.stream("GET", "/events") as stream:
                kinds.extend(line[7:] for line in stream.iter_lines() if line.startswith("event: "))
        closed.set()

    threading.Thread(target=listen, daemon=True).start()
    wait_for(lambda: "db" in kinds, "the stream's first event")
    with psycopg.connect(plant.db) as conn:
        revoke_key(conn, f"{plant.devices[0].split('-')[0]}-officer")
    # The feed rechecks the open streams' sessions on each poll (0.5 s); a stream otherwise lasts 10 minutes.
    assert closed.wait(5.0), "the revoked key's live stream is still open"
    assert kinds[-1] == "ended"
    again = http.get("/events", follow_redirects=False)
    assert again.status_code == 303, "a revoked key opened a new live stream"
    http.close()


def test_pages_speak_english_on_request_and_errors_are_pages(served: tuple[Plant, ServiceThread]) -> None:
    plant, svc = served
    http = sign_in_http(svc.url, plant.keys["officer"])
    assert "值班告警" in http.get("/board").text
    missing = http.get("/alerts/999999")
    assert missing.status_code == 404
    assert "找不到" in missing.text
    assert "Traceback" not in missing.text
    http.get("/lang/en?next=/board")
    english = http.get("/board").text
    assert "Alert board" in english
    assert "No open alerts." in english
    wrong_id = http.get("/alerts/not-a-number")
    assert wrong_id.status_code == 422
    assert "alert_id" in wrong_id.text
    bad = http.get("/board?grade=purple")
    assert bad.status_code == 422
    assert "grade" in bad.text
    assert "Traceback" not in bad.text
    http.close()


def test_evidence_over_the_size_limit_or_not_a_photo_is_refused(served: tuple[Plant, ServiceThread]) -> None:
    plant, svc = served
    http = sign_in_http(svc.url, plant.keys["supervisor"])
    form = http.get("/hazards")
    r = http.post(
        "/hazards",
        data={
            "csrf": csrf_of(form.text),
            "title": "配电箱无漏电保护",
            "source": "self_inspection",
            "sector": "charging",
            "township": "town-0",
        },
    )
    assert r.status_code == 303
    hazard = r.headers["location"]
    csrf = csrf_of(http.get(hazard).text)
    big = b"%PDF-" + b"0" * (10 * 1024 * 1024)
    r = http.post(
        f"{hazard}/transition",
        data={"csrf": csrf, "action": "comment", "reason": "照片"},
        files={"file": ("big.pdf", big, "application/pdf")},
    )
    assert r.status_code == 422
    assert "over the limit" in r.text
    r = http.post(
        f"{hazard}/transition",
        data={"csrf": csrf, "action": "comment", "reason": "照片"},
        files={"file": ("x.exe", b"MZ\x90\x00", "image/png")},
    )
    assert r.status_code == 422
    assert "only photos" in r.text
    with psycopg.connect(plant.db) as conn:
        assert conn.execute("SELECT count(*) FROM hazard_evidence").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM hazard_events WHERE reason LIKE 'comment%'").fetchone() == (0,)
    http.close()


def test_maintenance_from_the_api_and_the_page_is_recorded_and_suppresses_new_alerts(
    served: tuple[Plant, ServiceThread],
) -> None:
    plant, svc = served
    device = plant.devices[0]
    with httpx.Client(base_url=svc.url) as api:
        body = {"maintenance": True, "reason": "更换传感器"}
        officer = api.put(
            f"/v1/devices/{device}/maintenance", json=body, headers={"Authorization": f"Bearer {plant.keys['officer']}"}
        )
        assert officer.status_code == 403
        done = api.put(
            f"/v1/devices/{device}/maintenance",
            json=body,
            headers={"Authorization": f"Bearer {plant.keys['supervisor']}"},
        )
        assert done.status_code == 200
        assert done.json()["maintenance"] is True
    raise_orange(svc.url, plant, device)
    wait_for(lambda: _states(plant.db, device), "the alert")
    assert _states(plant.db, device) == ["suppressed"]
    http = sign_in_http(svc.url, plant.keys["supervisor"])
    page = http.get("/devices")
    assert device in page.text
    r = http.post(
        f"/devices/{device}/maintenance",
        data={"csrf": csrf_of(page.text), "maintenance": "off", "reason": "传感器已更换"},
    )
    assert r.status_code == 303
    with psycopg.connect(plant.db) as conn:
        log = conn.execute("SELECT actor, maintenance, reason FROM device_maintenance_log ORDER BY entry_id").fetchall()
    prefix = device.split("-")[0]
    assert log == [(f"{prefix}-supervisor", True, "更换传感器"), (f"{prefix}-supervisor", False, "传感器已更换")]
    http.close()


def test_the_console_ships_small_assets_and_leaves_the_openapi_document_alone(
    served: tuple[Plant, ServiceThread],
) -> None:
    _, svc = served
    static = resources.files("sentinel.console").joinpath("static")
    size = sum(f.read_bytes().__len__() for f in static.iterdir() if f.name.endswith((".js", ".css")))
    assert 0 < size < 200_000
    with httpx.Client(base_url=svc.url) as http:
        paths = set(http.get("/openapi.json").json()["paths"])
        assert all(p.startswith("/v1/") or p in ("/healthz", "/readyz", "/metrics") for p in paths), paths
        assert http.get("/static/console/console.js").status_code == 200
        assert http.get("/static/console/../../__init__.py").status_code == 404


def _states(db: str, device: str) -> list[str]:
    with psycopg.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM alerts WHERE subject = %s", (device,))]


def test_never_heard_from_means_no_message_ever_whatever_the_age(served: tuple[Plant, ServiceThread]) -> None:
    plant, svc = served
    silent_old, talked_long_ago, talks_now, silent_new = plant.devices
    post_messages(svc.url, plant.gateway_token, readings(talked_long_ago, [1.0, 1.0]) + readings(talks_now, [1.0]))
    with psycopg.connect(plant.db) as conn:
        wait_for(
            lambda: conn.execute("SELECT count(*) FROM device_heard").fetchone() == (2,),
            "the ingest writer recording the first messages",
        )
        # talked_long_ago was last heard 40 days ago (message_log is read only for the last 7 days); silent_old was
        # registered 400 days ago and never sent anything.
        conn.execute(
            """UPDATE message_log SET received_at = received_at - interval '40 days'
               WHERE device_id = (SELECT device_id FROM devices WHERE device = %s)""",
            (talked_long_ago,),
        )
        conn.execute("UPDATE devices SET created_at = now() - interval '400 days' WHERE device = %s", (silent_old,))
    http = sign_in_http(svc.url, plant.keys["officer"])
    page = http.get("/devices?show=all").text
    rows = {m[0]: m[1] for m in re.findall(r'<tr data-device="([^"]+)">(.*?)</tr>', page, re.S)}
    assert "从未上报" in rows[silent_old]
    assert "从未上报" in rows[silent_new]
    assert "从未上报" not in rows[talked_long_ago], "a device heard 40 days ago is shown as never heard from"
    assert "7 天以前" in rows[talked_long_ago]
    assert "从未上报" not in rows[talks_now]
    assert re.search(r'id="n-never">2<', page)
    http.close()
