"""Hypothesis strategies for wire messages: mostly well-formed, with every field sometimes wrong."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from sentinel.wire import contract

_END = "$(?!\\n)"
NOTE_MAX = contract.NOTE_MAX_CHARS
ID_RX = contract.ID_PATTERN.removesuffix(_END)
NAME_RX = contract.METRIC_PATTERN.removesuffix(_END)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)

good_ids = st.from_regex(ID_RX, fullmatch=True)
good_names = st.from_regex(NAME_RX, fullmatch=True)
near_ids = st.sampled_from(["", "_gw", ".x", "-x", "a b", "a/b", "a+b", "a#", "a\n", "é", "x" * 65, "٣"]) | st.text(
    max_size=6
)
near_names = st.sampled_from(["", "CH4", "1a", "_a", "a-b", "a.b", "a\n", "ch4_pct_lel ", "a" * 65]) | st.text(
    max_size=6
)


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    digits = draw(st.integers(0, 9))
    fraction = "." + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=digits, max_size=digits)))
    offset = draw(st.sampled_from(["Z", "+08:00", "-05:30", "+00:00", "-00:00", "+23:59", "-23:59"]))
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (fraction if digits else "") + offset


def _spoil(text: str, how: str) -> str:
    if how == "naive":
        return text.rstrip("Z").rsplit("+", 1)[0].rsplit("-", 1)[0] if text[-1] != "Z" else text[:-1]
    if how == "space":
        return text.replace("T", " ")
    if how == "lower":
        return text.lower()
    if how == "no_colon":
        return text[:-3] + text[-2:] if text[-1] != "Z" else text[:-1] + "+0800"
    if how == "feb30":
        return "2024-02-30" + text[10:]
    if how == "hour24":
        return text[:11] + "24" + text[13:]
    if how == "second60":
        return text[:17] + "60" + text[19:]
    if how == "year1999":
        return "1999" + text[4:]
    return text + "x"


bad_timestamps = st.builds(
    _spoil,
    rfc3339(),
    st.sampled_from(["naive", "space", "lower", "no_colon", "feb30", "hour24", "second60", "year1999", "junk"]),
)
epoch_ms = st.integers(contract.MIN_TS_MS, contract.MAX_TS_MS)
good_ts = rfc3339() | epoch_ms | st.integers(contract.MIN_TS_MS, 2**50).map(float)
bad_ts = (
    bad_timestamps
    | st.sampled_from([0, -1, contract.MIN_TS_MS - 1, contract.MAX_TS_MS + 1, 1.7e12 + 0.5, True, "", "now"])
    | json_values
)
good_seq = st.integers(0, contract.INT64_MAX) | st.sampled_from([0.0, -0.0, 41.0])
bad_seq = st.sampled_from([-1, 2**63, 2**64, 1.5, -0.5, 1e19, True, False, "1", None]) | json_values
finite = st.floats(allow_nan=False, allow_infinity=False)
good_readings = finite | st.integers(-(2**60), 2**60) | st.booleans()
bad_readings: st.SearchStrategy[Any] = st.sampled_from([None, "1", "true", [], {}, [1.0]]) | st.text(max_size=3)
good_metrics = st.dictionaries(good_names, good_readings, min_size=1, max_size=6)
bad_metrics: st.SearchStrategy[Any] = (
    st.builds(lambda d, k, v: {**d, k: v}, good_metrics, near_names, good_readings)
    | st.builds(lambda d, k, v: {**d, k: v}, good_metrics, good_names, bad_readings)
    | st.just({})
    | json_values
)
bad_notes = st.text(min_size=NOTE_MAX - 1, max_size=NOTE_MAX + 2) | json_values


@st.composite
def message_like(draw: st.DrawFn, fields: dict[str, tuple[Any, Any]], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object with ``fields`` (name -> (good values, any values)): good, or with one defect (a field
    given any value, a field left out, an unknown field), or now and then several."""
    out = {name: draw(good) for name, (good, _) in fields.items() if name not in optional or draw(st.booleans())}
    defects = draw(st.sampled_from([0, 0, 1, 1, 1, 1, 2, 3]))
    for _ in range(defects):
        kind = draw(st.sampled_from(["value", "value", "value", "value", "drop", "extra"]))
        name = draw(st.sampled_from(sorted(fields)))
        if kind == "value":
            out[name] = draw(fields[name][1])
        elif kind == "drop":
            out.pop(name, None)
        else:
            out[draw(st.text(min_size=1, max_size=6))] = draw(json_scalars)
    return out


TELEMETRY_FIELDS = {
    "device": (good_ids, near_ids | json_values),
    "ts": (good_ts, bad_ts),
    "seq": (good_seq, bad_seq),
    "metrics": (good_metrics, bad_metrics),
}
EVENT_FIELDS = {
    "device": (good_ids, near_ids | json_values),
    "ts": (good_ts, bad_ts),
    "seq": (good_seq, bad_seq),
    "event": (good_names, near_names | json_values),
    "value": (good_readings, bad_readings),
    "state": (good_names, near_names | json_values),
    "note": (st.text(max_size=20), bad_notes),
}
STATUS_FIELDS = {
    "device": (good_ids, near_ids | json_values),
    "status": (st.sampled_from(["online", "offline"]), st.sampled_from(["Online", "", "up"]) | json_values),
    "ts": (good_ts, bad_ts),
}

telemetry_like = message_like(TELEMETRY_FIELDS)
event_like = message_like(EVENT_FIELDS, ("value", "state", "note"))
status_like = message_like(STATUS_FIELDS, ("ts",))
