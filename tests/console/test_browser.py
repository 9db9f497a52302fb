"""The duty officer's console in a real headless Chromium: sign in, a reading posted over HTTP appearing on the
board without a reload, acknowledge, shelve, history; escalate and walk the hazard to closed with an evidence file;
refusals shown on the page (closing without verification, wrong key, missing CSRF token, an officer trying an admin
action); the map colouring the alerting site. Screenshots go to build/screenshots (or $SENTINEL_SCREENSHOTS)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import psycopg
import pytest

from sentinel.console.drawing import GRADE_COLOURS
from sentinel.testing.service import ServiceThread
from tests.alerts.support import Plant, make_plant
from tests.console.support import chromium, console_service, raise_orange, screenshots_dir, wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

# A 1×1 PNG: the rectification photo.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def served(migrated_db: str, tmp_path: Path) -> Iterator[tuple[Plant, ServiceThread, WebDriver]]:
    plant = make_plant(migrated_db)
    with chromium() as driver, console_service(migrated_db, tmp_path / "spool") as svc:
        yield plant, svc, driver


def by_css(driver: WebDriver, selector: str) -> WebElement:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def text_of(driver: WebDriver, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def sign_in(driver: WebDriver, url: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/login")
    driver.find_element(By.ID, "api-key").send_keys(key)
    button = driver.find_element(By.ID, "sign-in")
    button.click()
    wait_for_next_page(driver, button)


def submit(driver: WebDriver, form_id: str, **fields: str) -> None:
    """Fill the form's fields by name and submit it."""
    from selenium.webdriver.common.by import By

    form = driver.find_element(By.ID, form_id)
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        if field.tag_name == "select":
            from selenium.webdriver.support.ui import Select

            Select(field).select_by_value(value)
        elif field.get_attribute("type") == "date":
            driver.execute_script("arguments[0].value = arguments[1]", field, value)
        else:
            field.clear()
            field.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for_next_page(driver, form)


def wait_for_next_page(driver: WebDriver, element: WebElement) -> None:
    """Wait until the page holding ``element`` has been replaced (the form's answer arrived)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(element))


def screenshot(driver: WebDriver, name: str) -> None:
    """Save the whole page (the window made as tall as the document) under build/screenshots."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, max(1000, min(height + 120, 4000)))
    driver.save_screenshot(str(screenshots_dir() / name))
    driver.set_window_size(1400, 1000)


def alert_state(db: str, alert_id: int) -> str:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT state FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_wrong_key_is_refused_and_a_gateway_key_cannot_sign_in(
    served: tuple[Plant, ServiceThread, WebDriver],
) -> None:
    plant, svc, driver = served
    sign_in(driver, svc.url, "not-a-key")
    assert "密钥无效" in text_of(driver, "#login-error")
    sign_in(driver, svc.url, plant.gateway_token)
    assert "网关密钥不能登录" in text_of(driver, "#login-error")
    driver.get(svc.url + "/board")
    assert "/login" in driver.current_url, "the board needs a session"
    sign_in(driver, svc.url, plant.keys["officer"])
    assert driver.current_url.endswith("/board")
    assert plant.keys["officer"] not in driver.page_source
    assert f"{plant.registry.sites[0].id[:7]}-officer" in text_of(driver, "#who")


