"""``sentinel hazards …`` and ``sentinel alerts …`` (in-process) over the same service layer as the API:
record, walk the loop, refused close (one line, exit 2), statistics, alert listing and acknowledgement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest

from sentinel.alerts.lifecycle import apply_transitions
from sentinel.cli import main
from sentinel.engine import Transition, load_rules
from sentinel.hazards import register
from sentinel.hazards.states import PLAN_KEYS, Request
from tests.alerts.support import make_plant


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def sentinel(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run the ``sentinel`` command line in this process (its exit code, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", "300")

    def run(db: str, *args: str) -> Ran:
        monkeypatch.setenv("SENTINEL_DATABASE_URL", db)
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out = capsys.readouterr()
        return Ran(int(exited.value.code or 0), out.out, out.err)

    return run


def test_hazard_loop_and_alert_ack_from_the_command_line(migrated_db: str, sentinel: Callable[..., Ran]) -> None:
    made = sentinel(
        migrated_db,
        "hazards",
        "create",
        "standing water in casting pit",
        "--sector",
        "casting",
        "--township",
        "town-9",
        "--source",
        "self_inspection",
        "--as",
        "plant-safety",
    )
    assert made.returncode == 0, made.stderr
    hid = made.stdout.split()[1]
    refused = sentinel(migrated_db, "hazards", "move", hid, "close", "--reason", "drained")
    assert refused.returncode == 2
    assert "passed verification" in refused.stderr
    moved = sentinel(
        migrated_db,
        "hazards",
        "move",
        hid,
        "classify",
        "--level",
        "major",
        "--reason",
        "criteria 3.2",
        "--as",
        "inspector-li",
    )
    assert moved.returncode == 0, moved.stderr
    full = Request("ok", None, date(2099, 1, 1), "plant", "county", dict.fromkeys(PLAN_KEYS, "yes"), ("photo:1",))
    with psycopg.connect(migrated_db) as conn:  # the rest of the loop through the same functions the CLI calls
        for action in ("assign", "start_rectification", "request_verification", "verify_pass", "close"):
            register.transition(conn, int(hid), action, role="supervisor", actor="s", req=full, now=datetime.now(UTC))
    shown = sentinel(migrated_db, "hazards", "show", hid)
    assert "closed" in shown.stdout
    assert "inspector-li" in shown.stdout
    year = datetime.now(UTC).year
    stats = sentinel(migrated_db, "hazards", "stats", "--start", f"{year}-01-01", "--end", f"{year + 1}-01-01")
    assert stats.returncode == 0, stats.stderr
    assert "casting" in stats.stdout
    assert "1.0" in stats.stdout  # closure rate: the one item was closed

    plant = make_plant(migrated_db)
    d = plant.devices[0]
    with psycopg.connect(migrated_db) as conn, conn.transaction():
        t = Transition("gas.ch4_lel", d, d, "none", "yellow", "raise", 1_764_300_000_000_000, 30.0, 1)
        alert_id = apply_transitions(conn, [t], load_rules(), datetime.now(UTC)).new_alerts[0]
    listed = sentinel(migrated_db, "alerts", "list", "--open")
    assert d in listed.stdout
    acked = sentinel(migrated_db, "alerts", "ack", str(alert_id), "--as", "duty-wang")
    assert acked.returncode == 0, acked.stderr
    assert "active_ack" in acked.stdout
    twice = sentinel(migrated_db, "alerts", "ack", str(alert_id))
    assert twice.returncode == 2
    assert "only from" in twice.stderr


def test_people_read_times_in_the_display_zone(
    migrated_db: str, sentinel: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    plant = make_plant(migrated_db)
    d = plant.devices[1]
    with psycopg.connect(migrated_db) as conn, conn.transaction():
        t = Transition("gas.ch4_lel", d, d, "none", "yellow", "raise", 1_764_300_000_000_000, 30.0, 1)
        alert_id = apply_transitions(conn, [t], load_rules(), datetime.now(UTC)).new_alerts[0]
        row = conn.execute("SELECT raised_at FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
    assert row is not None
    raised: datetime = row[0]
    shanghai = raised.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    utc = raised.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert shanghai != utc
    monkeypatch.setenv("SENTINEL_DISPLAY_TZ", "Asia/Shanghai")
    for args in (("alerts", "list"), ("alerts", "show", str(alert_id))):
        shown = sentinel(migrated_db, *args)
        assert shown.returncode == 0, shown.stderr
        assert shanghai in shown.stdout, args
        assert utc not in shown.stdout, args
        assert "Asia/Shanghai" in shown.stdout
    # A shelve's expiry in the history: data, shown in the display zone like every other time.
    shelved = sentinel(migrated_db, "alerts", "shelve", str(alert_id), "--reason", "企业抢修", "--minutes", "90")
    assert shelved.returncode == 0, shelved.stderr
    with psycopg.connect(migrated_db) as conn:
        event = conn.execute(
            "SELECT reason, shelved_until FROM alert_events WHERE alert_id = %s AND reason LIKE 'shelve:%%'",
            (alert_id,),
        ).fetchone()
    assert event is not None
    assert event[0] == "shelve: 企业抢修", "the expiry is not baked into the reason"
    shown = sentinel(migrated_db, "alerts", "show", str(alert_id))
    assert event[1].astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M") in shown.stdout
    assert event[1].astimezone(UTC).strftime("%Y-%m-%d %H:%M") not in shown.stdout
    monkeypatch.setenv("SENTINEL_DISPLAY_TZ", "UTC")
    assert utc in sentinel(migrated_db, "alerts", "list").stdout


def test_alert_history_reads_in_words(migrated_db: str, sentinel: Callable[..., Ran]) -> None:
    """``alerts show`` prints each event's reason as the console does in Chinese, not the lifecycle's action ids."""
    plant = make_plant(migrated_db)
    d = plant.devices[2]
    with psycopg.connect(migrated_db) as conn, conn.transaction():
        t = Transition("gas.ch4_lel", d, d, "none", "yellow", "raise", 1_764_300_000_000_000, 30.0, 1)
        alert_id = apply_transitions(conn, [t], load_rules(), datetime.now(UTC)).new_alerts[0]
    acked = sentinel(migrated_db, "alerts", "ack", str(alert_id), "--as", "duty-wang", "--reason", "已电话通知企业")
    assert acked.returncode == 0, acked.stderr
    shown = sentinel(migrated_db, "alerts", "show", str(alert_id))
    assert shown.returncode == 0, shown.stderr
    assert "报警：无 → 三级 黄色（值 30，序号 1）" in shown.stdout
    assert "确认：已电话通知企业" in shown.stdout
    assert "raise:" not in shown.stdout
    assert "ack:" not in shown.stdout


def test_hazard_stats_default_to_this_month_in_the_display_zone(
    migrated_db: str, sentinel: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTINEL_DISPLAY_TZ", "Asia/Shanghai")
    made = sentinel(migrated_db, "hazards", "create", "dust on ducts", "--sector", "dust", "--township", "town-3",
                    "--source", "self_inspection")  # fmt: skip
    assert made.returncode == 0, made.stderr
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    stats = sentinel(migrated_db, "hazards", "stats")
    assert stats.returncode == 0, stats.stderr
    first = f"{now.year}-{now.month:02d}-01 00:00:00"
    assert f"period: {first} – " in stats.stdout
    assert "(Asia/Shanghai)" in stats.stdout
    dust = next(line for line in stats.stdout.splitlines() if "dust" in line)
    assert [c.strip() for c in dust.split("│")[1:-1]][:3] == ["dust", "0", "1"]  # stock_start 0, increment 1
    nothing = sentinel(migrated_db, "hazards", "stats", "--start", "1999-01-01")
    assert "period: 1999-01-01 00:00:00 – 1999-02-01 00:00:00" in nothing.stdout
    assert "dust" not in nothing.stdout.split("period")[1].split("\n", 1)[1]
