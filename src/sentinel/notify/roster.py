"""The duty roster (值班表): who is on duty for a township and sector at a given moment.

A roster is a list of *shifts*, each with a township (none: the county-level shift), an optional sector, the
weekdays it runs (default every day), a start and end time in the roster's time zone (the display time zone unless
the file names one; an end at or before the start means the shift runs past midnight and belongs to the day it
starts), its officers (name, mobile, channels) and one supervisor. *Overrides* replace the regular shifts on one
date (holidays): on such a date only the override's shifts count, for shifts starting that day. A department head
(the last step of an escalation chain) is named once.

:meth:`Roster.on_duty` picks the most specific shift running at that moment: township and sector, then township,
then the county shift (with the sector, then without). A township with no shift running falls back to the
county-level shift and the answer says so (``fallback`` and ``note``), so the fallback is reported, not silent.

Files are YAML (``shifts:``/``overrides:``) or CSV (one row per person, see :func:`parse_csv`); every problem names
the file, the entry and the field. The loaded roster is stored in PostgreSQL (``duty_roster``) so every process
routes by the same one.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import yaml

from sentinel.errors import NotifyConfigError
from sentinel.store.text import NUL_REASON, nul_path

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
COUNTY = "全县"


@dataclass(frozen=True)
class Person:
    name: str
    mobile: str
    channels: tuple[str, ...] = ()  # channel names or kinds this person is reached on; empty: all
    email: str = ""

    def reachable_on(self, channel_name: str, channel_kind: str) -> bool:
        return not self.channels or channel_name in self.channels or channel_kind in self.channels


@dataclass(frozen=True)
class Shift:
    name: str
    start: time
    end: time
    officers: tuple[Person, ...]
    supervisor: Person | None
    township: str = ""  # "": the county-level shift
    sector: str = ""
    days: tuple[str, ...] = DAYS

    def runs_on(self, day: date) -> bool:
        return DAYS[day.weekday()] in self.days

    def window(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        begin = datetime.combine(day, self.start, tz)
        end = datetime.combine(day + timedelta(days=1) if self.end <= self.start else day, self.end, tz)
        return begin, end


@dataclass(frozen=True)
class Duty:
    """Who is on duty for an alert's township and sector at one moment."""

    township: str
    sector: str
    shift: Shift | None
    fallback: bool = False
    note: str = ""
    starts: datetime | None = None
    ends: datetime | None = None

    @property
    def officers(self) -> tuple[Person, ...]:
        return self.shift.officers if self.shift else ()

    @property
    def supervisor(self) -> Person | None:
        return self.shift.supervisor if self.shift else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "township": self.township,
            "sector": self.sector or None,
            "shift": self.shift.name if self.shift else None,
            "shift_township": (self.shift.township or COUNTY) if self.shift else None,
            "officers": [asdict(p) for p in self.officers],
            "supervisor": asdict(self.supervisor) if self.supervisor else None,
            "fallback": self.fallback,
            "note": self.note,
            "starts": self.starts.isoformat() if self.starts else None,
            "ends": self.ends.isoformat() if self.ends else None,
        }