def test_a_reading_posted_over_http_appears_live_then_is_acknowledged_and_shelved(
    served: tuple[Plant, ServiceThread, WebDriver],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    plant, svc, driver = served
    sign_in(driver, svc.url, plant.keys["officer"])
    assert by_css(driver, "#no-alerts")
    WebDriverWait(driver, 30).until(
        lambda d: "on" in (d.find_element(By.ID, "live-state").get_attribute("class") or "")
    )
    driver.execute_script("window.sentinelNoReload = 'still here'")
    raise_orange(svc.url, plant, plant.devices[0])
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.alert-row[data-grade=orange]"))
    assert driver.execute_script("return window.sentinelNoReload") == "still here", "the page was reloaded"
    flash = driver.find_element(By.ID, "flash")
    assert flash.is_displayed()
    assert "二级 橙色" in flash.text
    assert plant.devices[0] in flash.text
    assert text_of(driver, ".count.grade-orange b") == "1"
    assert text_of(driver, "#unacked") == "1"
    screenshot(driver, "board.png")

    row = driver.find_element(By.CSS_SELECTOR, "tr.alert-row[data-grade=orange]")
    alert_id = int(row.get_attribute("data-alert") or 0)
    row.find_element(By.CSS_SELECTOR, "a").click()
    assert text_of(driver, "#alert-state") == "未确认"
    assert "GB/T 50493-2019" in text_of(driver, "#rule-source")
    assert driver.find_elements(By.CSS_SELECTOR, "#chart svg polyline")
    submit(driver, "form-ack", reason="已电话通知企业")
    assert text_of(driver, "#alert-state") == "已确认"
    submit(driver, "form-shelve", reason="企业正在抢修，暂时搁置", minutes="30")
    assert text_of(driver, "#alert-state") == "已搁置"
    history = text_of(driver, "#history")
    officer = f"{plant.devices[0].split('-')[0]}-officer"
    assert history.count(officer) == 2
    # The action's id in words, Chinese first; what the officer typed as typed.
    assert "确认：已电话通知企业" in history
    assert "搁置：企业正在抢修，暂时搁置" in history
    assert "报警：无 → 二级 橙色" in history
    assert "ack:" not in history
    assert "raise:" not in history
    # The expiry is data shown in the display zone (Asia/Shanghai by default), not UTC text baked into the reason.
    until = re.search(r"搁置至 (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", history)
    assert until is not None, history
    expected = datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None) + timedelta(minutes=30)
    assert abs(datetime.fromisoformat(until.group(1)) - expected) < timedelta(minutes=2)
    assert "+00:00" not in history
    screenshot(driver, "alert-detail.png")
    assert alert_state(plant.db, alert_id) == "shelved"


