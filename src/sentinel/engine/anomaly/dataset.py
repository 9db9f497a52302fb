"""Reading a multivariate CSV (a time column plus numeric columns) into a feature matrix, with clear errors.

The time column is found by itself (:func:`find_time_column`) when the file has one obvious one: a column named
``timestamp``, ``datetime`` or ``time`` (any case), or else a first column that holds date-times. Anything else
(two such names, or none and a first column that is not times) is an error naming the columns seen, so that a
time column is never taken for a feature nor a feature for the time.
"""

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


TIME_NAMES = ("timestamp", "datetime", "time")


def _holds_times(column: pl.Series) -> bool:
    """A date/datetime column, or text in which every cell parses as a date-time."""
    if column.dtype in (pl.Date, pl.Datetime):
        return True
    if column.dtype != pl.String or column.null_count() == len(column):
        return False
    try:
        parsed = column.str.to_datetime(strict=False)
    except pl.exceptions.PolarsError:
        return False
    return parsed.null_count() == column.null_count() == 0


def find_time_column(frame: pl.DataFrame, path: Path) -> str:
    """The file's one obvious time column (see module doc), or a DatasetError listing the columns seen."""
    named = [c for c in frame.columns if c.strip().lower() in TIME_NAMES]
    seen = ", ".join(repr(c) for c in frame.columns)
    if len(named) > 1:
        raise DatasetError(
            f"{path}: more than one time column ({', '.join(map(repr, named))}; columns: {seen}); "
            "name the one to use with --time-column"
        )
    if named:
        return named[0]
    if frame.width > 1 and _holds_times(frame[frame.columns[0]]):
        return frame.columns[0]
    raise DatasetError(
        f"{path}: no time column found (none named {', '.join(TIME_NAMES)}, and the first column does not hold "
        f"date-times; columns: {seen}); name it with --time-column, or pass --time-column '' for none"
    )


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
