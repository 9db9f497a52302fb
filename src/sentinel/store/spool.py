"""A local, fsynced spool for batches the database could not take.

When PostgreSQL is unreachable, a batch is appended here and fsynced before its messages are acknowledged, so the
broker may forget them; when the database returns, the spool is replayed in order. Each replayed record is written
in one transaction together with ``spool_progress`` (segment, offset), so a crash during replay neither loses nor
repeats a record. A torn record at the end of a segment (a crash while appending, or a write the disk cut short) was
never acknowledged: it is cut off when the spool is opened and before appending after a failed write, and the broker
redelivers its messages.

Segment names are never reused. Segments are deleted only all at once (:meth:`Spool.clear`, when everything in
them is replayed), and a segment's ``spool_progress`` row is deleted after its file, so the row may outlive the file
(a crash or an unreachable database in between). A new segment with that name would then be replayed from that stale
offset, skipping acknowledged records; so segment numbers only grow, the next one kept in the ``next-segment`` file
(written durably before a segment is created or the last one deleted), and a row whose segment is gone is garbage
that can be deleted at any time.

Format: segment files ``<16-digit number>.spool``; each record is ``length (u32) | crc32 (u32) | msgpack``.
"""

from __future__ import annotations

import contextlib
import errno
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
_NEXT = "next-segment"  # the lowest segment number never used


class _Event(msgspec.Struct, array_like=True):
    device_id: int
    ts_us: int
    topic_type: str
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
    size: int | None = None  # records spooled before issue 13 end at index
    sha256: bytes | None = None


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
        [_Event(e.device_id, e.ts_us, e.topic_type, e.name, e.value, e.state, e.note) for e in batch.events],
        [
            _Letter(d.raw, d.source, d.received_at, d.reason, d.path, d.code, d.index, d.size, d.sha256)
            for d in batch.dead_letters
        ],
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
        events=[DeviceEvent(e.device_id, e.ts_us, e.topic_type, e.name, e.value, e.state, e.note) for e in rec.events],
        dead_letters=[
            DeadLetter(d.raw, d.source, d.received_at, d.reason, d.path, d.code, d.index, d.size, d.sha256)
            for d in rec.letters
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
        existing = self.segments()
        if existing:
            # Only the last segment can end in a torn record. Cut it now, or the replay would wait for it forever.
            try:
                self._cut_torn_tail(existing[-1])
            except OSError as exc:
                raise StoreError(f"cannot open the spool {existing[-1]}: {exc.strerror}") from exc

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
                start = os.fstat(fd).st_size
                try:
                    written = 0
                    while written < len(frame):  # a full disk cuts a write short, with no error until the next
                        n = os.write(fd, frame[written:])
                        if n == 0:
                            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                        written += n
                    os.fsync(fd)
                except OSError:
                    # Not acknowledged, so not to be replayed: take back what was written of it.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, start)
                        os.fsync(fd)
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            self._current = None  # should taking it back have failed, the next append cuts the torn tail first
            raise StoreError(f"cannot write the spool {path}: {exc.strerror}") from exc

    def _segment_for(self, size: int) -> Path:
        if self._current is None or not self._current.exists():
            existing = self.segments()
            self._current = existing[-1] if existing else self._new_segment()
            self._cut_torn_tail(self._current)
        if self._current.stat().st_size + size > self.segment_bytes:
            self._current = self._new_segment()
        return self._current

    def _next_number(self) -> int:
        """The lowest segment number never used: above every segment here and every one deleted."""
        existing = self.segments()
        return max(self._kept_next(), int(existing[-1].stem) + 1 if existing else 0)

    def _kept_next(self) -> int:
        try:
            text = (self.directory / _NEXT).read_text("ascii")
        except FileNotFoundError:
            return 0  # a new spool, or one written before names were kept from reuse
        try:
            return int(text)
        except ValueError:
            raise StoreError(f"{self.directory / _NEXT} holds {text[:40]!r}, not a segment number") from None

    def _keep_next(self, number: int) -> None:
        """Durably record that segment numbers below ``number`` are used (with a directory fsync to follow)."""
        temporary = self.directory / f"{_NEXT}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            text = str(number).encode("ascii")
            if os.write(fd, text) != len(text):  # a number cut short would let names be used again
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.directory / _NEXT)

    def _new_segment(self) -> Path:
        number = self._next_number()
        path = self.directory / f"{number:016d}.spool"
        try:
            self._keep_next(number + 1)
            path.touch()
            self._fsync_directory()  # the new file's name, and the number it used up, must survive a crash too
        except OSError as exc:
            raise StoreError(f"cannot create a spool segment in {self.directory}: {exc.strerror}") from exc
        return path

    def _fsync_directory(self) -> None:
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

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

    def clear(self) -> list[str]:
        """Delete every segment, durably, and return their names, which are never used again.

        Only for segments whose every record is applied (their progress rows may be deleted afterwards, not
        before: a file that came back after a crash, without its row, would be replayed twice); and nothing may
        append meanwhile (the sink calls this on its event loop, where it appends)."""
        paths = self.segments()
        self._current = None
        if not paths:
            return []
        try:
            after = int(paths[-1].stem) + 1
            if self._kept_next() < after:  # a spool from before the next-segment file: keep its names from reuse
                self._keep_next(after)
                self._fsync_directory()
            for path in paths:
                path.unlink(missing_ok=True)
            self._fsync_directory()
        except OSError as exc:
            raise StoreError(f"cannot delete the replayed spool segments in {self.directory}: {exc.strerror}") from exc
        return [path.name for path in paths]
