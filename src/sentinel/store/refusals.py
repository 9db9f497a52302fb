"""Data errors of a batch write: what counts as one, and the batch cut into the parts PostgreSQL may refuse one by
one (each message with its readings, loose readings, each event, each dead letter), so that
:class:`~sentinel.store.ingest_writer.IngestWriter` can bisect a refused batch and store everything else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import psycopg

from sentinel.batch import IngestBatch, MessageKeys, ReadingBatch
from sentinel.store.database import one_line

PartKind = Literal["message", "readings", "event", "dead_letter"]


def is_data_error(exc: BaseException) -> bool:
    """True when PostgreSQL (or psycopg, before sending) refused a value of the batch, not the batch's delivery."""
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return True  # also psycopg's own refusals (a NUL byte in text), which carry no SQLSTATE
    return isinstance(exc, psycopg.Error) and exc.sqlstate == "54000"  # program_limit_exceeded: a value too large


def postgres_said(exc: BaseException) -> str:
    """What PostgreSQL said, on one line, with its SQLSTATE when there is one."""
    text = one_line(exc)
    state = exc.sqlstate if isinstance(exc, psycopg.Error) else None
    return f"{text} (SQLSTATE {state})" if state else text


def nul_safe(value: str) -> str:
    """PostgreSQL text cannot hold NUL: a dead letter's reason, path and source must never be refused for one."""
    return value.replace("\x00", "\\u0000") if "\x00" in value else value


class BatchParts:
    """A batch cut into the parts the database may refuse one by one: each message (its ``message_log`` row with
    its readings), readings no message key accounts for (by device and time), each event, each dead letter.

    Part ids: messages ``[0, M)``, loose readings ``[M, M + L)``, then events, then dead letters."""

    def __init__(self, batch: IngestBatch) -> None:
        self.batch = batch
        m, r = batch.messages, batch.readings
        exact: dict[tuple[int, int, int], int] = {}
        by_time: dict[tuple[int, int], int] = {}
        for j, (device, ts, seq) in enumerate(zip(m.device_id.tolist(), m.ts_us.tolist(), m.seq.tolist(), strict=True)):
            exact.setdefault((device, ts, seq), j)
            by_time.setdefault((device, ts), j)
        self.kinds: list[tuple[PartKind, int]] = [("message", j) for j in range(len(m))]
        loose: dict[tuple[int, int], int] = {}
        owner = np.empty(len(r), np.int64)
        seqs: list[int] | None = r.seq.tolist() if r.seq is not None else None
        for i, (device, ts) in enumerate(zip(r.device_id.tolist(), r.ts_us.tolist(), strict=True)):
            part = exact.get((device, ts, seqs[i])) if seqs is not None else None
            if part is None:
                part = by_time.get((device, ts))
            if part is None:
                part = loose.get((device, ts))
                if part is None:
                    part = loose[(device, ts)] = len(self.kinds)
                    self.kinds.append(("readings", i))
            owner[i] = part
        self.reading_part = owner
        self.first_event = len(self.kinds)
        self.kinds += [("event", i) for i in range(len(batch.events))]
        self.first_letter = len(self.kinds)
        self.kinds += [("dead_letter", i) for i in range(len(batch.dead_letters))]

    def __len__(self) -> int:
        return len(self.kinds)

    def select(self, ids: Sequence[int]) -> IngestBatch:
        """The sub-batch of these parts."""
        chosen = np.zeros(len(self.kinds), bool)
        chosen[list(ids)] = True
        b = self.batch
        m, r = b.messages, b.readings
        rows = chosen[self.reading_part]
        keep = chosen[: len(m)]
        return IngestBatch(
            b.received_at_us,
            ReadingBatch(
                r.ts_us[rows],
                r.device_id[rows],
                r.metric_id[rows],
                r.value[rows],
                None if r.seq is None else r.seq[rows],
            ),
            MessageKeys(m.device_id[keep], m.seq[keep], m.ts_us[keep]),
            [e for e, c in zip(b.events, chosen[self.first_event : self.first_letter], strict=True) if c],
            [d for d, c in zip(b.dead_letters, chosen[self.first_letter :], strict=True) if c],
        )

    def readings_of(self, part: int) -> ReadingBatch:
        rows = self.reading_part == part
        r = self.batch.readings
        return ReadingBatch(r.ts_us[rows], r.device_id[rows], r.metric_id[rows], r.value[rows])
