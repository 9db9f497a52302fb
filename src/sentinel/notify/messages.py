"""What people read: alert, escalation-step and digest texts, Chinese first, times in the display time zone.

Contents are plain dicts (stored as JSON with each delivery, so a restart sends exactly what was routed):
``title``, ``markdown``, ``short`` (SMS-length) and ``params`` (SMS/voice template parameters).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sentinel.engine.catalog import GRADE_INDEX
from sentinel.notify.channel import GRADE_LABELS_ZH, Message

EVENTS = {"raise": "新预警", "escalate": "预警升级", "released": "预警解除抑制", "step": "升级通知", "remind": "提醒"}
ALERT_CLASS_NAMES = {"alarm": "报警", "warning": "预警", "comm": "通信故障"}
DIGEST_LINES = 15


def local(at: datetime | str, tz: ZoneInfo) -> str:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def alert_content(alert: dict[str, Any], event: str, tz: ZoneInfo, note: str = "") -> dict[str, Any]:
    grade = str(alert["grade"])
    where = alert.get("township") or "未知乡镇"
    what = f"{alert.get('site_id')} {alert.get('subject')} {alert.get('rule_id')}"
    # Outbox rows queued by 0.1 name the alert class ``kind``.
    alert_class = ALERT_CLASS_NAMES.get(str(alert.get("alert_class", alert.get("kind"))), "报警")
    title = f"【{GRADE_LABELS_ZH.get(grade, grade)}{alert_class}】{where} {EVENTS.get(event, event)}"
    lines = [
        f"**{title}**",
        f"- 地点: {where} / {alert.get('site_id')}（{alert.get('sector')}）",
        f"- 对象: {alert.get('subject')}  规则: {alert.get('rule_id')}",
        f"- 等级: {GRADE_LABELS_ZH.get(grade, grade)}  时间: {local(alert['at'], tz)}",
        f"- 告警编号: {alert['alert_id']}",
    ]
    if note:
        lines.append(f"- {note}")
    return {
        "title": title,
        "markdown": "\n".join(lines),
        "short": f"{title}: {what}，{local(alert['at'], tz)}，编号{alert['alert_id']}，请尽快确认。",
        "params": {
            "grade": GRADE_LABELS_ZH.get(grade, grade),
            "township": str(where),
            "site": str(alert.get("site_id")),
            "alert": str(alert["alert_id"]),
        },
        "alert_id": int(alert["alert_id"]),
        "what": what,
    }


def digest_content(
    channel: str, township: str, items: list[dict[str, Any]], now: datetime, tz: ZoneInfo
) -> dict[str, Any]:
    """ "12 条新预警 · 新庄镇: 3 橙色, 9 黄色 — ..." with the first lines listed, highest grade first."""
    grades = Counter(str(i["grade"]) for i in items)
    counts = "，".join(f"{grades[g]} {GRADE_LABELS_ZH[g]}" for g in sorted(grades, key=lambda g: -GRADE_INDEX[g]))
    title = f"{len(items)} 条新预警 · {township}: {counts}"
    ordered = sorted(items, key=lambda i: (-GRADE_INDEX.get(str(i["grade"]), 0), i["delivery_id"]))
    lines = [f"**{title}**", f"汇总时间: {local(now, tz)}（消息过多，已合并发送）"]
    for item in ordered[:DIGEST_LINES]:
        grade = GRADE_LABELS_ZH.get(str(item["grade"]), str(item["grade"]))
        what = item["content"].get("what") or item["content"].get("title", "")
        lines.append(f"- {grade} {what}（编号 {item['alert_id']}）")
    if len(ordered) > DIGEST_LINES:
        lines.append(f"- …… 另有 {len(ordered) - DIGEST_LINES} 条，请在 Sentinel 中查看")
    return {"title": title, "markdown": "\n".join(lines), "short": title, "params": {"count": str(len(items))}}


def message_of(
    content: dict[str, Any], grade: str, mentions: list[str] | tuple[str, ...], link_base: str | None
) -> Message:
    alert_id = content.get("alert_id")
    link = f"{link_base.rstrip('/')}/{alert_id}" if link_base and alert_id is not None else None
    return Message(
        title=str(content["title"]),
        markdown=str(content["markdown"]),
        short=str(content["short"]),
        grade=grade,
        mentions=tuple(mentions),
        link=link,
        params={str(k): str(v) for k, v in dict(content.get("params") or {}).items()},
    )
