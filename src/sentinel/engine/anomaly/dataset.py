"""Reading a multivariate CSV (a time column plus numeric columns) into a feature matrix, with clear errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from sentinel.engine.anomaly.detector import FloatArray
from sentinel.errors import DatasetError


@dataclass(frozen=True)
class Table:
    """Feature rows in column order ``feature_names``, and the time column as text when there is one."""

    values: FloatArray
    feature_names: tuple[str, ...]
    times: tuple[str, ...] | None
    time_column: str | None

    @property
    def first_time(self) -> str | None:
        return self.times[0] if self.times else None

    @property
    def last_time(self) -> str | None:
        return self.times[-1] if self.times else None


def read_frame(path: Path, separator: str = ",") -> pl.DataFrame:
    """Read a CSV file, turning every way it can fail into a DatasetError that names the file."""
    if len(separator) != 1:
        raise DatasetError(f"{path}: the separator must be one character, got {separator!r}")
    try:
        frame = pl.read_csv(path, separator=separator, infer_schema_length=10_000)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read as CSV with separator {separator!r}: {exc}") from None
    if frame.height == 0:
        raise DatasetError(f"{path}: no data rows")
    return frame


def select_features(
    frame: pl.DataFrame,
    path: Path,
    time_column: str | None,
    exclude: Sequence[str] = (),
    features: Sequence[str] | None = None,
) -> Table:
    """Pick the feature columns: ``features`` in that order if given, else every column but time and ``exclude``.

    Every chosen column must be numeric and complete; the error names the column and the first bad line.
    """
    if time_column and time_column not in frame.columns:
        raise DatasetError(
            f"{path}: no time column {time_column!r} (columns: {', '.join(frame.columns)}); "
            "name it with --time-column, or pass --time-column '' for none"
        )
    unknown = [name for name in exclude if name not in frame.columns]
    if unknown:
        raise DatasetError(f"{path}: cannot exclude unknown column(s) {', '.join(map(repr, unknown))}")
    if features is None:
        names = [c for c in frame.columns if c != time_column and c not in exclude]
    else:
        missing = [name for name in features if name not in frame.columns]
        if missing:
            raise DatasetError(f"{path}: lacks the model's feature column(s) {', '.join(map(repr, missing))}")
        names = list(features)
    if not names:
        raise DatasetError(f"{path}: no feature columns left after the time column and exclusions")
    for name in names:
        column = frame[name]
        if not column.dtype.is_numeric():
            parsed = column.cast(pl.Float64, strict=False) if column.dtype == pl.String else None
            if parsed is None or not (unparsed := parsed.is_null() & column.is_not_null()).any():
                raise DatasetError(
                    f"{path}: column {name!r} is not numeric ({column.dtype}); exclude it with --exclude"
                )
            line = int(unparsed.arg_true()[0]) + 2
            raise DatasetError(f"{path}: line {line}, column {name!r}: {column[line - 2]!r} is not a number")
        nulls = column.is_null() | (column.cast(pl.Float64).is_nan())
        if nulls.any():
            # +2: one for the header line, one because lines count from 1.
            line = int(nulls.arg_true()[0]) + 2
            raise DatasetError(f"{path}: line {line}, column {name!r}: missing or NaN value")
    values = frame.select([pl.col(n).cast(pl.Float64) for n in names]).to_numpy()
    times = tuple(frame[time_column].cast(pl.String).to_list()) if time_column else None
    return Table(np.ascontiguousarray(values, dtype=np.float64), tuple(names), times, time_column or None)


def read_table(
    path: Path,
    separator: str = ",",
    time_column: str | None = "datetime",
    exclude: Sequence[str] = (),
    features: Sequence[str] | None = None,
) -> Table:
    """Read a CSV and select its feature columns (see :func:`select_features`)."""
    return select_features(read_frame(path, separator), path, time_column, exclude, features)
