"""The one interface every notification channel implements, and what a send can come back with.

A channel turns a :class:`Message` into one request to one service and classifies the answer as an
:class:`Outcome`: ``ok``; ``rate_limited`` (the service refuses for now: send later, never drop); ``config_error``
(bad signature, bad key, unknown template: retrying will not help, the operator must fix the channels file);
``failed`` (network trouble or a server error: retry with backoff); ``daily_limit`` (a per-number quota is used up:
hold until tomorrow). The ``detail`` text is written by Sentinel, never copied from a dependency's exception, and
never contains a secret.

*Group* channels (robots, webhooks) post one message to a group and mention the people on duty; *personal*
channels (SMS, voice, e-mail) send one message per person, addressed by ``recipient``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

GRADE_LABELS_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}


class Outcome(StrEnum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    CONFIG_ERROR = "config_error"
    FAILED = "failed"
    DAILY_LIMIT = "daily_limit"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True)
class Message:
    """What to say: a title, a markdown body (Chinese first), a plain short text for SMS, who to @, a link."""

    title: str
    markdown: str
    short: str
    grade: str
    mentions: tuple[str, ...] = ()
    link: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # template parameters (SMS, voice)


class Channel(Protocol):
    name: str
    kind: str
    group: bool  # True: one message to a group; False: one per person
    per_minute: int | None  # the service's own limit (messages a minute), None: no limit known
    daily_per_recipient: int | None  # a per-number quota (SMS), None: none

    def send(self, message: Message, recipient: str, now: datetime) -> SendResult: ...

    def describe(self) -> dict[str, Any]:
        """Settings fit to show: secrets replaced by "***"."""
        ...


def network_failure(exc: BaseException) -> SendResult:
    """A failure to reach the service, described without the dependency's message text."""
    if isinstance(exc, urllib.error.HTTPError):
        return SendResult(Outcome.FAILED, f"HTTP {exc.code}")
    if isinstance(exc, TimeoutError):
        return SendResult(Outcome.FAILED, "超时 (timeout)")
    return SendResult(Outcome.FAILED, f"无法连接 ({type(exc).__name__})")


def post_json(url: str, body: dict[str, Any], timeout_s: float) -> tuple[int, dict[str, Any]]:
    """POST JSON; returns (HTTP status, decoded JSON answer or {}). Raises OSError on network trouble."""
    data = json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), _json(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), _json(exc.read())


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def cut_utf8(text: str, limit: int, tail: str) -> str:
    """``text`` if it fits ``limit`` UTF-8 bytes, else its longest prefix that ends on a line or character
    boundary and still fits with ``tail`` appended."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len(tail.encode())
    cut = text.encode()[: max(0, room)].decode("utf-8", errors="ignore")
    line = cut.rfind("\n")
    if line > len(cut) // 2:
        cut = cut[:line]
    return cut.rstrip() + tail
