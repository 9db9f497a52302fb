"""The alert history's reasons in the reader's language (sentinel.alerts.words, used by the console and the CLI): the
lifecycle's action ids in words, the rest as stored."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sentinel.alerts.words import event_reason
from tests.examples import examples


@pytest.mark.parametrize(
    ("stored", "zh", "en"),
    [
        (
            "raise: none → orange (value 55, seq 2)",
            "报警：无 → 二级 橙色（值 55，序号 2）",
            "raised: none → orange (2) (value 55, seq 2)",
        ),
        ("de-escalate: red → yellow (value 1e+06, seq 3)", "降级：一级 红色 → 三级 黄色（值 1e+06，序号 3）", None),
        ("clear: blue → none (value 0.5, seq 9)", "恢复：四级 蓝色 → 无（值 0.5，序号 9）", None),
        ("ack: 已电话通知企业", "确认：已电话通知企业", "acknowledged: 已电话通知企业"),
        ("ack: ack", "确认", "acknowledged"),  # no reason given: the lifecycle stores the action's id twice
        (
            "shelve: 企业正在抢修: 暂时搁置",
            "搁置：企业正在抢修: 暂时搁置",
            None,
        ),  # only the first colon is the lifecycle's
        ("escalated to hazard 12: 重大隐患", "转入隐患台账 #12：重大隐患", "escalated to hazard 12: 重大隐患"),
        ("suppressed: maintenance", "suppressed: maintenance", "suppressed: maintenance"),  # unknown id: as stored
    ],
)
def test_stored_reasons_in_words(stored: str, zh: str, en: str | None) -> None:
    assert event_reason("zh", stored) == zh
    if en is not None:
        assert event_reason("en", stored) == en


@given(st.text())
@settings(max_examples=examples(200))
def test_a_reason_of_no_known_shape_is_shown_as_stored(text: str) -> None:
    stored = f"x{text}"  # no action id starts with x
    assert event_reason("zh", stored) == stored
    assert event_reason("en", stored) == stored


@given(st.sampled_from(["ack", "shelve", "unshelve", "comment", "out_of_service", "in_service"]), st.text(min_size=1))
@settings(max_examples=examples(200))
def test_what_the_officer_typed_is_kept_whole(action: str, said: str) -> None:
    assume(said != action)
    assert event_reason("zh", f"{action}: {said}").endswith(f"：{said}")
