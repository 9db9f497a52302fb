"""Fuzzing the path from bytes to a batch: the real decoder and admission (IngestSink.prepare), no database.

Properties, over generated topics and payloads:

* totality: ``prepare`` never raises, and every input message ends as stored telemetry, an event, a duplicate or a
  dead letter with a reason (counted per message);
* nothing is set aside as ``internal``: an unexpected exception is a defect the fuzzer found;
* every good message of a mixed batch is in the batch, whatever hostile messages surround it.

Inputs: structurally valid messages with hostile values (tests/wire/strategies.py), mutated bytes of the real
examples in schemas/examples (truncation at every offset, bit flips, byte insertions), nesting bombs, huge numbers,
odd encodings (UTF-16, BOM, overlong UTF-8, lone surrogates), and topics of every shape.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from sentinel.collect.mqtt import MqttMessage
from sentinel.engine.catalog import METRICS
from sentinel.ingest.admission import Admission
from sentinel.ingest.dedup import DuplicateFilter
from sentinel.ingest.sink import IngestSink
from sentinel.observability import IngestMetrics
from sentinel.registry.repository import DeviceRecord, RegistryView
from sentinel.resources import data_dir
from sentinel.store.ingest_writer import IngestWriter
from sentinel.store.spool import Spool
from sentinel.wire import Telemetry, device_topic, encode_batch, encode_telemetry, gateway_topic
from sentinel.wire.deadletter import INTERNAL
from tests.fuzz.conftest import EXAMPLES, FUZZ, TIMEOUT_S
from tests.wire.strategies import event_like, json_values, status_like, telemetry_like

# One worker runs this module under pytest-xdist, so the module-scoped sink is built once.
pytestmark = pytest.mark.xdist_group("fuzz-fuzz_ingest")

SITE, OTHER_SITE, GATEWAY = "fz-site", "fz-other", "fz-gw"
DEVICES = [f"fz-d{i}" for i in range(4)]
EXAMPLE_BYTES = sorted(
    (p.read_bytes() for p in data_dir("schemas").joinpath("examples").glob("*.json") if p.name != "expected.json"),
    key=len,
)
TRIED: Counter[str] = Counter()


def _registry() -> RegistryView:
    view = RegistryView()
    for i, device in enumerate(DEVICES):
        view.devices[device] = DeviceRecord(i + 1, device, SITE, "gas_pressure", "gas", 10.0, {})
    view.devices["fz-far"] = DeviceRecord(99, "fz-far", OTHER_SITE, "gas_pressure", "gas", 10.0, {})
    view.gateway_sites = {GATEWAY: frozenset({SITE})}
    view.metric_ids = {m.id: i + 1 for i, m in enumerate(METRICS)}
    return view


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> IngestSink:
    admission = Admission(_registry(), DuplicateFilter())
    spool = Spool(tmp_path_factory.mktemp("spool"))
    return IngestSink(IngestWriter("postgresql://unused", "native"), spool, admission, IngestMetrics())


# ------------------------------------------------------------------ payloads
def _mutations(raw: bytes) -> st.SearchStrategy[bytes]:
    n = len(raw)
    truncated = st.integers(0, n).map(lambda i: raw[:i])
    flipped = st.tuples(st.integers(0, max(0, n - 1)), st.integers(0, 7)).map(
        lambda a: raw[: a[0]] + bytes([raw[a[0]] ^ (1 << a[1])]) + raw[a[0] + 1 :] if n else raw
    )
    inserted = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=4)).map(
        lambda a: raw[: a[0]] + a[1] + raw[a[0] :]
    )
    return truncated | flipped | inserted


examples = st.sampled_from(EXAMPLE_BYTES)
mutated = examples.flatmap(_mutations)
nesting = st.tuples(st.integers(1, 20_000), st.sampled_from([b"[", b'{"a":', b'[{"a":'])).map(
    lambda a: a[1] * a[0] + (b"]" * a[0] if a[1] == b"[" else b"")
)
huge_numbers = st.sampled_from(
    [b"1e400", b"-1e400", b"1" * 5000, b"1e-400", b"0." + b"0" * 4000 + b"1", b"18446744073709551616", b"-0"]
).map(lambda n: b'{"device":"fz-d0","ts":' + n + b',"seq":' + n + b',"metrics":{"ch4_pct_lel":' + n + b"}}")
odd_encodings = st.sampled_from(EXAMPLE_BYTES).flatmap(
    lambda raw: st.sampled_from(
        [
            raw.decode("utf-8", "replace").encode("utf-16"),
            b"\xef\xbb\xbf" + raw,
            raw.replace(b'"', b'"\xc0\xa2', 1),  # overlong UTF-8
            raw.replace(b'"', b'"\xed\xa0\x80', 1),  # a lone surrogate
            raw.replace(b"}", b"\x00}", 1),
        ]
    )
)
hostile_json = st.one_of(telemetry_like, event_like, status_like, json_values).map(
    lambda v: json.dumps(v, allow_nan=True).encode()
)
payloads = st.one_of(mutated, nesting, huge_numbers, odd_encodings, hostile_json, st.binary(max_size=64))

# ------------------------------------------------------------------ topics
ids = st.sampled_from([SITE, OTHER_SITE, GATEWAY, *DEVICES, "fz-ghost", "", "_x", "a+b", "é"])
topics = st.one_of(
    st.tuples(
        st.sampled_from([SITE, OTHER_SITE]),
        st.sampled_from([*DEVICES, "fz-ghost", "fz-far"]),
        st.sampled_from(["telemetry", "event", "status"]),
    ).map(lambda a: device_topic(*a)),  # type: ignore[arg-type]
    st.tuples(st.sampled_from([SITE, OTHER_SITE]), st.sampled_from([GATEWAY, "fz-gw2"])).map(
        lambda a: gateway_topic(a[0], a[1])
    ),
    st.lists(ids | st.sampled_from(["sentinel", "v1", "_gateway", "telemetry", "event", "status"]), max_size=8).map(
        "/".join
    ),
    st.text(max_size=30),
)


@st.composite
def good_message(draw: st.DrawFn) -> tuple[str, bytes, Telemetry]:
    device = draw(st.sampled_from(DEVICES))
    now_us = time.time_ns() // 1000
    msg = Telemetry(
        device,
        now_us - draw(st.integers(1, 3_600_000_000)),
        draw(st.integers(0, 2**40)),
        {"ch4_pct_lel": draw(st.floats(0, 100))},
    )
    if draw(st.booleans()):
        return device_topic(SITE, device, "telemetry"), encode_telemetry(msg), msg
    return gateway_topic(SITE, GATEWAY), encode_batch([msg]), msg


def _account(sink: IngestSink, messages: list[MqttMessage], good: list[Telemetry]) -> None:
    batch, _origins = sink.prepare(messages)
    try:
        internal = [d for d in batch.dead_letters if d.code == INTERNAL]
        assert internal == [], [d.reason for d in internal]
        assert all(d.reason for d in batch.dead_letters)
        # Totality: every message gave something (stored items, events, a duplicate or a dead letter).
        outcomes = len(batch.messages) + len(batch.events) + batch.duplicates + len(batch.dead_letters)
        assert outcomes >= len(messages) - sum(1 for m in messages if m.topic.endswith("/status")), (
            outcomes,
            len(messages),
        )
        stored = set(zip(batch.messages.seq.tolist(), batch.messages.ts_us.tolist(), strict=True))
        for msg in good:
            assert (msg.seq, msg.ts_us) in stored, msg
    finally:
        sink._abort(batch)  # nothing is written: release the pending keys for the next example


@pytest.mark.timeout(TIMEOUT_S)
@FUZZ
@given(
    hostile=st.lists(st.tuples(topics, payloads), min_size=1, max_size=8),
    goods=st.lists(good_message(), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_any_bytes_on_any_topic_are_stored_or_dead_lettered(
    sink: IngestSink, hostile: list[tuple[str, bytes]], goods: list[tuple[str, bytes, Telemetry]], order: object
) -> None:
    TRIED["mixed batches"] += 1
    unique = {(m.device, m.seq): (t, raw, m) for t, raw, m in goods}  # one message per key, or it is a duplicate
    entries = [(t, raw) for t, raw in hostile] + [(t, raw) for t, raw, _m in unique.values()]
    order.shuffle(entries)  # type: ignore[attr-defined]
    note(repr(entries)[:2000])
    received = time.time()
    _account(sink, [MqttMessage(t, raw, received) for t, raw in entries], [m for _t, _r, m in unique.values()])


KIND_TOPICS = [
    device_topic(SITE, DEVICES[0], "telemetry"),
    device_topic(SITE, DEVICES[0], "event"),
    device_topic(SITE, DEVICES[0], "status"),
    gateway_topic(SITE, GATEWAY),
    gateway_topic(SITE, GATEWAY, "status"),
]


@pytest.mark.parametrize("topic", KIND_TOPICS)
def test_every_truncation_of_every_example(sink: IngestSink, topic: str) -> None:
    """Deterministic: each example of schemas/examples cut at every offset, on each kind of topic."""
    received = time.time()
    for raw in EXAMPLE_BYTES:
        TRIED["truncations"] += len(raw) + 1
        _account(sink, [MqttMessage(topic, raw[:cut], received) for cut in range(len(raw) + 1)], [])


def test_report_cases_tried() -> None:
    """Runs last in this module: prints the budget and the cases each property tried."""
    print(f"\nfuzz budget {EXAMPLES} examples per property; cases tried: {dict(TRIED)}")


def test_examples_are_found() -> None:
    assert len(EXAMPLE_BYTES) >= 30
    assert Path(data_dir("schemas")).is_dir()
