"""The alert state machine after ISA-18.2, as pure functions over an :class:`AlertFacts` record.

An alert's displayed ``state`` is derived from a few facts, never set by hand, so no sequence of operations can
leave it contradicting them:

* ``out_of_service`` (an admin took the alert's point out of service) wins over everything;
* ``shelved`` (an officer hid it until ``shelved_until``, with a reason);
* ``suppressed`` (held back by design: device in maintenance, plant not operating, or the device's own
  communication fault is open, so its downstream process alarms are not shown while the comm fault is);
* otherwise the ISA-18.2 core: condition active and not acknowledged → ``active_unack``; active and acknowledged
  → ``active_ack``; condition gone but never acknowledged on a *latching* rule → ``cleared_unack``; else
  ``normal`` (the alert is closed; the next raise opens a new one).

Latching rules are those whose condition is itself a major hazard or that reach orange or red: an officer must see
them even when they cleared on their own. Operator actions (:func:`check_action`) are allowed only from the
states listed in :data:`ACTIONS`; anything else raises :class:`~sentinel.errors.TransitionError` with a reason
the API turns into 409.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sentinel.errors import TransitionError

STATES = ("active_unack", "active_ack", "cleared_unack", "normal", "shelved", "suppressed", "out_of_service")
OPEN_STATES = tuple(s for s in STATES if s != "normal")
GRADES = ("blue", "yellow", "orange", "red")

# Which states each operator action may start from.
ACTIONS: dict[str, tuple[str, ...]] = {
    "ack": ("active_unack", "cleared_unack"),
    "shelve": ("active_unack", "active_ack"),  # a cleared alert has nothing left to hide: acknowledge it
    "unshelve": ("shelved",),
    "comment": (*OPEN_STATES, "normal"),
    "escalate": (*OPEN_STATES, "normal"),
    "remove_from_service": ("active_unack", "active_ack", "cleared_unack", "shelved", "suppressed"),
    "return_to_service": ("out_of_service",),
}
MAX_SHELVE_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class AlertFacts:
    """What decides an alert's state."""

    condition_active: bool
    acked: bool
    latching: bool
    shelved_until: datetime | None = None
    suppressed_reason: str | None = None
    out_of_service: bool = False


def derive_state(facts: AlertFacts, now: datetime) -> str:
    """The ISA-18.2 state these facts mean at ``now`` (an expired shelve no longer counts)."""
    if facts.out_of_service:
        return "out_of_service"
    if facts.shelved_until is not None and facts.shelved_until > now and facts.condition_active:
        return "shelved"
    if facts.suppressed_reason and facts.condition_active:
        return "suppressed"
    if facts.condition_active:
        return "active_ack" if facts.acked else "active_unack"
    if facts.latching and not facts.acked:
        return "cleared_unack"
    return "normal"


def check_action(alert: str, state: str, action: str) -> None:
    """Refuse an operator action the current state does not allow."""
    allowed = ACTIONS.get(action)
    if allowed is None:
        raise TransitionError(alert, state, action, f"unknown action {action!r}")
    if state not in allowed:
        raise TransitionError(alert, state, action, f"{action} is allowed only from {', '.join(allowed)}")


def apply_action(
    alert: str, state: str, facts: AlertFacts, action: str, now: datetime, until: datetime | None = None
) -> AlertFacts:
    """The facts after an operator action (after :func:`check_action`)."""
    check_action(alert, state, action)
    if action == "ack":
        return replace(facts, acked=True)
    if action == "shelve":
        if until is None or until <= now:
            raise TransitionError(alert, state, "shelved", "a shelve needs an expiry in the future")
        if (until - now).total_seconds() > MAX_SHELVE_S:
            raise TransitionError(alert, state, "shelved", "a shelve may last at most 7 days")
        return replace(facts, shelved_until=until)
    if action == "unshelve":
        return replace(facts, shelved_until=None)
    if action == "remove_from_service":
        return replace(facts, out_of_service=True)
    if action == "return_to_service":
        return replace(facts, out_of_service=False)
    return facts


def is_latching(max_grade: int, major_hazard: bool) -> bool:
    """Latching: a major-hazard rule, or one reaching orange (3) or red (4)."""
    return major_hazard or max_grade >= 3
