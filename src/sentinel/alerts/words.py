"""An alert in words for a person, Chinese first: the grade names and the event history's reasons.

The lifecycle stores an event's reason in its own words: "ack: 已电话通知企业" from an officer, "raise: none → orange
(value 55, seq 2)" from the engine (:mod:`.lifecycle`, :mod:`.actions`). :func:`event_reason` puts the action's id
into words for the reader; what the officer typed stays as typed, and a reason of another shape is shown as stored.
Both readers use it: ``sentinel alerts show`` (in Chinese) and the web console's history (in the reader's
language); the console's label catalogue takes its grade names from :data:`GRADE_LABELS`.
"""

from __future__ import annotations

import re

# grade: (zh-CN, en)
GRADE_LABELS: dict[str, tuple[str, str]] = {
    "red": ("一级 红色", "red (1)"),
    "orange": ("二级 橙色", "orange (2)"),
    "yellow": ("三级 黄色", "yellow (3)"),
    "blue": ("四级 蓝色", "blue (4)"),
    "normal": ("正常", "normal"),
}
_NO_GRADE = ("无", "none")  # the engine's grade before a raise and after a clear

_ENGINE_REASON = re.compile(r"^(raise|escalate|de-escalate|clear): (\w+) → (\w+) \(value (\S+), seq (\d+)\)$")
_ESCALATED = re.compile(r"^escalated to hazard (\d+): (.*)$", re.DOTALL)
_OFFICER_REASON = re.compile(r"^(ack|shelve|unshelve|comment|out_of_service|in_service): (.*)$", re.DOTALL)
_ENGINE_MOVES = {
    "raise": ("报警", "raised"),
    "escalate": ("升级", "escalated"),
    "de-escalate": ("降级", "de-escalated"),
    "clear": ("恢复", "cleared"),
}
_OFFICER_ACTIONS = {
    "ack": ("确认", "acknowledged"),
    "shelve": ("搁置", "shelved"),
    "unshelve": ("取消搁置", "unshelved"),
    "comment": ("备注", "comment"),
    "out_of_service": ("停用", "out of service"),
    "in_service": ("恢复使用", "back in service"),
}


def grade_label(lang: str, grade: str) -> str:
    """``grade_label("zh", "red")`` → 一级 红色; the engine's "none" in words too; an unknown grade as it is."""
    pair = _NO_GRADE if grade == "none" else GRADE_LABELS.get(grade)
    if pair is None:
        return grade
    return pair[1] if lang == "en" else pair[0]


def event_reason(lang: str, reason: str) -> str:
    """An alert event's stored reason as the history shows it in ``lang`` ("en", else Chinese)."""
    i = 1 if lang == "en" else 0
    sep = ": " if lang == "en" else "："
    engine = _ENGINE_REASON.match(reason)
    if engine:
        move, before, after, value, seq = engine.groups()
        grades = " → ".join(grade_label(lang, g) for g in (before, after))
        detail = f" (value {value}, seq {seq})" if lang == "en" else f"（值 {value}，序号 {seq}）"
        return f"{_ENGINE_MOVES[move][i]}{sep}{grades}{detail}"
    escalated = _ESCALATED.match(reason)
    if escalated and lang != "en":
        return f"转入隐患台账 #{escalated.group(1)}：{escalated.group(2)}"
    officer = _OFFICER_REASON.match(reason)
    if officer:
        action, said = officer.groups()
        return f"{_OFFICER_ACTIONS[action][i]}{sep}{said}" if said != action else _OFFICER_ACTIONS[action][i]
    return reason
