"""What every anomaly detector offers: a per-row statistic over a batch, and its state as plain arrays.

A detector turns rows of one device class's metrics (columns in the model's feature order) into one number per
row, larger meaning less like the training data. It does not decide what is abnormal: the model around it smooths
the statistic and divides it by a control limit taken from the training data (see :mod:`.model`).

A detector's whole state is a dict of JSON scalars (its parameters) and a dict of numeric numpy arrays, so that it
can be written to disk without pickle and read back only into the class named in the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

from sentinel.errors import ModelError

FloatArray = npt.NDArray[np.float64]
Scalar = str | int | float | bool


class Detector(Protocol):
    """The interface :class:`~sentinel.engine.anomaly.model.AnomalyModel` relies on."""

    @property
    def kind(self) -> str:
        """Name of the detector in model files and rule packs: ``pca``, ``iforest`` or ``robust_z``."""
        ...

    @property
    def n_features(self) -> int:
        """How many columns the rows must have."""
        ...

    @property
    def history_rows(self) -> int:
        """How many rows before a batch the statistic looks back at (0 for a row-by-row statistic)."""
        ...

    def statistic(self, history: FloatArray, rows: FloatArray) -> FloatArray:
        """One value per row of ``rows``; ``history`` holds up to ``history_rows`` rows that came before."""
        ...

    def parameters(self) -> dict[str, Scalar]:
        """Scalar settings, written to the model file's JSON metadata."""
        ...

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """Fitted numeric state, written to the model file as plain (non-object) numpy arrays."""
        ...


def require_array(
    arrays: Mapping[str, npt.NDArray[np.generic]], name: str, kind: str, ndim: int, dtype: str = "f"
) -> npt.NDArray[np.generic]:
    """Fetch one array of a stored detector, refusing a missing one or one of the wrong shape or type."""
    if name not in arrays:
        raise ModelError(f"{kind} model lacks the array {name!r}")
    value = arrays[name]
    if value.ndim != ndim:
        raise ModelError(f"{kind} model array {name!r} has {value.ndim} dimensions, expected {ndim}")
    if value.dtype.kind not in dtype:
        raise ModelError(f"{kind} model array {name!r} has dtype {value.dtype}, expected kind {dtype!r}")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise ModelError(f"{kind} model array {name!r} holds NaN or infinite values")
    return value


def require_parameter(parameters: Mapping[str, object], name: str, kind: str, expected: type) -> object:
    """Fetch one scalar parameter of a stored detector, checking its JSON type."""
    value = parameters.get(name)
    accepted: tuple[type, ...] = (int, float) if expected is float else (expected,)
    # bool is an int in Python; a stored true/false must not pass for a count.
    if value is None or isinstance(value, bool) != (expected is bool) or not isinstance(value, accepted):
        raise ModelError(f"{kind} model parameter {name!r} is {value!r}, expected a {expected.__name__}")
    return float(cast(float, value)) if expected is float else value


def column_count_check(kind: str, n_features: int, rows: FloatArray) -> None:
    """Refuse rows whose width differs from the features the detector was fitted on."""
    if rows.ndim != 2 or rows.shape[1] != n_features:
        raise ModelError(f"{kind} model expects rows of {n_features} features, got shape {rows.shape}")
