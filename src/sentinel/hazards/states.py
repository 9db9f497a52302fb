"""The major-hazard closed loop of DOMAIN.md as a checked state machine (pure; the register stores it).

::

    recorded (登记) --classify--> classified (判定) --assign--> assigned (交办 / 挂牌督办)
      --start_rectification--> rectifying (整改中) --request_verification--> verification_requested (申请验收)
      --verify_pass--> verified (验收) --close--> closed (销号)
    verification_requested --verify_fail--> rectifying          (a failed verification returns to 整改中)

Each action names the roles that may take it and what it needs: classify a level (major / general); assign a
deadline, a responsible unit and a supervising department; start rectification a plan covering the five
落实 (responsibility, measures, funds, deadline, contingency); request verification evidence references;
close only from verified, i.e. after a passed verification. ``comment`` records an event without moving.

Overdue (逾期) is not a state: an item not yet verified whose deadline has passed is overdue, stays listed, and
its supervision level escalates with the days overdue (:func:`supervision_level`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sentinel.errors import TransitionError

STATES = ("recorded", "classified", "assigned", "rectifying", "verification_requested", "verified", "closed")
OPEN_STATES = STATES[:-1]
SOURCES = ("alert", "self_inspection", "supervisory_inspection", "public_report", "insurer_inspection")
SECTORS = ("gas", "dust", "casting", "charging", "other")
PLAN_KEYS = ("responsibility", "measures", "funds", "deadline", "contingency")
SUPERVISION = ("none", "township", "county", "city")
ESCALATE_AFTER_DAYS = (1, 15, 30)  # overdue by this many days → township, county, city supervision


@dataclass(frozen=True)
class Move:
    source: tuple[str, ...]
    target: str | None  # None: stays where it is
    roles: tuple[str, ...]


MOVES: dict[str, Move] = {
    "classify": Move(("recorded",), "classified", ("supervisor",)),
    "assign": Move(("classified",), "assigned", ("supervisor",)),
    "start_rectification": Move(("assigned",), "rectifying", ("officer", "supervisor")),
    "request_verification": Move(("rectifying",), "verification_requested", ("officer", "supervisor")),
    "verify_pass": Move(("verification_requested",), "verified", ("supervisor",)),
    "verify_fail": Move(("verification_requested",), "rectifying", ("supervisor",)),
    "close": Move(("verified",), "closed", ("supervisor",)),
    "comment": Move(STATES, None, ("officer", "supervisor")),
}


@dataclass(frozen=True)
class Request:
    """What an action carries; which fields matter depends on the action."""

    reason: str = ""
    level: str | None = None
    deadline: date | None = None
    responsible_unit: str | None = None
    supervising_department: str | None = None
    plan: dict[str, str] | None = None
    evidence: tuple[str, ...] = ()


def check(hazard: str, state: str, action: str, role: str, req: Request) -> str:
    """The state after ``action``, or TransitionError saying why not."""
    move = MOVES.get(action)
    if move is None:
        raise TransitionError(hazard, state, action, f"unknown action; one of {', '.join(MOVES)}")
    if role != "admin" and role not in move.roles:
        raise TransitionError(hazard, state, action, f"role {role!r} may not {action}; needs {'/'.join(move.roles)}")
    target = move.target or state
    if state not in move.source:
        if action == "close":
            raise TransitionError(hazard, state, "closed", "closing needs a passed verification (state verified)")
        raise TransitionError(hazard, state, target, f"{action} is allowed only from {', '.join(move.source)}")
    if not req.reason.strip():
        raise TransitionError(hazard, state, target, "a reason is required")
    if action == "classify" and req.level not in ("major", "general"):
        raise TransitionError(hazard, state, target, "classify needs level 'major' or 'general'")
    if action == "assign":
        missing = [
            name
            for name, value in (
                ("deadline", req.deadline),
                ("responsible_unit", req.responsible_unit),
                ("supervising_department", req.supervising_department),
            )
            if not value
        ]
        if missing:
            raise TransitionError(hazard, state, target, f"assign needs {', '.join(missing)}")
    if action == "start_rectification":
        missing = [k for k in PLAN_KEYS if not (req.plan or {}).get(k)]
        if missing:
            raise TransitionError(hazard, state, target, f"the rectification plan lacks {', '.join(missing)} (五落实)")
    if action in ("request_verification", "verify_pass") and not req.evidence:
        raise TransitionError(hazard, state, target, f"{action} needs at least one evidence reference")
    return target


def is_overdue(state: str, deadline: date | None, today: date) -> bool:
    return deadline is not None and state not in ("verified", "closed") and today > deadline


def supervision_level(state: str, deadline: date | None, today: date) -> int:
    """0 none, 1 township, 2 county, 3 city: escalates with the days past the deadline."""
    if not is_overdue(state, deadline, today):
        return 0
    assert deadline is not None
    days = (today - deadline).days
    return sum(1 for limit in ESCALATE_AFTER_DAYS if days >= limit)