@dataclass(frozen=True)
class Roster:
    shifts: tuple[Shift, ...]
    overrides: dict[date, tuple[Shift, ...]] = field(default_factory=dict)
    head: Person | None = None
    timezone: str = "Asia/Shanghai"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def townships(self) -> list[str]:
        names = {s.township for s in self.shifts} | {s.township for day in self.overrides.values() for s in day}
        return sorted(n for n in names if n)

    def shifts_of(self, day: date) -> tuple[Shift, ...]:
        if day in self.overrides:
            return self.overrides[day]
        return tuple(s for s in self.shifts if s.runs_on(day))

    def running(self, at: datetime) -> list[tuple[Shift, datetime, datetime]]:
        """Shifts running at ``at`` (the day's and the previous day's overnight shifts)."""
        local = at.astimezone(self.tz)
        out = []
        for day in (local.date() - timedelta(days=1), local.date()):
            for shift in self.shifts_of(day):
                begin, end = shift.window(day, self.tz)
                if begin <= local < end:
                    out.append((shift, begin, end))
        return out

    def on_duty(self, township: str, sector: str, at: datetime) -> Duty:
        running = self.running(at)

        def pick(town: str) -> tuple[Shift, datetime, datetime] | None:
            for want_sector in (sector, ""):
                for shift, begin, end in running:
                    if shift.township == town and shift.sector == want_sector:
                        return shift, begin, end
            return None

        own = pick(township) if township else None
        if own is not None:
            return Duty(township, sector, own[0], starts=own[1], ends=own[2])
        county = pick("")
        if township and township in self.townships():
            why = f"{township} 当前无值班班次，转县级值班"
        else:
            why = f"{township or '该乡镇'} 无值班表，转县级值班"
        if county is None:
            return Duty(township, sector, None, fallback=True, note=f"{why}；县级当前也无人值班")
        return Duty(township, sector, county[0], fallback=True, note=why, starts=county[1], ends=county[2])

    def to_document(self) -> dict[str, Any]:
        def shift(s: Shift) -> dict[str, Any]:
            return {
                "name": s.name,
                "township": s.township,
                "sector": s.sector,
                "days": list(s.days),
                "start": s.start.strftime("%H:%M"),
                "end": s.end.strftime("%H:%M"),
                "officers": [asdict(p) for p in s.officers],
                "supervisor": asdict(s.supervisor) if s.supervisor else None,
            }

        return {
            "timezone": self.timezone,
            "department_head": asdict(self.head) if self.head else None,
            "shifts": [shift(s) for s in self.shifts],
            "overrides": [
                {"date": d.isoformat(), "shifts": [shift(s) for s in ss]} for d, ss in self.overrides.items()
            ],
        }


# ---- parsing -------------------------------------------------------------------------------------------------


def _fail(where: str, what: str) -> NotifyConfigError:
    return NotifyConfigError(f"{where}: {what}")


def _person(raw: Any, where: str) -> Person:
    if not isinstance(raw, dict):
        raise _fail(where, "expected a mapping with name, mobile, channels")
    name, mobile = str(raw.get("name", "")).strip(), str(raw.get("mobile", "")).strip()
    if not name:
        raise _fail(f"{where}.name", "missing")
    if not (mobile.isdigit() and 5 <= len(mobile) <= 15):
        raise _fail(f"{where}.mobile", f"expected a mobile number of digits, got {mobile!r}")
    channels = raw.get("channels") or []
    if isinstance(channels, str):
        channels = [c.strip() for c in channels.replace(";", ",").split(",") if c.strip()]
    return Person(name, mobile, tuple(str(c) for c in channels), str(raw.get("email") or ""))


def _clock(raw: Any, where: str) -> time:
    text = str(raw).strip()
    try:
        hours, minutes = text.split(":")
        if text == "24:00":
            return time(0, 0)
        return time(int(hours), int(minutes))
    except ValueError:
        raise _fail(where, f"expected HH:MM, got {text!r}") from None


def _shift(raw: Any, where: str) -> Shift:
    if not isinstance(raw, dict):
        raise _fail(where, "expected a mapping")
    days = raw.get("days") or list(DAYS)
    if isinstance(days, str):
        days = [d.strip() for d in days.replace(";", ",").split(",") if d.strip()]
    days = [str(d).lower()[:3] for d in days]
    for d in days:
        if d not in DAYS:
            raise _fail(f"{where}.days", f"unknown day {d!r}; one of {', '.join(DAYS)}")
    officers = raw.get("officers") or []
    if not isinstance(officers, list) or not officers:
        raise _fail(f"{where}.officers", "at least one officer is required")
    supervisor = raw.get("supervisor")
    return Shift(
        name=str(raw.get("name") or where),
        start=_clock(raw.get("start", "00:00"), f"{where}.start"),
        end=_clock(raw.get("end", "24:00"), f"{where}.end"),
        officers=tuple(_person(p, f"{where}.officers[{i}]") for i, p in enumerate(officers)),
        supervisor=_person(supervisor, f"{where}.supervisor") if supervisor else None,
        township=str(raw.get("township") or "").strip(),
        sector=str(raw.get("sector") or "").strip(),
        days=tuple(days),
    )


