"""WeCom (企业微信) group robot: markdown or text messages to ``.../cgi-bin/webhook/send?key=KEY``.

Limits WeCom documents: text content at most 2,048 bytes, markdown content at most 4,096 bytes (UTF-8); longer
content is cut here on a line boundary with a link to the full alert, never sent to be refused. Mentions by mobile
number work only in text messages (``mentioned_mobile_list``), so a message with people to mention is sent as
text; markdown otherwise.

Answers: ``errcode`` 0 is success; 45009 ("api freq out of limit", about 20 messages a minute per robot) is the
rate limit: retried later; 93000 (invalid webhook URL: bad key) and 40058 (content too long, a bug here) are
configuration errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sentinel.notify.channel import Message, Outcome, SendResult, cut_utf8, network_failure, post_json
from sentinel.notify.dingtalk import redact_query

TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 4096
RATE_LIMITED = {45009}
CONFIG_ERRORS = {93000, 40058, 40008}


@dataclass
class WeComRobot:
    name: str
    webhook: str  # https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...
    per_minute: int | None = 20
    timeout_s: float = 5.0
    kind: str = "wecom"
    group: bool = True
    daily_per_recipient: int | None = None

    def body(self, message: Message) -> dict[str, Any]:
        tail = f"\n…（内容过长已截断）详情: {message.link}" if message.link else "\n…（内容过长已截断）"
        if message.mentions:
            content = cut_utf8(f"{message.title}\n{message.markdown}", TEXT_MAX_BYTES, tail)
            return {"msgtype": "text", "text": {"content": content, "mentioned_mobile_list": list(message.mentions)}}
        text = f"### {message.title}\n{message.markdown}"
        if message.link:
            text += f"\n[详情 / details]({message.link})"
        return {"msgtype": "markdown", "markdown": {"content": cut_utf8(text, MARKDOWN_MAX_BYTES, tail)}}

    def send(self, message: Message, recipient: str, now: datetime) -> SendResult:
        try:
            status, answer = post_json(self.webhook, self.body(message), self.timeout_s)
        except OSError as exc:
            return network_failure(exc)
        code = answer.get("errcode")
        if status == 200 and code == 0:
            return SendResult(Outcome.OK)
        if code in RATE_LIMITED:
            return SendResult(Outcome.RATE_LIMITED, f"企业微信限流 errcode {code}")
        if code in CONFIG_ERRORS:
            return SendResult(Outcome.CONFIG_ERROR, f"企业微信拒绝 errcode {code}: 检查机器人 key 与消息长度")
        return SendResult(Outcome.FAILED, f"企业微信应答 HTTP {status} errcode {code}")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "webhook": redact_query(self.webhook),
            "per_minute": self.per_minute,
        }
