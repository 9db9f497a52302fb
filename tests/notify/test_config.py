"""The channels file: `sentinel notify check` shows what it configures with every secret hidden; mistakes are named
by file, entry and field; `build_notifier` builds the service's notifier from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.errors import NotifyConfigError
from sentinel.notify import config
from sentinel.notify.service import build_notifier
from sentinel.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notify" / "channels.yaml"
SECRETS = (
    "SECREPLACE_WITH_THE_ROBOT_SECRET",
    "REPLACE_WITH_ACCESS_TOKEN",
    "REPLACE_WITH_KEY",
    "REPLACE_ACCESS_KEY_SECRET",
    "REPLACE_SMTP_PASSWORD",
    "REPLACE_WITH_A_LONG_SECRET",
)


def test_check_prints_the_configuration_without_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    from sentinel.cli import main

    with pytest.raises(SystemExit) as done:
        main(["notify", "check", str(EXAMPLE)])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "新庄镇钉钉群" in out
    assert "5 个渠道, 1 个 webhook, 2 条升级链" in out
    for secret in SECRETS:
        assert secret not in out


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"channels": [{"name": "a", "kind": "dingtalk", "webhook": "http://x"}]},
            r"channels\[0\]: a DingTalk robot needs",
        ),
        ({"channels": [{"name": "a", "kind": "pager"}]}, r"channels\[0\].kind: unknown kind 'pager'"),
        (
            {"channels": [{"name": "a", "kind": "wecom", "webhook": "http://x", "grades": ["purple"]}]},
            r"grades: unknown",
        ),
        (
            {"escalation": {"red": {"steps": [{"after_min": 0, "to": "officer", "channels": ["短信"]}]}}},
            r"escalation.red.steps\[0\].channels: no channel named '短信'",
        ),
    ],
)
def test_mistakes_are_named(doc: dict[str, object], message: str) -> None:
    with pytest.raises(NotifyConfigError, match=message):
        config.parse(doc, "c.yaml")


def test_build_notifier_from_settings(migrated_db: str) -> None:
    settings = load_settings(notify_channels_file=EXAMPLE, database_url=migrated_db)
    notifier = build_notifier(settings, migrated_db)
    assert set(notifier.cfg.channels) == {"新庄镇钉钉群", "全县企业微信群", "短信", "电话", "邮件"}
    assert [w.name for w in notifier.cfg.webhooks] == ["集成方"]
    assert notifier.cfg.chains["red"].steps[1].audience == "supervisor"
    empty = build_notifier(load_settings(database_url=migrated_db), migrated_db)
    report = empty.run_once()  # no channels: routed events are taken, nothing is sent
    assert report.dispatch.sent == 0
