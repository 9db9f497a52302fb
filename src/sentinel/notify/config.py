"""The channels file: which channels exist (with their secrets), what each receives, and the escalation chains.

YAML, for example (``examples/notify/channels.yaml``)::

    link_base: https://sentinel.example.cn/alerts/     # optional: a link to each alert
    channels:
      - name: 新庄镇钉钉群
        kind: dingtalk                # dingtalk | wecom | sms | voice | email | webhook
        webhook: https://oapi.dingtalk.com/robot/send?access_token=...
        secret: SEC...                # signed mode; or keyword: 预警
        townships: [新庄镇]            # routes; empty or absent: everything
        grades: [red, orange, yellow]
    escalation:
      red:
        steps:
          - {after_min: 0, to: officer, channels: [短信]}
          - {after_min: 5, to: supervisor, channels: [短信, 电话]}
          - {after_min: 15, to: head, channels: [短信, 电话]}
        remind_every_min: 10

Every problem raises :class:`~sentinel.errors.NotifyConfigError` naming the file, the entry and the field. Group
channels (robots, webhooks) get every routed alert event; personal channels (SMS, voice, e-mail) are used by the
escalation steps. :meth:`ChannelsFile.describe` is what may be shown: secrets are replaced by ``***``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from sentinel.engine.catalog import ALERT_GRADES
from sentinel.errors import NotifyConfigError
from sentinel.notify.channel import Channel
from sentinel.notify.dingtalk import DingTalkRobot, redact_query
from sentinel.notify.email import SmtpMail
from sentinel.notify.sms import AliyunCall
from sentinel.notify.wecom import WeComRobot

KINDS = ("dingtalk", "wecom", "sms", "voice", "email", "webhook")
AUDIENCES = ("officer", "supervisor", "head")


@dataclass(frozen=True)
class Route:
    grades: tuple[str, ...] = ()
    townships: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()

    def matches(self, grade: str, township: str, sector: str) -> bool:
        return (
            (not self.grades or grade in self.grades)
            and (not self.townships or township in self.townships)
            and (not self.sectors or sector in self.sectors)
        )


@dataclass(frozen=True)
class Step:
    after: timedelta
    audience: str
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Chain:
    steps: tuple[Step, ...]
    remind_every: timedelta | None = None


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str
    secret: str
    route: Route


@dataclass
class ChannelsFile:
    channels: dict[str, Channel] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    webhooks: list[Webhook] = field(default_factory=list)
    link_base: str | None = None
    block_minutes: float = 10.0  # how long a robot that answered "rate limited" is left alone

    def group_channels(self) -> list[Channel]:
        return [c for c in self.channels.values() if c.group]

    def describe(self) -> dict[str, Any]:
        return {
            "channels": [
                c.describe() | {"routes": _route_dict(self.routes.get(name, Route()))}
                for name, c in self.channels.items()
            ],
            "webhooks": [
                {"name": w.name, "url": redact_query(w.url), "secret": "***"} | _route_dict(w.route)
                for w in self.webhooks
            ],
            "escalation": {
                grade: {
                    "steps": [
                        {"after_min": s.after.total_seconds() / 60, "to": s.audience, "channels": list(s.channels)}
                        for s in chain.steps
                    ],
                    "remind_every_min": chain.remind_every.total_seconds() / 60 if chain.remind_every else None,
                }
                for grade, chain in self.chains.items()
            },
        }


def _route_dict(route: Route) -> dict[str, list[str]]:
    return {"grades": list(route.grades), "townships": list(route.townships), "sectors": list(route.sectors)}


def _need(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if value is None or str(value).strip() == "":
        raise NotifyConfigError(f"{where}.{key}: missing")
    return str(value)


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise NotifyConfigError(f"{where}: expected a list")
    return tuple(str(x) for x in raw)


def _channel(raw: dict[str, Any], where: str) -> Channel | Webhook:
    name, kind = _need(raw, "name", where), _need(raw, "kind", where)
    per_minute = int(raw.get("per_minute", 20))
    if kind == "dingtalk":
        webhook = _need(raw, "webhook", where)
        if not (raw.get("secret") or raw.get("keyword")):
            raise NotifyConfigError(f"{where}: a DingTalk robot needs secret (signed mode) or keyword (keyword mode)")
        return DingTalkRobot(name, webhook, raw.get("secret"), raw.get("keyword"), per_minute)
    if kind == "wecom":
        return WeComRobot(name, _need(raw, "webhook", where), per_minute)
    if kind in ("sms", "voice"):
        provider = str(raw.get("provider", "aliyun"))
        if provider != "aliyun":
            raise NotifyConfigError(f"{where}.provider: only aliyun is implemented, got {provider!r}")
        default_endpoint = "https://dysmsapi.aliyuncs.com/" if kind == "sms" else "https://dyvmsapi.aliyuncs.com/"
        return AliyunCall(
            name,
            _need(raw, "access_key_id", where),
            _need(raw, "access_key_secret", where),
            _need(raw, "template_code", where),
            sign_name=_need(raw, "sign_name", where) if kind == "sms" else "",
            endpoint=str(raw.get("endpoint", default_endpoint)),
            called_show_number=str(raw.get("called_show_number", "")),
            kind=kind,
            daily_per_recipient=int(raw.get("daily_limit_per_number", 10)),
        )
    if kind == "email":
        return SmtpMail(
            name,
            _need(raw, "host", where),
            _need(raw, "sender", where),
            port=int(raw.get("port", 587)),
            starttls=bool(raw.get("starttls", True)),
            username=raw.get("username"),
            password=raw.get("password"),
            ca_file=raw.get("ca_file"),
        )
    if kind == "webhook":
        secret = _need(raw, "secret", where)
        if len(secret) < 8:
            raise NotifyConfigError(f"{where}.secret: at least 8 characters")
        return Webhook(name, _need(raw, "url", where), secret, Route())
    raise NotifyConfigError(f"{where}.kind: unknown kind {kind!r}; one of {', '.join(KINDS)}")


def parse(doc: Any, source: str) -> ChannelsFile:
    if not isinstance(doc, dict):
        raise NotifyConfigError(f"{source}: expected a mapping with channels: and escalation:")
    out = ChannelsFile(link_base=doc.get("link_base"), block_minutes=float(doc.get("block_minutes", 10)))
    for i, raw in enumerate(doc.get("channels") or []):
        where = f"{source}: channels[{i}]"
        if not isinstance(raw, dict):
            raise NotifyConfigError(f"{where}: expected a mapping")
        route = Route(
            _strings(raw.get("grades"), f"{where}.grades"),
            _strings(raw.get("townships"), f"{where}.townships"),
            _strings(raw.get("sectors"), f"{where}.sectors"),
        )
        for g in route.grades:
            if g not in ALERT_GRADES:
                raise NotifyConfigError(f"{where}.grades: unknown grade {g!r}; one of red, orange, yellow, blue")
        channel = _channel(raw, where)
        if isinstance(channel, Webhook):
            out.webhooks.append(Webhook(channel.name, channel.url, channel.secret, route))
            continue
        if channel.name in out.channels:
            raise NotifyConfigError(f"{where}.name: {channel.name!r} is used twice")
        out.channels[channel.name] = channel
        out.routes[channel.name] = route
    for grade, raw in (doc.get("escalation") or {}).items():
        where = f"{source}: escalation.{grade}"
        if grade not in ALERT_GRADES:
            raise NotifyConfigError(f"{where}: unknown grade {grade!r}")
        steps = []
        for j, s in enumerate(raw.get("steps") or []):
            audience = str(s.get("to", ""))
            if audience not in AUDIENCES:
                raise NotifyConfigError(f"{where}.steps[{j}].to: expected one of {', '.join(AUDIENCES)}")
            names = _strings(s.get("channels"), f"{where}.steps[{j}].channels")
            for n in names:
                if n not in out.channels:
                    raise NotifyConfigError(f"{where}.steps[{j}].channels: no channel named {n!r}")
            steps.append(Step(timedelta(minutes=float(s.get("after_min", 0))), audience, names))
        if [s.after for s in steps] != sorted(s.after for s in steps):
            raise NotifyConfigError(f"{where}.steps: after_min must not decrease from one step to the next")
        remind = raw.get("remind_every_min")
        out.chains[grade] = Chain(tuple(steps), timedelta(minutes=float(remind)) if remind else None)
    return out


def load(path: Path) -> ChannelsFile:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NotifyConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise NotifyConfigError(f"{path}{f':{mark.line + 1}' if mark else ''}: not valid YAML") from None
    return parse(doc, str(path))