def parse_document(doc: Any, source: str, default_tz: str) -> Roster:
    if not isinstance(doc, dict):
        raise _fail(source, "expected a mapping with shifts: (and optionally overrides:, department_head:)")
    nul = nul_path(doc)
    if nul is not None:  # the roster is stored as jsonb, which cannot hold it
        raise _fail(f"{source}: {nul}", NUL_REASON)
    tz = str(doc.get("timezone") or default_tz)
    try:
        ZoneInfo(tz)
    except (KeyError, ValueError):
        raise _fail(f"{source}: timezone", f"unknown time zone {tz!r}") from None
    raw_shifts = doc.get("shifts") or []
    if not isinstance(raw_shifts, list):
        raise _fail(f"{source}: shifts", "expected a list")
    shifts = tuple(_shift(s, f"{source}: shifts[{i}]") for i, s in enumerate(raw_shifts))
    overrides: dict[date, tuple[Shift, ...]] = {}
    for i, o in enumerate(doc.get("overrides") or []):
        where = f"{source}: overrides[{i}]"
        try:
            day = date.fromisoformat(str(o.get("date")))
        except (AttributeError, ValueError):
            raise _fail(f"{where}.date", "expected YYYY-MM-DD") from None
        overrides[day] = tuple(_shift(s, f"{where}.shifts[{j}]") for j, s in enumerate(o.get("shifts") or []))
    head = doc.get("department_head")
    roster = Roster(shifts, overrides, _person(head, f"{source}: department_head") if head else None, tz)
    if not roster.shifts and not roster.overrides:
        raise _fail(source, "the roster has no shifts")
    return roster


def parse_csv(text: str, source: str, default_tz: str) -> Roster:
    """CSV, one row per person: ``shift,township,sector,days,start,end,role,name,mobile,channels[,date][,email]``;
    ``role`` is officer, supervisor or head; ``date`` makes the row part of that day's override; days and channels
    are separated by ``;``."""
    shifts: dict[tuple[str, str], dict[str, Any]] = {}
    head: dict[str, Any] | None = None
    reader = csv.DictReader(io.StringIO(text))
    for n, row in enumerate(reader, start=2):
        where = f"{source}:{n}"
        person = {k: (row.get(k) or "").strip() for k in ("name", "mobile", "channels", "email")}
        role = (row.get("role") or "officer").strip()
        if role == "head":
            head = person
            continue
        key = ((row.get("date") or "").strip(), (row.get("shift") or f"{row.get('township')}-{row.get('start')}"))
        entry = shifts.setdefault(
            key,
            {k: (row.get(k) or "").strip() for k in ("township", "sector", "days", "start", "end")}
            | {"name": key[1], "officers": [], "where": where},
        )
        if role == "supervisor":
            entry["supervisor"] = person
        elif role == "officer":
            entry["officers"].append(person)
        else:
            raise _fail(f"{where}: role", f"expected officer, supervisor or head, got {role!r}")
    doc: dict[str, Any] = {"timezone": default_tz, "shifts": [], "overrides": [], "department_head": head}
    by_day: dict[str, list[dict[str, Any]]] = {}
    for (day, _), entry in shifts.items():
        (by_day.setdefault(day, []) if day else doc["shifts"]).append(entry)
    doc["overrides"] = [{"date": d, "shifts": s} for d, s in by_day.items()]
    return parse_document(doc, source, default_tz)


def load_file(path: Path, default_tz: str) -> Roster:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise _fail(str(path), f"cannot read ({exc.strerror})") from None
    if path.suffix.lower() == ".csv":
        return parse_csv(text, str(path), default_tz)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise _fail(where, "not valid YAML") from None
    return parse_document(doc, str(path), default_tz)


# ---- storage -------------------------------------------------------------------------------------------------


def save(conn: psycopg.Connection[Any], roster: Roster, source: str, now: datetime) -> None:
    with conn.transaction():
        conn.execute(
            """INSERT INTO duty_roster (id, document, source, loaded_at) VALUES (1, %s::jsonb, %s, %s)
               ON CONFLICT (id) DO UPDATE SET document = excluded.document, source = excluded.source,
                   loaded_at = excluded.loaded_at""",
            (json.dumps(roster.to_document(), ensure_ascii=False), source, now),
        )


def stored(conn: psycopg.Connection[Any], default_tz: str) -> Roster | None:
    row = conn.execute("SELECT document, source FROM duty_roster WHERE id = 1").fetchone()
    return None if row is None else parse_document(row[0], f"stored roster ({row[1]})", default_tz)
