"""Each channel against a local receiver that behaves like the real service: DingTalk's signature and keyword modes
and its error codes, WeCom's key and length limits, Aliyun's request signature for SMS and voice, SMTP with
STARTTLS and authentication."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sentinel.notify.channel import Message, Outcome
from sentinel.notify.dingtalk import DingTalkRobot
from sentinel.notify.email import SmtpMail
from sentinel.notify.sms import AliyunCall
from sentinel.notify.wecom import MARKDOWN_MAX_BYTES, TEXT_MAX_BYTES, WeComRobot
from tests.notify.receivers import AliyunServer, DingTalkRobotServer, FakeClock, WeComRobotServer

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
SECRET = "SEC0123456789abcdef-robot-secret"


def message(text: str = "甲烷浓度超限", mentions: tuple[str, ...] = ()) -> Message:
    return Message("【红色报警】新庄镇 新预警", f"**{text}**", text, "red", mentions, "http://s.local/alerts/1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ding(clock: FakeClock) -> Iterator[DingTalkRobotServer]:
    server = DingTalkRobotServer(clock, "tok123", secret=SECRET)
    yield server
    server.close()


def test_dingtalk_signed_message_is_accepted_with_mentions(ding: DingTalkRobotServer, clock: FakeClock) -> None:
    robot = DingTalkRobot("群", ding.webhook, secret=SECRET)
    result = robot.send(message(mentions=("13800000001",)), "群", clock())
    assert result.outcome is Outcome.OK, result
    sent = ding.accepted[0][1]
    assert sent["msgtype"] == "markdown"
    assert sent["at"]["atMobiles"] == ["13800000001"]
    assert "@13800000001" in sent["markdown"]["text"]


def test_dingtalk_wrong_secret_and_stale_timestamp_are_configuration_errors(
    ding: DingTalkRobotServer, clock: FakeClock
) -> None:
    wrong = DingTalkRobot("群", ding.webhook, secret="SECwrong")
    assert wrong.send(message(), "群", clock()).outcome is Outcome.CONFIG_ERROR
    right = DingTalkRobot("群", ding.webhook, secret=SECRET)
    # signed with a clock two hours behind DingTalk's: refused like DingTalk refuses it
    assert right.send(message(), "群", datetime(2026, 12, 5, 0, 0, tzinfo=UTC)).outcome is Outcome.CONFIG_ERROR
    assert [code for _, code in ding.refused] == [310000, 310000]
    assert not ding.accepted


def test_dingtalk_keyword_mode_adds_the_keyword(clock: FakeClock) -> None:
    server = DingTalkRobotServer(clock, "kw", keyword="安全预警")
    try:
        assert DingTalkRobot("群", server.webhook, keyword="安全预警").send(message(), "群", clock()).ok
        assert DingTalkRobot("群", server.webhook).send(message(), "群", clock()).outcome is Outcome.CONFIG_ERROR
    finally:
        server.close()


def test_dingtalk_answers_its_rate_limit_code_after_20_in_a_minute(ding: DingTalkRobotServer, clock: FakeClock) -> None:
    robot = DingTalkRobot("群", ding.webhook, secret=SECRET)
    results = []
    for _ in range(21):
        results.append(robot.send(message(), "群", clock()).outcome)
        clock.advance(seconds=1)
    assert results[:20] == [Outcome.OK] * 20
    assert results[20] is Outcome.RATE_LIMITED
    clock.advance(minutes=2)  # DingTalk keeps the robot blocked for minutes, not just the rest of the minute
    assert robot.send(message(), "群", clock()).outcome is Outcome.RATE_LIMITED


def test_wecom_cuts_long_text_and_markdown_to_their_limits(clock: FakeClock) -> None:
    server = WeComRobotServer(clock, "key-abc")
    try:
        robot = WeComRobot("企微群", server.webhook)
        long = "\n".join(f"第 {i} 行：新庄镇 甲烷浓度超限，请立即处置。" for i in range(400))
        assert robot.send(message(long, mentions=("13800000001",)), "企微群", clock()).ok
        assert robot.send(message(long), "企微群", clock()).ok
        text, markdown = server.accepted[0][1], server.accepted[1][1]
        assert text["msgtype"] == "text"
        assert text["text"]["mentioned_mobile_list"] == ["13800000001"]
        assert len(text["text"]["content"].encode()) <= TEXT_MAX_BYTES
        assert len(markdown["markdown"]["content"].encode()) <= MARKDOWN_MAX_BYTES
        assert text["text"]["content"].endswith("http://s.local/alerts/1")  # cut cleanly, with the link
        bad = WeComRobot("企微群", server.webhook.replace("key-abc", "key-wrong"))
        assert bad.send(message(), "企微群", clock()).outcome is Outcome.CONFIG_ERROR
        assert {code for _, code in server.refused} == {93000}
    finally:
        server.close()


def test_wecom_rate_limit_code_after_20(clock: FakeClock) -> None:
    server = WeComRobotServer(clock, "k")
    try:
        robot = WeComRobot("企微群", server.webhook)
        outcomes = [robot.send(message(), "企微群", clock()).outcome for _ in range(21)]
        assert outcomes.count(Outcome.OK) == 20
        assert outcomes[-1] is Outcome.RATE_LIMITED
    finally:
        server.close()


def test_aliyun_sms_and_voice_requests_carry_a_valid_signature(clock: FakeClock) -> None:
    server = AliyunServer(clock, "LTAIkeyid", "aliyun-secret/with+odd=chars", daily_quota=2)
    try:
        sms = AliyunCall(
            "短信",
            "LTAIkeyid",
            "aliyun-secret/with+odd=chars",
            "SMS_123",
            sign_name="某县应急",
            endpoint=server.base + "/",
        )
        voice = AliyunCall(
            "电话", "LTAIkeyid", "aliyun-secret/with+odd=chars", "TTS_9", endpoint=server.base + "/", kind="voice"
        )
        msg = Message("t", "m", "s", "red", params={"grade": "红色", "township": "新庄镇 * ~"})
        assert sms.send(msg, "13800000001", clock()).ok
        assert voice.send(msg, "13800000001", clock()).ok
        assert server.to("13800000001", "SendSms")[0]["SignName"] == "某县应急"
        assert server.to("13800000001", "SingleCallByTts")[0]["TtsCode"] == "TTS_9"
        # the provider's own per-number quota is understood as a daily limit
        assert sms.send(msg, "13800000001", clock()).outcome is Outcome.DAILY_LIMIT
        wrong = AliyunCall("短信", "LTAIkeyid", "not-the-secret", "SMS_123", sign_name="x", endpoint=server.base + "/")
        assert wrong.send(msg, "13800000002", clock()).outcome is Outcome.CONFIG_ERROR
        assert server.refused == ["isv.BUSINESS_LIMIT_CONTROL", "SignatureDoesNotMatch"]
        assert "not-the-secret" not in str(wrong.describe())
        assert "aliyun-secret" not in str(sms.describe())
    finally:
        server.close()


# ---- e-mail ----------------------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[tuple[int, str, list[Any]]]:
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    received: list[Any] = []

    class Handler:
        async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
            self, server: Any, session: Any, envelope: Any
        ) -> str:
            received.append(envelope)
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"duty" and data.password == b"mail-pass"
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield port, str(cert), received
    finally:
        controller.stop()


def test_email_over_starttls_with_authentication(smtp_server: tuple[int, str, list[Any]], clock: FakeClock) -> None:
    port, ca, received = smtp_server
    mail = SmtpMail(
        "邮件", "127.0.0.1", "sentinel@county.local", port=port, username="duty", password="mail-pass", ca_file=ca
    )
    assert mail.send(message(), "officer@county.local", clock()).ok
    assert received[0].rcpt_tos == ["officer@county.local"]
    assert "甲烷浓度超限" in received[0].content.decode("utf-8", errors="replace") or received[0].content
    wrong = SmtpMail("邮件", "127.0.0.1", "s@x", port=port, username="duty", password="nope", ca_file=ca)
    assert wrong.send(message(), "officer@county.local", clock()).outcome is Outcome.CONFIG_ERROR
    untrusted = SmtpMail("邮件", "127.0.0.1", "s@x", port=port, username="duty", password="mail-pass")
    assert untrusted.send(message(), "officer@county.local", clock()).outcome is Outcome.CONFIG_ERROR
    assert len(received) == 1
    assert "mail-pass" not in str(mail.describe())
