"""The anomaly model file: a numpy ``.npz`` archive of plain arrays plus one JSON metadata record. No pickle.

Why not pickle, joblib or skops: loading a pickle runs whatever code the file names, and a model file is exactly
what gets copied between sites. skops narrows that with a list of trusted types, but it still rebuilds arbitrary
scikit-learn objects and adds a dependency. Here every detector's state is a few numeric arrays (even the isolation
forest: see :mod:`.iforest`), read with ``allow_pickle=False``, so reading can only ever produce numbers and text,
and only detector classes this module names can be built from them.

Layout: ``meta`` is the UTF-8 JSON record as a uint8 array; every other member is ``array.<name>``. The record
holds the format name and version, detector kind, feature names, training rows and period, limit, smoothing,
persistence, the detector's parameters, the shape and dtype of each array, and a SHA-256 over all of it.
Version 2 adds ``used_features`` (the features the detector takes; slow ones are left out) and ``drift``
(``rows``, the memory of the drift-following centre, with the training ``centre`` and ``scale`` of the used
features as JSON numbers). Version 1 files are still read: all features used, no drift following, scored exactly
as before. Any other version is refused with a hint to refit. The
digest catches a damaged or hand-edited file (an accident); it is not a signature against someone who can
rewrite the file, which file permissions must prevent.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import Detector
from sentinel.engine.anomaly.iforest import IsolationForestDetector
from sentinel.engine.anomaly.model import AnomalyModel, TrainingInfo
from sentinel.engine.anomaly.pca import PcaDetector
from sentinel.engine.anomaly.robust_z import RobustZDetector
from sentinel.errors import ModelError

FORMAT_NAME = "sentinel-anomaly-model"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_ARRAY_PREFIX = "array."
_ALLOWED_DTYPE_KINDS = "fiub"

_RESTORERS: dict[str, Callable[[Mapping[str, object], Mapping[str, npt.NDArray[np.generic]]], Detector]] = {
    "pca": PcaDetector.restore,
    "iforest": IsolationForestDetector.restore,
    "robust_z": RobustZDetector.restore,
}


def _digest(record: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[np.generic]]) -> str:
    """SHA-256 over the canonical JSON record (without its digest) and every array's bytes, in name order."""
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_model(model: AnomalyModel, path: Path) -> None:
    """Write ``model`` to ``path`` (replacing it atomically, so a running engine never reads half a file)."""
    arrays = {name: np.ascontiguousarray(value) for name, value in model.detector.arrays().items()}
    record: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "feature_names": list(model.feature_names),
        "training": {
            "rows": model.training.rows,
            "first": model.training.first,
            "last": model.training.last,
            "source": model.training.source,
        },
        "limit": model.limit,
        "limit_quantile": model.limit_quantile,
        "margin": model.margin,
        "smoothing": model.smoothing,
        "persistence": model.persistence,
        "clear": model.clear,
        "parameters": model.detector.parameters(),
        "used_features": [model.feature_names[i] for i in model.columns],
        "drift": {
            "rows": model.drift_rows,
            "centre": None if model.centre is None else [float(v) for v in model.centre],
            "scale": None if model.centre_scale is None else [float(v) for v in model.centre_scale],
        },
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in arrays.items()},
    }
    record["sha256"] = _digest(record, arrays)
    meta = np.frombuffer(json.dumps(record, sort_keys=True).encode(), dtype=np.uint8)
    members = {"meta": meta} | {_ARRAY_PREFIX + name: value for name, value in arrays.items()}
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        np.savez_compressed(out, allow_pickle=False, **members)
    os.replace(partial, path)


