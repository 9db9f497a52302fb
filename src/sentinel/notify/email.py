"""E-mail over SMTP with STARTTLS and authentication (stdlib :mod:`smtplib`), for reports and units that want it.

One message per recipient address. A refused login or a refused sender is a configuration error; a dropped
connection or a temporary (4xx) answer is retried.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sentinel.notify.channel import Message, Outcome, SendResult, network_failure


@dataclass
class SmtpMail:
    name: str
    host: str
    sender: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # trust this CA (a private mail server); else the system's
    timeout_s: float = 10.0
    kind: str = "email"
    group: bool = False
    per_minute: int | None = None
    daily_per_recipient: int | None = None

    def compose(self, message: Message, recipient: str, now: datetime) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self.sender
        mail["To"] = recipient
        mail["Date"] = format_datetime(now)
        mail["Message-ID"] = make_msgid(domain="sentinel.local")
        body = message.markdown + (f"\n\n详情 / details: {message.link}" if message.link else "")
        mail.set_content(body)
        return mail

    def send(self, message: Message, recipient: str, now: datetime) -> SendResult:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                if self.username:
                    self._login(smtp)
                smtp.send_message(self.compose(message, recipient, now))
        except smtplib.SMTPAuthenticationError as exc:
            return SendResult(Outcome.CONFIG_ERROR, f"SMTP 登录被拒绝 ({exc.smtp_code})")
        except smtplib.SMTPNotSupportedError:
            return SendResult(Outcome.CONFIG_ERROR, "SMTP 服务器不支持 STARTTLS 或认证")
        except smtplib.SMTPRecipientsRefused:
            return SendResult(Outcome.CONFIG_ERROR, "SMTP 拒绝收件人")
        except smtplib.SMTPResponseException as exc:
            outcome = Outcome.FAILED if 400 <= exc.smtp_code < 500 else Outcome.CONFIG_ERROR
            return SendResult(outcome, f"SMTP 应答 {exc.smtp_code}")
        except ssl.SSLError:
            return SendResult(Outcome.CONFIG_ERROR, "STARTTLS 失败: 证书不受信任或协议不符")
        except (smtplib.SMTPException, OSError) as exc:
            return network_failure(exc)
        return SendResult(Outcome.OK)

    def _login(self, smtp: smtplib.SMTP) -> None:
        """Log in with one mechanism (PLAIN, else LOGIN, else CRAM-MD5): one clear answer to a wrong password, rather
        than smtplib's trying each mechanism in turn."""
        smtp.ehlo_or_helo_if_needed()
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        mechanism = next((m for m in ("PLAIN", "LOGIN", "CRAM-MD5") if m in offered), None)
        if mechanism is None:
            raise smtplib.SMTPNotSupportedError("no AUTH mechanism offered")
        smtp.user, smtp.password = self.username or "", self.password or ""
        method = {"PLAIN": smtp.auth_plain, "LOGIN": smtp.auth_login, "CRAM-MD5": smtp.auth_cram_md5}[mechanism]
        smtp.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
            "starttls": self.starttls,
            "username": self.username,
            "password": "***" if self.password else None,
            "sender": self.sender,
        }
