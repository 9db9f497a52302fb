"""A flood, with two notifiers working the same tables at once: 500 alerts within one minute across three
townships reach a DingTalk and a WeCom robot without ever exceeding their limit of 20 messages a minute; red and
orange go first and alone, the rest in per-township digests; every alert is accounted for (sent alone or in a
digest, none queued at the end), none lost, none sent twice. The clock is the test's, so ten minutes of sending
take seconds."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sentinel.notify.service import Notifier, PassReport
from tests.notify.receivers import DingTalkRobotServer, FakeClock, WeComRobotServer
from tests.notify.support import TOWNSHIPS, make_county, notifier, raise_alert

T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
SECRET = "SECflood-secret-0123456789"
ALERT_NO = re.compile(r"编号:? ?(\d+)")


@pytest.fixture
def robots() -> Iterator[tuple[FakeClock, DingTalkRobotServer, WeComRobotServer]]:
    clock = FakeClock(T0)
    ding = DingTalkRobotServer(clock, "flood", secret=SECRET)
    wecom = WeComRobotServer(clock, "flood-key")
    yield clock, ding, wecom
    ding.close()
    wecom.close()


def grade_of(n: int) -> str:
    return "red" if n % 25 == 0 else "orange" if n % 7 == 0 else "yellow" if n % 3 else "blue"


@pytest.mark.slow
def test_500_alerts_in_a_minute_within_robot_limits_none_lost_none_twice(
    migrated_db: str, robots: tuple[FakeClock, DingTalkRobotServer, WeComRobotServer], tmp_path: Path
) -> None:
    clock, ding, wecom = robots
    county = make_county(migrated_db)
    channels = {
        "channels": [
            {"name": "钉钉值班群", "kind": "dingtalk", "webhook": ding.webhook, "secret": SECRET},
            {"name": "企微值班群", "kind": "wecom", "webhook": wecom.webhook},
        ]
    }
    workers = [notifier(migrated_db, channels, clock, tmp_path) for _ in range(2)]  # two processes' worth
    pool = ThreadPoolExecutor(2)

    def run_pass() -> PassReport:
        reports: list[PassReport] = list(pool.map(Notifier.run_once, workers))  # both at once, same tables
        return reports[0]

    grades: dict[int, str] = {}
    with psycopg.connect(migrated_db) as conn:
        # 500 alerts over 60 seconds, while the notifier runs a pass every 2 seconds
        for second in range(0, 60, 2):
            for k in range(500 * second // 60, 500 * (second + 2) // 60):
                town = TOWNSHIPS[k % 3]
                grades[raise_alert(conn, county, town, grade_of(k), k, clock())] = grade_of(k)
            run_pass()
            clock.advance(seconds=2)
    assert len(grades) == 500
    for _ in range(300):  # then ten more minutes of passes
        report = run_pass()
        clock.advance(seconds=2)
    pool.shutdown()
    assert report.accounting["queued"] == 0

    for robot in (ding, wecom):
        assert robot.rate_limit_answers == 0, "the robot's limit was exceeded"
        times = [at for at, _ in robot.accepted]
        for at in times:
            assert sum(1 for t in times if at - timedelta(minutes=1) < t <= at) <= 20
        seen: Counter[int] = Counter()
        for text in robot.texts():
            seen.update(int(n) for n in ALERT_NO.findall(text))
        singles = [t for t in robot.texts() if "条新预警" not in t]
        digests = [t for t in robot.texts() if "条新预警" in t]
        assert digests
        assert any(re.search(r"\d+ 条新预警 · (新庄镇|河口镇|东山乡): ", d) for d in digests)
        # the first minute: only red and orange alone, red before orange
        first_minute = [
            t for (at, _), t in zip(robot.accepted, robot.texts(), strict=True) if at < T0 + timedelta(minutes=1)
        ]
        alone_first = [t for t in first_minute if "条新预警" not in t]
        assert alone_first
        assert all("红色" in t or "橙色" in t for t in alone_first)
        assert len(singles) + len(digests) == len(robot.accepted)

    with psycopg.connect(migrated_db) as conn:
        states: dict[str, int] = dict(
            conn.execute("SELECT state, count(*) FROM notify_deliveries GROUP BY state").fetchall()
        )
        assert states == {"sent": states.get("sent", 0), "digested": states.get("digested", 0)}
        assert sum(states.values()) == 1000  # one per alert per robot
        per_alert = conn.execute(
            "SELECT alert_id, count(*) FILTER (WHERE state IN ('sent', 'digested')) FROM notify_deliveries GROUP BY 1"
        ).fetchall()
        assert {a for a, _ in per_alert} == set(grades)
        assert all(n == 2 for _, n in per_alert)
        # every red alert was reached within the first two minutes, alone or in a digest
        red_done = conn.execute("SELECT max(done_at) FROM notify_deliveries WHERE grade = 'red'").fetchone()
        assert red_done is not None
        assert red_done[0] < T0 + timedelta(minutes=2)
    # DingTalk's digests name each alert number once; the WeCom markdown carries the same numbers
    for robot in (ding, wecom):
        seen = Counter(int(n) for text in robot.texts() for n in ALERT_NO.findall(text))
        listed = set(seen)
        digested_unlisted = sum(int(m) for text in robot.texts() for m in re.findall(r"另有 (\d+) 条", text))
        assert max(seen.values()) == 1, "an alert was sent twice"
        assert len(listed) + digested_unlisted == 500
        last = max(at for at, _ in robot.accepted)
        print(
            f"{type(robot).__name__}: {len(robot.accepted)} messages for 500 alerts, "
            f"{sum('条新预警' in t for t in robot.texts())} digests, last at +{(last - T0).total_seconds():.0f}s"
        )
