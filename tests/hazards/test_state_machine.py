"""Hypothesis stateful test of the hazard register: no sequence of calls reaches an illegal state, and every
change leaves an event row (who, when, from, to, why) continuing the previous one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from sentinel.errors import TransitionError
from sentinel.hazards import register
from sentinel.hazards.states import MOVES, PLAN_KEYS, SOURCES, STATES, Request

# The closed loop as the test reads DOMAIN.md, written out independently of the code under test.
LOOP = {
    ("recorded", "classify"): "classified",
    ("classified", "assign"): "assigned",
    ("assigned", "start_rectification"): "rectifying",
    ("rectifying", "request_verification"): "verification_requested",
    ("verification_requested", "verify_pass"): "verified",
    ("verification_requested", "verify_fail"): "rectifying",
    ("verified", "close"): "closed",
}
SUPERVISOR_ONLY = {"classify", "assign", "verify_pass", "verify_fail", "close"}
FULL = Request(
    reason="checked on site",
    level="major",
    deadline=date(2026, 12, 31),
    responsible_unit="plant safety office",
    supervising_department="county emergency bureau",
    plan=dict.fromkeys(PLAN_KEYS, "set"),
    evidence=("photo:1",),
)
requests = st.one_of(
    st.just(FULL),
    st.just(Request()),
    st.just(Request(reason="no details")),
    st.builds(Request, reason=st.just("partial"), level=st.sampled_from([None, "major", "minor"])),
)


def expected_next(state: str, action: str, role: str, req: Request) -> str | None:
    """Where a call should land, or None when it must be refused."""
    if action == "comment":
        return state if req.reason.strip() else None
    target = LOOP.get((state, action))
    if target is None or (action in SUPERVISOR_ONLY and role == "officer"):
        return None
    needs = {
        "classify": req.level in ("major", "general"),
        "assign": bool(req.deadline and req.responsible_unit and req.supervising_department),
        "start_rectification": bool(req.plan) and all((req.plan or {}).get(k) for k in PLAN_KEYS),
        "request_verification": bool(req.evidence),
        "verify_pass": bool(req.evidence),
    }
    return target if req.reason.strip() and needs.get(action, True) else None


@pytest.fixture
def machine_db(migrated_db: str) -> str:
    return migrated_db


def test_hazard_register_state_machine(machine_db: str) -> None:
    reached: set[str] = set()

    class Register(RuleBasedStateMachine):
        hazards = Bundle("hazards")

        @initialize()
        def open_db(self) -> None:
            self.conn = psycopg.connect(machine_db, autocommit=True)
            self.now = datetime(2026, 11, 1, tzinfo=UTC)
            self.model: dict[int, str] = {}
            self.events: dict[int, int] = {}

        def teardown(self) -> None:
            self.conn.close()

        @rule(target=hazards, source=st.sampled_from(SOURCES), sector=st.sampled_from(["gas", "dust", "other"]))
        def create(self, source: str, sector: str) -> int:
            self.now += timedelta(minutes=1)
            hazard_id = register.create(
                self.conn, title="t", sector=sector, township="town-1", source=source, actor="officer-a", now=self.now
            )
            self.model[hazard_id] = "recorded"
            self.events[hazard_id] = 1
            return hazard_id

        @rule(
            hazard=hazards,
            action=st.sampled_from(list(MOVES)),
            role=st.sampled_from(["officer", "supervisor"]),
            req=requests,
        )
        def act(self, hazard: int, action: str, role: str, req: Request) -> None:
            self.now += timedelta(minutes=1)
            want = expected_next(self.model[hazard], action, role, req)
            try:
                after = register.transition(
                    self.conn, hazard, action, role=role, actor=f"{role}-x", req=req, now=self.now
                )
            except TransitionError as exc:
                refused = str(exc)
                assert want is None, f"{action} by {role} from {self.model[hazard]} refused: {refused}"
                return
            assert want is not None, f"{action} by {role} from {self.model[hazard]} was allowed"
            assert after["state"] == want
            self.model[hazard] = want
            self.events[hazard] += 1

        @rule(hazard=hazards)
        def every_illegal_move_is_refused(self, hazard: int) -> None:
            """From where this hazard is, each action the loop forbids, with everything it could need: refused."""
            for action in MOVES:
                for role in ("officer", "supervisor"):
                    if expected_next(self.model[hazard], action, role, FULL) is None:
                        try:
                            register.transition(
                                self.conn, hazard, action, role=role, actor="probe", req=FULL, now=self.now
                            )
                        except TransitionError:
                            continue
                        raise AssertionError(f"{action} by {role} from {self.model[hazard]} was allowed")

        @rule(hazard=hazards, fail=st.booleans())
        def advance(self, hazard: int, fail: bool) -> None:
            """The next step of the loop with everything it needs (so long runs reach 销号)."""
            state = self.model[hazard]
            nexts = [a for (s, a) in LOOP if s == state and (a != "verify_fail" or fail)]
            if nexts:
                self.act(hazard, nexts[-1] if fail else nexts[0], "supervisor", FULL)
                reached.add(self.model[hazard])

        @invariant()
        def consistent(self) -> None:
            for hazard_id, state in self.model.items():
                h: dict[str, Any] = register.get(self.conn, hazard_id)
                assert h["state"] == state in STATES
                if state == "closed":
                    assert h["verification"] == "passed"
                    assert h["closed_at"] is not None
                events = h["events"]
                assert len(events) == self.events[hazard_id]
                previous = None
                for e in events:
                    assert e["actor"]
                    assert e["at"] is not None
                    assert e["reason"]
                    assert e["to_state"] in STATES
                    assert e["from_state"] == previous
                    previous = e["to_state"]
                assert previous == state

    Register.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=40,
        deadline=None,
        derandomize=True,  # the coverage check below must not depend on luck
        suppress_health_check=[HealthCheck.too_slow],
    )
    Register.TestCase().runTest()
    assert {"closed", "rectifying", "verified"} <= reached  # the runs did walk the whole loop
