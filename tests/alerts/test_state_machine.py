"""Hypothesis stateful test of the alert lifecycle: engine transitions, comm faults, maintenance and every operator
action in any order never reach an illegal state; every change leaves an event row (who, when, from, to, why)
continuing the alert's previous one; refused actions change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sentinel.alerts import actions
from sentinel.alerts.lifecycle import apply_transitions, facts_of
from sentinel.alerts.states import STATES, derive_state
from sentinel.engine import Transition, load_rules
from sentinel.errors import TransitionError
from tests.alerts.support import make_plant

RULES = load_rules()
GRADES = ("none", "blue", "yellow", "orange")
# The operator actions as the test reads ISA-18.2, written out independently of the code under test.
ALLOWED_FROM = {
    "ack": {"active_unack", "cleared_unack"},
    "shelve": {"active_unack", "active_ack"},
    "unshelve": {"shelved"},
    "comment": set(STATES),
    "remove_from_service": {"active_unack", "active_ack", "cleared_unack", "shelved", "suppressed"},
    "return_to_service": {"out_of_service"},
}
NEEDS_REASON = {"shelve", "comment", "remove_from_service"}


def test_alert_lifecycle_state_machine(migrated_db: str) -> None:
    plant = make_plant(migrated_db)
    devices = plant.devices[:2]
    seen: set[tuple[str, str]] = set()

    class Alerts(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.conn = psycopg.connect(migrated_db, autocommit=True)
            self.conn.execute("DELETE FROM alert_reports")
            self.conn.execute("DELETE FROM outbox")
            self.conn.execute("DELETE FROM alert_events")
            self.conn.execute("DELETE FROM hazards")
            self.conn.execute("DELETE FROM alerts")
            self.conn.execute("UPDATE devices SET maintenance = false")
            self.now = datetime(2026, 11, 1, tzinfo=UTC)
            self.ts_us = 1_764_000_000_000_000
            self.grade: dict[tuple[str, str], str] = {}
            self.seq = 0

        def teardown(self) -> None:
            self.conn.close()

        def _engine(self, rule_id: str, device: str, to: str) -> None:
            before = self.grade.get((rule_id, device), "none")
            if before == to:
                return
            self.ts_us += 1_000_000
            self.seq += 1
            kind = "raise" if before == "none" else "clear" if to == "none" else "escalate"
            t = Transition(rule_id, device, device, before, to, kind, self.ts_us, 1.0, self.seq)
            with self.conn.transaction():
                apply_transitions(self.conn, [t], RULES, self.now)
            self.grade[(rule_id, device)] = to

        @rule(device=st.sampled_from(devices), to=st.sampled_from(GRADES))
        def methane(self, device: str, to: str) -> None:
            self._engine("gas.ch4_lel", device, to)

        @rule(device=st.sampled_from(devices), to=st.sampled_from(("none", "blue")))
        def comm(self, device: str, to: str) -> None:
            self._engine("gas.comm_loss", device, to)

        @rule(device=st.sampled_from(devices), on=st.booleans())
        def maintenance(self, device: str, on: bool) -> None:
            self.conn.execute("UPDATE devices SET maintenance = %s WHERE device = %s", (on, device))

        @rule(minutes=st.integers(1, 120))
        def time_passes(self, minutes: int) -> None:
            self.now += timedelta(minutes=minutes)
            actions.expire_shelves(self.conn, self.now)

        def _alerts(self) -> list[int]:
            # Open alerts first: most actions are about them.
            sql = "SELECT alert_id FROM alerts ORDER BY state = 'normal', alert_id DESC"
            return [r[0] for r in self.conn.execute(sql)]

        @precondition(lambda self: bool(self._alerts()))
        @rule(
            pick=st.integers(0, 3),
            action=st.sampled_from(list(ALLOWED_FROM)),
            reason=st.sampled_from(["", "crew on site"]),
            shelve_minutes=st.sampled_from([-5, 30, 60 * 24 * 8]),
            role=st.sampled_from(["officer-1", "admin-1"]),
        )
        def operator(self, pick: int, action: str, reason: str, shelve_minutes: int, role: str) -> None:
            ids = self._alerts()
            alert_id = ids[pick % len(ids)]
            before = actions.get_alert(self.conn, alert_id)
            seen.add((before["state"], action))
            until = self.now + timedelta(minutes=shelve_minutes)
            ok = before["state"] in ALLOWED_FROM[action] and (bool(reason) or action not in NEEDS_REASON)
            if action == "shelve":
                ok = ok and 0 < shelve_minutes <= 7 * 24 * 60
            try:
                after = actions.act(self.conn, alert_id, action, role, reason, self.now, until=until)
            except TransitionError:
                assert not ok, f"{action} from {before['state']} was refused"
                assert actions.get_alert(self.conn, alert_id) == before  # nothing changed, no event
                return
            assert ok, f"{action} from {before['state']} was allowed"
            assert len(after["events"]) == len(before["events"]) + 1
            last = after["events"][-1]
            assert (last["actor"], last["from_state"], last["to_state"]) == (role, before["state"], after["state"])

        @precondition(lambda self: bool(self._alerts()))
        @rule(action=st.sampled_from(list(ALLOWED_FROM)), role=st.sampled_from(["officer-2", "admin-2"]))
        def operator_on_newest_open(self, action: str, role: str) -> None:
            self.operator(0, action, "checked", 30, role)

        @precondition(lambda self: bool(self._alerts()))
        @rule(pick=st.integers(0, 3))
        def every_refused_action_changes_nothing(self, pick: int) -> None:
            ids = self._alerts()
            alert_id = ids[pick % len(ids)]
            before = actions.get_alert(self.conn, alert_id)
            for action, allowed in ALLOWED_FROM.items():
                if before["state"] in allowed:
                    continue
                try:
                    actions.act(
                        self.conn,
                        alert_id,
                        action,
                        "probe",
                        "checked",
                        self.now,
                        until=self.now + timedelta(minutes=30),
                    )
                except TransitionError:
                    assert actions.get_alert(self.conn, alert_id) == before
                    continue
                raise AssertionError(f"{action} from {before['state']} was allowed")

        @invariant()
        def legal(self) -> None:
            rows = self.conn.execute(
                "SELECT alert_id, rule_id, subject, state, condition_active, acked, latching, shelved_until, "
                "suppressed_reason FROM alerts"
            ).fetchall()
            open_subjects = [(r[1], r[2]) for r in rows if r[3] != "normal"]
            assert len(open_subjects) == len(set(open_subjects))  # one open alert per (rule, subject)
            names = (
                "alert_id",
                "rule_id",
                "subject",
                "state",
                "condition_active",
                "acked",
                "latching",
                "shelved_until",
                "suppressed_reason",
            )
            for row in rows:
                alert: dict[str, Any] = dict(zip(names, row, strict=True))
                assert alert["state"] in STATES
                assert alert["state"] == derive_state(facts_of(alert), self.now), alert
                events = actions.get_alert(self.conn, alert["alert_id"])["events"]
                previous = None
                for e in events:
                    assert e["actor"]
                    assert e["at"] is not None
                    assert e["reason"]
                    assert e["to_state"] in STATES
                    assert e["from_state"] == previous
                    previous = e["to_state"]
                assert previous == alert["state"]

    Alerts.TestCase.settings = settings(
        max_examples=60,  # 25 reached every corner below only by luck of the seed (a renamed import moved it)
        stateful_step_count=40,
        deadline=None,
        derandomize=True,  # the coverage check below must not depend on luck
        suppress_health_check=[HealthCheck.too_slow],
    )
    Alerts.TestCase().runTest()
    # The runs did reach the interesting corners (so the checks above were exercised there).
    assert {
        ("active_ack", "ack"),
        ("active_unack", "shelve"),
        ("shelved", "unshelve"),
        ("cleared_unack", "ack"),
    } <= seen
    assert {s for s, _ in seen} >= {"suppressed", "out_of_service", "active_ack"}
