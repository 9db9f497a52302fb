"""Training rows from stored history, built exactly as the live engine builds the rows it scores.

The live engine (:mod:`.live`) scores one row per reading of any of a rule's metrics, holding each device's latest
value of every feature metric, in per-device order (device time, then metric index). :func:`feature_rows` does the
same over a table of readings, so a model trained here sees rows of the same kind it will score; rows before every
feature of a device has reported are dropped. Rows of all devices of the class are concatenated device by device:
the limit's trailing mean may straddle two devices for ``smoothing - 1`` rows, a negligible share of a history.

:func:`read_class_history` reads the readings of one device class's devices (``readings`` joined with ``devices``
and ``metrics``) between two times; :func:`train_from_history` is ``sentinel anomaly train``: those rows through
:func:`~sentinel.engine.anomaly.model.fit_model`, the same code path as ``sentinel anomaly fit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import psycopg

from sentinel.engine.anomaly.detector import FloatArray
from sentinel.engine.anomaly.model import AnomalyModel, FitSettings, fit_model
from sentinel.engine.catalog import METRIC_INDEX
from sentinel.errors import DatasetError


@dataclass(frozen=True)
class Readings:
    """Readings as columns: device (any integer id), metric name, device time in epoch µs, value."""

    device: npt.NDArray[np.int64]
    metric: list[str]
    ts_us: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]


def feature_rows(readings: Readings, features: Sequence[str]) -> FloatArray:
    """One row per reading of a feature metric: the device's latest value of each feature (see module doc)."""
    unknown = [m for m in features if m not in METRIC_INDEX]
    if unknown:
        raise DatasetError(f"unknown metric(s) {', '.join(map(repr, unknown))}")
    frame = pl.DataFrame(
        {
            "device": readings.device,
            "metric": pl.Series(readings.metric, dtype=pl.String),
            "ts": readings.ts_us,
            "value": readings.value,
        }
    )
    codes = {m: METRIC_INDEX[m] for m in features}
    frame = (
        frame.filter(pl.col("metric").is_in(list(features)) & pl.col("value").is_finite())
        .with_columns(pl.col("metric").replace_strict(codes, return_dtype=pl.Int64).alias("code"))
        .sort(["device", "ts", "code"], maintain_order=True)
    )
    latest = [
        pl.when(pl.col("metric") == m).then(pl.col("value")).otherwise(None).forward_fill().over("device").alias(m)
        for m in features
    ]
    rows = frame.select(latest).drop_nulls()
    return np.ascontiguousarray(rows.to_numpy(), dtype=np.float64).reshape(len(rows), len(features))


_HISTORY_SQL = """
SELECT r.device_id, m.metric, (extract(epoch FROM r.ts) * 1000000)::bigint, r.value
FROM readings r
JOIN devices d ON d.device_id = r.device_id
JOIN metrics m ON m.metric_id = r.metric_id
WHERE d.device_class = %(class)s AND m.metric = ANY(%(metrics)s) AND r.ts >= %(since)s
  AND (%(until)s::timestamptz IS NULL OR r.ts < %(until)s)
ORDER BY r.device_id, r.ts
"""


def read_class_history(
    conn: psycopg.Connection[Any], device_class: str, features: Sequence[str], since: datetime, until: datetime | None
) -> Readings:
    """Readings of ``features`` from every device of ``device_class`` with ``since <= ts < until``."""
    with conn.cursor() as cur:
        cur.execute(_HISTORY_SQL, {"class": device_class, "metrics": list(features), "since": since, "until": until})
        fetched = cur.fetchall()
    if not fetched:
        period = f"since {since.isoformat()}" + (f" until {until.isoformat()}" if until else "")
        raise DatasetError(
            f"no stored readings of {', '.join(features)} from devices of class {device_class!r} {period}"
        )
    device, metric, ts, value = zip(*fetched, strict=True)
    return Readings(np.array(device, dtype=np.int64), list(metric), np.array(ts, dtype=np.int64), np.array(value))


def train_from_history(
    conn: psycopg.Connection[Any],
    device_class: str,
    features: Sequence[str],
    since: datetime,
    until: datetime | None,
    settings: FitSettings,
) -> AnomalyModel:
    """Fit a model for ``device_class`` on its stored readings (all taken as normal operation)."""
    readings = read_class_history(conn, device_class, features, since, until)
    rows = feature_rows(readings, features)
    if len(rows) < 2:
        raise DatasetError(
            f"class {device_class!r}: only {len(rows)} row(s) with every one of {', '.join(features)} known; "
            "widen the period or check that the devices report all these metrics"
        )
    first = datetime.fromtimestamp(int(readings.ts_us.min()) / 1e6, UTC).isoformat()
    last = datetime.fromtimestamp(int(readings.ts_us.max()) / 1e6, UTC).isoformat()
    return fit_model(rows, tuple(features), settings, first=first, last=last, source=f"readings of {device_class}")
