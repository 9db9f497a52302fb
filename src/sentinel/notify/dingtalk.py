"""DingTalk (钉钉) custom group robot: markdown messages, @ by mobile number, signed or keyword security mode.

Signed mode, as DingTalk documents it: ``timestamp`` is the current time in milliseconds; the string to sign is
``timestamp + "\\n" + secret``; the signature is HMAC-SHA256 of it keyed with the secret, base64-encoded, then
URL-encoded, and both go into the query string (``&timestamp=...&sign=...``). DingTalk refuses a timestamp more
than an hour from its own clock. Keyword mode: the message must contain one of the robot's keywords, so the
keyword is put in the title when the text lacks it.

Answers: ``errcode`` 0 is success; 130101 ("send too fast, exceed 20 times per minute") is the rate limit, after
which DingTalk blocks the robot for a while: retried later; 310000 (signature mismatch, keyword missing, IP not
allowed) and 300001 (unknown access token) are configuration errors: reported, not retried for ever.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sentinel.notify.channel import Message, Outcome, SendResult, network_failure, post_json

RATE_LIMITED = {130101}
CONFIG_ERRORS = {310000, 300001, 300005, 400101, 400102}


def sign(secret: str, timestamp_ms: int) -> str:
    """The URL-encoded signature DingTalk expects for ``timestamp_ms``."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def signed_url(webhook: str, secret: str, now: datetime) -> str:
    timestamp_ms = int(now.timestamp() * 1000)
    separator = "&" if "?" in webhook else "?"
    return f"{webhook}{separator}timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


@dataclass
class DingTalkRobot:
    name: str
    webhook: str  # https://oapi.dingtalk.com/robot/send?access_token=...
    secret: str | None = None  # signed mode ("SEC...")
    keyword: str | None = None  # keyword mode
    per_minute: int | None = 20
    timeout_s: float = 5.0
    kind: str = "dingtalk"
    group: bool = True
    daily_per_recipient: int | None = None

    def body(self, message: Message) -> dict[str, Any]:
        title, text = message.title, message.markdown
        if self.keyword and self.keyword not in title + text:
            title = f"{self.keyword} {title}"
            text = f"{self.keyword}\n\n{text}"
        if message.mentions:  # DingTalk shows the @ only when the text names the number
            text += "\n\n" + " ".join(f"@{m}" for m in message.mentions)
        if message.link:
            text += f"\n\n[详情 / details]({message.link})"
        return {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
            "at": {"atMobiles": list(message.mentions), "isAtAll": False},
        }

    def send(self, message: Message, recipient: str, now: datetime) -> SendResult:
        url = signed_url(self.webhook, self.secret, now) if self.secret else self.webhook
        try:
            status, answer = post_json(url, self.body(message), self.timeout_s)
        except OSError as exc:
            return network_failure(exc)
        return classify(status, answer)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "webhook": redact_query(self.webhook),
            "mode": "signed" if self.secret else ("keyword" if self.keyword else "none"),
            "secret": "***" if self.secret else None,
            "keyword": self.keyword,
            "per_minute": self.per_minute,
        }


def classify(status: int, answer: dict[str, Any]) -> SendResult:
    code = answer.get("errcode")
    if status == 200 and code == 0:
        return SendResult(Outcome.OK)
    if code in RATE_LIMITED:
        return SendResult(Outcome.RATE_LIMITED, f"钉钉限流 errcode {code}")
    if code in CONFIG_ERRORS:
        return SendResult(Outcome.CONFIG_ERROR, f"钉钉拒绝 errcode {code}: 检查签名密钥、关键词或 access_token")
    return SendResult(Outcome.FAILED, f"钉钉应答 HTTP {status} errcode {code}")


def redact_query(url: str) -> str:
    """The URL with every query value replaced by *** (tokens and keys live there)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    hidden = "&".join(f"{k}=***" for k, _ in query)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, hidden, ""))