def test_escalate_and_walk_the_hazard_to_closed_with_an_evidence_file(
    served: tuple[Plant, ServiceThread, WebDriver], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    plant, svc, driver = served
    raise_orange(svc.url, plant, plant.devices[1])
    sign_in(driver, svc.url, plant.keys["supervisor"])
    wait_for(lambda: _open_alert(plant.db, plant.devices[1]) is not None, "the alert")
    driver.get(f"{svc.url}/alerts/{_open_alert(plant.db, plant.devices[1])}")
    submit(driver, "form-escalate", reason="甲烷浓度达到二级，列入隐患台账")
    assert "/hazards/" in driver.current_url
    assert text_of(driver, "#hazard-state") == "已登记"

    submit(driver, "hform-close", reason="想直接销号")
    assert text_of(driver, "#error-title") == "操作被拒绝"
    assert "closing needs a passed verification" in text_of(driver, "#error-message")
    title = driver.find_element(By.ID, "error-title")
    driver.back()
    wait_for_next_page(driver, title)

    photo = tmp_path / "整改后照片.png"
    photo.write_bytes(PNG)
    submit(driver, "hform-classify", level="major", reason="重大事故隐患")
    submit(
        driver,
        "hform-assign",
        deadline="2099-12-31",
        responsible_unit="某燃气公司",
        supervising_department="县应急管理局",
        reason="挂牌督办",
    )
    submit(
        driver,
        "hform-start_rectification",
        plan_responsibility="公司总经理",
        plan_measures="更换阀门",
        plan_funds="5 万元",
        plan_deadline="两周",
        plan_contingency="停气预案",
        reason="按方案整改",
    )
    form = driver.find_element(By.ID, "hform-request_verification")
    form.find_element(By.NAME, "file").send_keys(str(photo))
    submit(driver, "hform-request_verification", reason="整改完成，申请验收")
    assert text_of(driver, "#hazard-state") == "申请验收"
    assert "整改后照片.png" in text_of(driver, "#evidence")
    submit(driver, "hform-verify_pass", evidence_ref="现场验收记录 2026-001", reason="现场验收合格")
    submit(driver, "hform-close", reason="销号")
    assert text_of(driver, "#hazard-state") == "已销号"
    link = driver.find_element(By.CSS_SELECTOR, "#evidence a.file")
    shown = driver.execute_script(
        "return fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => b.byteLength)", link.get_attribute("href")
    )
    assert shown == len(PNG)
    assert driver.execute_script("return document.querySelector('#evidence img').naturalWidth") == 1
    screenshot(driver, "hazard-item.png")
    with psycopg.connect(plant.db) as conn:
        actors = {r[0] for r in conn.execute("SELECT actor FROM hazard_events")}
    assert actors == {f"{plant.devices[1].split('-')[0]}-supervisor"}


def test_a_form_posted_without_the_csrf_token_is_refused(served: tuple[Plant, ServiceThread, WebDriver]) -> None:
    plant, svc, driver = served
    raise_orange(svc.url, plant, plant.devices[0])
    sign_in(driver, svc.url, plant.keys["officer"])
    wait_for(lambda: _open_alert(plant.db, plant.devices[0]) is not None, "the alert")
    alert_id = _open_alert(plant.db, plant.devices[0])
    driver.get(f"{svc.url}/alerts/{alert_id}")
    driver.execute_script("document.querySelector('#form-ack input[name=csrf]').remove()")
    submit(driver, "form-ack", reason="forged")
    assert text_of(driver, "#error-title") == "无权执行此操作"
    assert "CSRF" in text_of(driver, "#error-message")
    assert alert_id is not None
    assert alert_state(plant.db, alert_id) == "active_unack"


def test_an_officer_cannot_reach_an_admin_action(served: tuple[Plant, ServiceThread, WebDriver]) -> None:
    from selenium.webdriver.common.by import By

    plant, svc, driver = served
    raise_orange(svc.url, plant, plant.devices[0])
    wait_for(lambda: _open_alert(plant.db, plant.devices[0]) is not None, "the alert")
    alert_id = _open_alert(plant.db, plant.devices[0])
    sign_in(driver, svc.url, plant.keys["officer"])
    driver.get(f"{svc.url}/alerts/{alert_id}")
    assert not driver.find_elements(By.ID, "form-remove_from_service"), "the page offers an admin action"
    assert not driver.find_elements(By.ID, "form-maintenance"), "maintenance is a supervisor's action"
    # Forge the admin action with this session's own CSRF token: the server refuses it as the API would.
    ack = driver.find_element(By.ID, "form-ack")
    driver.execute_script(
        "const f = document.getElementById('form-ack');"
        "f.querySelector('input[name=action]').value = 'remove_from_service';"
        "f.querySelector('input[name=reason]').value = 'forged';"
        "f.submit();"
    )
    wait_for_next_page(driver, ack)
    assert text_of(driver, "#error-title") == "无权执行此操作"
    assert "值班员" in text_of(driver, "#error-message")
    assert "管理员" in text_of(driver, "#error-message")
    assert alert_id is not None
    assert alert_state(plant.db, alert_id) == "active_unack"
    sign_in(driver, svc.url, plant.keys["admin"])
    driver.get(f"{svc.url}/alerts/{alert_id}")
    assert driver.find_elements(By.ID, "form-remove_from_service"), "the admin is offered the action"


def test_the_map_shows_the_alerting_site_in_its_grade_colour(served: tuple[Plant, ServiceThread, WebDriver]) -> None:
    from selenium.webdriver.common.by import By

    plant, svc, driver = served
    alerting, quiet = plant.registry.sites[0].id, plant.registry.sites[1].id
    raise_orange(svc.url, plant, plant.devices[0])
    wait_for(lambda: _open_alert(plant.db, plant.devices[0]) is not None, "the alert")
    sign_in(driver, svc.url, plant.keys["officer"])
    driver.get(svc.url + "/map")
    dot = driver.find_element(By.CSS_SELECTOR, f'a.site-dot[data-site="{alerting}"]')
    assert dot.get_attribute("data-grade") == "orange"
    assert dot.find_element(By.TAG_NAME, "circle").get_attribute("fill") == GRADE_COLOURS["orange"]
    other = driver.find_element(By.CSS_SELECTOR, f'a.site-dot[data-site="{quiet}"] circle')
    assert other.get_attribute("fill") == GRADE_COLOURS["normal"]
    assert {"town-0", "town-1"} <= {e.text for e in driver.find_elements(By.CSS_SELECTOR, "svg text.town")}
    screenshot(driver, "map.png")
    driver.get(f"{svc.url}/sites/{alerting}")
    assert driver.find_elements(By.CSS_SELECTOR, "#site-alerts tr.grade-orange")


def _open_alert(db: str, device: str) -> int | None:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT alert_id FROM alerts WHERE subject = %s AND state <> 'normal' AND rule_id = 'gas.ch4_lel'",
            (device,),
        ).fetchone()
    return None if row is None else int(row[0])
