"""The duty roster: shifts across midnight, a holiday override, a township without a roster (county fallback,
reported), YAML and CSV giving the same answers, bad files named precisely, and `sentinel duty load` / `now`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sentinel.errors import NotifyConfigError
from sentinel.notify.roster import Roster, load_file, parse_document

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notify"
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(params=["roster.yaml", "roster.csv"])
def roster(request: pytest.FixtureRequest) -> Roster:
    return load_file(EXAMPLES / request.param, "Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def test_day_and_night_shift_across_midnight(roster: Roster) -> None:
    assert roster.on_duty("新庄镇", "gas", at("2026-12-04 10:00")).shift.name == "新庄镇白班"  # type: ignore[union-attr]
    evening = roster.on_duty("新庄镇", "gas", at("2026-12-04 23:30"))
    after_midnight = roster.on_duty("新庄镇", "gas", at("2026-12-05 02:00"))
    assert evening.shift == after_midnight.shift
    assert evening.shift is not None
    assert evening.shift.name == "新庄镇夜班"
    assert [p.name for p in after_midnight.officers] == ["赵六"]
    # the night shift that started on the 4th ends at 08:00 on the 5th, in the display time zone
    assert after_midnight.starts == at("2026-12-04 20:00")
    assert after_midnight.ends == at("2026-12-05 08:00")
    assert roster.on_duty("新庄镇", "", at("2026-12-05 08:00")).shift.name == "新庄镇白班"  # type: ignore[union-attr]
    assert not after_midnight.fallback
    assert after_midnight.supervisor is not None


def test_holiday_override_replaces_the_regular_shifts(roster: Roster) -> None:
    holiday = roster.on_duty("新庄镇", "gas", at("2026-10-01 10:00"))
    assert holiday.shift is not None
    assert holiday.shift.name == "国庆全天值班"
    assert holiday.fallback  # the override names no township shift: the county one answers, and says so
    # the night before the holiday: the regular overnight shift started on Sep 30 runs until 08:00 on Oct 1
    assert roster.on_duty("新庄镇", "gas", at("2026-10-01 07:00")).shift.name == "新庄镇夜班"  # type: ignore[union-attr]
    assert roster.on_duty("新庄镇", "gas", at("2026-10-02 10:00")).shift.name == "新庄镇白班"  # type: ignore[union-attr]


def test_township_without_roster_falls_back_to_county_and_reports_it(roster: Roster) -> None:
    duty = roster.on_duty("东山乡", "dust", at("2026-12-04 10:00"))
    assert duty.fallback
    assert duty.shift is not None
    assert duty.shift.name == "县应急局总值班"
    assert "东山乡 无值班表" in duty.note
    assert "县级" in duty.note
    assert duty.as_dict()["fallback"] is True
    assert duty.as_dict()["shift_township"] == "全县"


@pytest.mark.parametrize(
    ("sector", "moment", "expected", "fallback"),
    [
        ("gas", "2026-12-04 09:00", "河口镇工作日", False),  # Friday, gas
        ("dust", "2026-12-04 09:00", "县应急局总值班", True),  # another sector
        ("gas", "2026-12-05 09:00", "县应急局总值班", True),  # Saturday
        ("gas", "2026-12-04 18:00", "县应急局总值班", True),  # after hours
    ],
)
def test_sector_and_weekday_shifts(sector: str, moment: str, expected: str, fallback: bool) -> None:
    roster = load_file(EXAMPLES / "roster.yaml", "Asia/Shanghai")
    duty = roster.on_duty("河口镇", sector, at(moment))
    assert duty.shift is not None
    assert duty.shift.name == expected
    assert duty.fallback is fallback
    if fallback:
        assert "河口镇 当前无值班班次" in duty.note


def test_bad_roster_entries_are_named() -> None:
    doc = {"shifts": [{"name": "x", "start": "8点", "officers": [{"name": "a", "mobile": "1380000001"}]}]}
    with pytest.raises(NotifyConfigError, match=r"r.yaml: shifts\[0\].start: expected HH:MM"):
        parse_document(doc, "r.yaml", "Asia/Shanghai")
    doc = {"shifts": [{"name": "x", "officers": [{"name": "a", "mobile": "call me"}]}]}
    with pytest.raises(NotifyConfigError, match=r"shifts\[0\].officers\[0\].mobile"):
        parse_document(doc, "r.yaml", "Asia/Shanghai")
    with pytest.raises(NotifyConfigError, match=r"days: unknown day"):
        parse_document({"shifts": [{"days": ["funday"], "officers": [{"name": "a", "mobile": "138"}]}]}, "r", "UTC")


def test_duty_load_and_now_from_the_command_line(
    migrated_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sentinel.cli import main

    monkeypatch.setenv("SENTINEL_DATABASE_URL", migrated_db)
    with pytest.raises(SystemExit) as done:
        main(["duty", "load", str(EXAMPLES / "roster.yaml")])
    assert done.value.code == 0
    assert "值班表已加载" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["duty", "now", "--at", "2026-12-05T02:00:00+08:00"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "新庄镇: 新庄镇夜班 — 值班 赵六(13800000003)" in out
    assert "河口镇: 县应急局总值班" in out
    assert "⚠ 河口镇 当前无值班班次，转县级值班" in out