def _read_members(path: Path) -> tuple[dict[str, Any], dict[str, npt.NDArray[np.generic]]]:
    """Read the metadata record and the arrays, turning every way of being unreadable into ModelError."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelError(f"{path}: not a Sentinel anomaly model (a bare numpy array, not an archive)")
        with loaded as archive:
            members = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise ModelError(f"{path}: not a readable model file ({type(exc).__name__}: {exc})") from None
    if "meta" not in members:
        raise ModelError(f"{path}: not a Sentinel anomaly model (no metadata record)")
    meta = members.pop("meta")
    if meta.dtype != np.uint8 or meta.ndim != 1:
        raise ModelError(f"{path}: metadata record has dtype {meta.dtype}, expected bytes")
    try:
        record = json.loads(meta.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: metadata record is not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ModelError(f"{path}: metadata record is not a JSON object")
    arrays = {}
    for name, value in members.items():
        if not name.startswith(_ARRAY_PREFIX):
            raise ModelError(f"{path}: unexpected member {name!r}")
        if value.dtype.kind not in _ALLOWED_DTYPE_KINDS:
            raise ModelError(f"{path}: array {name!r} has unsupported dtype {value.dtype}")
        arrays[name.removeprefix(_ARRAY_PREFIX)] = value
    return record, arrays


def _field(record: Mapping[str, Any], name: str, expected: type | tuple[type, ...], path: Path) -> Any:
    value = record.get(name)
    if not isinstance(value, expected) or (isinstance(value, bool) and expected in (int, float, (int, float))):
        raise ModelError(f"{path}: metadata field {name!r} is {value!r}, which is not valid")
    return value


def _numbers(value: object, length: int, what: str, path: Path) -> npt.NDArray[np.float64] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != length
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise ModelError(f"{path}: metadata field drift.{what} must be {length} numbers, got {value!r}")
    return np.array(value, dtype=np.float64)


def _drift_fields(
    record: Mapping[str, Any], names: list[str], path: Path
) -> tuple[tuple[int, ...] | None, int, npt.NDArray[np.float64] | None, npt.NDArray[np.float64] | None]:
    """Version 2's used features and drift settings, checked against the feature names."""
    used_names = _field(record, "used_features", list, path)
    unknown = [n for n in used_names if n not in names]
    if not used_names or unknown or len(set(used_names)) != len(used_names):
        raise ModelError(f"{path}: used_features {used_names!r} must be distinct names among the model's features")
    used = tuple(names.index(n) for n in used_names)
    drift = _field(record, "drift", dict, path)
    rows = drift.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise ModelError(f"{path}: metadata field drift.rows is {rows!r}, expected a count of rows")
    centre = _numbers(drift.get("centre"), len(used), "centre", path)
    scale = _numbers(drift.get("scale"), len(used), "scale", path)
    return (None if used == tuple(range(len(names))) else used), rows, centre, scale


def load_model(path: Path) -> AnomalyModel:
    """Read and check a model file; anything corrupt, tampered with or incompatible raises ModelError."""
    path = Path(path)
    record, arrays = _read_members(path)
    if record.get("format") != FORMAT_NAME:
        raise ModelError(f"{path}: not a Sentinel anomaly model (format {record.get('format')!r})")
    version = record.get("format_version")
    if version not in _READABLE_VERSIONS or isinstance(version, bool):
        raise ModelError(
            f"{path}: model file format version {version!r}; this Sentinel reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))} only "
            "(refit the model with `sentinel anomaly fit`)"
        )
    stored_digest = record.pop("sha256", None)
    if stored_digest != _digest(record, arrays):
        raise ModelError(f"{path}: checksum mismatch: the file was damaged or edited after it was written")
    kind = _field(record, "kind", str, path)
    if kind not in _RESTORERS:
        raise ModelError(f"{path}: unknown detector kind {kind!r} (known: {', '.join(_RESTORERS)})")
    names = _field(record, "feature_names", list, path)
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ModelError(f"{path}: feature names must be distinct strings, got {names!r}")
    training = _field(record, "training", dict, path)
    parameters = _field(record, "parameters", dict, path)
    used, drift_rows, centre, scale = _drift_fields(record, names, path) if version >= 2 else (None, 0, None, None)
    try:
        detector = _RESTORERS[kind](parameters, arrays)
        return AnomalyModel(
            detector,
            tuple(names),
            float(_field(record, "limit", (int, float), path)),
            int(_field(record, "smoothing", int, path)),
            int(_field(record, "persistence", int, path)),
            float(_field(record, "limit_quantile", (int, float), path)),
            float(_field(record, "margin", (int, float), path)),
            TrainingInfo(
                int(_field(training, "rows", int, path)),
                training.get("first"),
                training.get("last"),
                training.get("source"),
            ),
            used,
            drift_rows,
            centre,
            scale,
            # Written since the deadband came (optional in version 2): a file without it alarms as before.
            float(_field(record, "clear", (int, float), path)) if "clear" in record else 1.0,
        )
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
