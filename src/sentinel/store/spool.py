"""A local, fsynced spool for batches the database could not take.

When PostgreSQL is unreachable, a batch is appended here and fsynced before its messages are acknowledged, so the
broker may forget them; when the database returns, the spool is replayed in order. Each replayed record is written
in one transaction together with ``spool_progress`` (segment, offset), so a crash during replay neither loses nor
repeats a record. A torn record at the end of a segment (a crash while appending) was never acknowledged: it is cut
off, and the broker redelivers its messages.

Format: segment files ``<16-digit number>.spool``; each record is ``length (u32) | crc32 (u32) | msgpack``.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from sentinel.batch import DeviceEvent, IngestBatch, MessageKeys, ReadingBatch
from sentinel.errors import StoreError
from sentinel.wire.deadletter import DeadLetter

_FRAME = struct.Struct("<II")


class _Event(msgspec.Struct, array_like=True):
    device_id: int
    ts_us: int
    kind: str
    name: str
    value: float | None
    state: str | None
    note: str | None


class _Letter(msgspec.Struct, array_like=True):
    raw: bytes
    source: str
    received_at: datetime
    reason: str
    path: str
    code: str
    index: int | None


class _Record(msgspec.Struct, array_like=True):
    received_at_us: int
    ts_us: bytes
    device_id: bytes
    metric_id: bytes
    value: bytes
    msg_device_id: bytes
    msg_seq: bytes
    msg_ts_us: bytes
    events: list[_Event]
    letters: list[_Letter]


def _encode(batch: IngestBatch) -> bytes:
    r, m = batch.readings, batch.messages
    record = _Record(
        batch.received_at_us,
        r.ts_us.astype("<i8").tobytes(),
        r.device_id.astype("<i4").tobytes(),
        r.metric_id.astype("<i2").tobytes(),
        r.value.astype("<f8").tobytes(),
        m.device_id.astype("<i4").tobytes(),
        m.seq.astype("<i8").tobytes(),
        m.ts_us.astype("<i8").tobytes(),
        [_Event(e.device_id, e.ts_us, e.kind, e.name, e.value, e.state, e.note) for e in batch.events],
        [_Letter(d.raw, d.source, d.received_at, d.reason, d.path, d.code, d.index) for d in batch.dead_letters],
    )
    return msgspec.msgpack.encode(record)


def _decode(payload: bytes) -> IngestBatch:
    rec = msgspec.msgpack.decode(payload, type=_Record)

    def col(data: bytes, dtype: str, native: type[np.generic]) -> Any:
        return np.frombuffer(data, dtype=dtype).astype(native)

    return IngestBatch(
        received_at_us=rec.received_at_us,
        readings=ReadingBatch(
            col(rec.ts_us, "<i8", np.int64),
            col(rec.device_id, "<i4", np.int32),
            col(rec.metric_id, "<i2", np.int16),
            col(rec.value, "<f8", np.float64),
        ),
        messages=MessageKeys(
            col(rec.msg_device_id, "<i4", np.int32),
            col(rec.msg_seq, "<i8", np.int64),
            col(rec.msg_ts_us, "<i8", np.int64),
        ),
        events=[DeviceEvent(e.device_id, e.ts_us, e.kind, e.name, e.value, e.state, e.note) for e in rec.events],
        dead_letters=[
            DeadLetter(d.raw, d.source, d.received_at, d.reason, d.path, d.code, d.index) for d in rec.letters
        ],
    )


class Spool:
    def __init__(self, directory: Path, segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the spool folder {directory}: {exc.strerror}") from exc
        self._current: Path | None = None

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("*.spool"))

    def __bool__(self) -> bool:
        return any(p.stat().st_size > 0 for p in self.segments())

    def append(self, batch: IngestBatch) -> None:
        """Append and fsync. Raises StoreError when the disk refuses (then nothing may be acknowledged)."""
        payload = _encode(batch)
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        path = self._segment_for(len(frame))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, frame)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"cannot write the spool {path}: {exc.strerror}") from exc

    def _segment_for(self, size: int) -> Path:
        if self._current is None or not self._current.exists():
            existing = self.segments()
            self._current = existing[-1] if existing else self._new_segment(0)
            self._cut_torn_tail(self._current)
        if self._current.stat().st_size + size > self.segment_bytes:
            self._current = self._new_segment(int(self._current.stem) + 1)
        return self._current

    def _new_segment(self, number: int) -> Path:
        path = self.directory / f"{number:016d}.spool"
        path.touch()
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name must survive a crash too
        finally:
            os.close(dir_fd)
        return path

    def _cut_torn_tail(self, path: Path) -> None:
        """Before appending after a crash: drop a torn last record, or later records would hide behind it."""
        good = 0
        for _name, offset, _batch in self._scan(path, 0, decode=False):
            good = offset
        if path.stat().st_size != good:
            with path.open("r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())

    def records(self, applied: dict[str, int]) -> Iterator[tuple[str, int, IngestBatch]]:
        """(segment name, offset after the record, batch) for every record not yet applied, oldest first."""
        for path in self.segments():
            for name, offset, batch in self._scan(path, applied.get(path.name, 0), decode=True):
                assert batch is not None
                yield name, offset, batch

    @staticmethod
    def _scan(path: Path, start: int, *, decode: bool) -> Iterator[tuple[str, int, IngestBatch | None]]:
        with path.open("rb") as f:
            f.seek(start)
            offset = start
            while True:
                head = f.read(_FRAME.size)
                if len(head) < _FRAME.size:
                    return
                length, crc = _FRAME.unpack(head)
                payload = f.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    return  # torn tail: never acknowledged, the broker redelivers it
                offset += _FRAME.size + length
                yield path.name, offset, _decode(payload) if decode else None

    def remove(self, segment: str) -> None:
        """A segment fully replayed (and its progress row deleted in the same transaction) goes away."""
        path = self.directory / segment
        if path == self._current:
            self._current = None
        path.unlink(missing_ok=True)
