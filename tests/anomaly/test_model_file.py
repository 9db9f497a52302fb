"""Model files: an exact round trip, and every kind of bad file refused with ModelError."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sentinel.engine.anomaly import FORMAT_VERSION, AnomalyModel, FitSettings, fit_model, load_model, save_model
from sentinel.engine.anomaly.model_file import _digest
from sentinel.errors import ModelError
from tests.anomaly.synthetic import NAMES, normal_rows
from tests.examples import examples

TRAIN = normal_rows(500, seed=31)
MODELS: dict[str, AnomalyModel] = {
    "pca": fit_model(TRAIN, NAMES, FitSettings(detector="pca", pca_statistic="combined", smoothing=5)),
    "iforest": fit_model(TRAIN, NAMES, FitSettings(detector="iforest", trees=25, smoothing=3, persistence=2)),
    "robust_z": fit_model(TRAIN, NAMES, FitSettings(detector="robust_z", window=7)),
}


@pytest.fixture(params=sorted(MODELS))
def saved(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[AnomalyModel, Path]:
    model = MODELS[request.param]
    path = tmp_path / f"{request.param}.npz"
    save_model(model, path)
    return model, path


def test_round_trip_keeps_metadata(saved: tuple[AnomalyModel, Path]) -> None:
    model, path = saved
    loaded = load_model(path)
    assert loaded.kind == model.kind
    assert loaded.feature_names == NAMES
    assert loaded.limit == model.limit
    assert (loaded.smoothing, loaded.persistence) == (model.smoothing, model.persistence)
    assert loaded.training == model.training
    assert loaded.detector.parameters() == model.detector.parameters()


@settings(max_examples=examples(25), deadline=None)
@given(
    kind=st.sampled_from(sorted(MODELS)),
    rows=arrays(np.float64, st.tuples(st.integers(1, 40), st.just(4)), elements=st.floats(-1e3, 1e3)),
)
def test_loaded_model_scores_exactly_like_the_original(kind: str, rows: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "m.npz"
        save_model(MODELS[kind], path)
        loaded = load_model(path)
    before, after = MODELS[kind].score(rows), loaded.score(rows)
    np.testing.assert_array_equal(before.statistic, after.statistic)
    np.testing.assert_array_equal(before.alarm, after.alarm)


def members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def rewrite(path: Path, parts: dict[str, np.ndarray]) -> None:
    with path.open("wb") as out:
        np.savez(out, allow_pickle=False, **parts)


def record_of(parts: dict[str, np.ndarray]) -> dict[str, object]:
    record: dict[str, object] = json.loads(parts["meta"].tobytes())
    return record


def with_record(parts: dict[str, np.ndarray], record: dict[str, object], resign: bool) -> dict[str, np.ndarray]:
    if resign:
        record = dict(record)
        record.pop("sha256", None)
        arrays = {k.removeprefix("array."): v for k, v in parts.items() if k != "meta"}
        record["sha256"] = _digest(record, arrays)
    return parts | {"meta": np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)}


def test_truncated_file_is_refused(saved: tuple[AnomalyModel, Path]) -> None:
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a readable model file"):
        load_model(path)


def test_a_flipped_byte_in_any_member_is_refused(saved: tuple[AnomalyModel, Path]) -> None:
    _, path = saved
    original = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    for info in infos:
        # The member's stored bytes follow its 30-byte local header, file name and extra field.
        name_length = int.from_bytes(original[info.header_offset + 26 : info.header_offset + 28], "little")
        extra_length = int.from_bytes(original[info.header_offset + 28 : info.header_offset + 30], "little")
        start = info.header_offset + 30 + name_length + extra_length
        damaged = bytearray(original)
        damaged[start + info.compress_size // 2] ^= 0x55
        path.write_bytes(bytes(damaged))
        with pytest.raises(ModelError):
            load_model(path)


def test_edited_array_fails_the_checksum(saved: tuple[AnomalyModel, Path]) -> None:
    _, path = saved
    parts = members(path)
    name = next(k for k in parts if k.startswith("array.") and parts[k].dtype.kind == "f")
    parts[name] = parts[name] * 1.01
    rewrite(path, parts)
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model(path)


def test_other_format_version_is_refused_with_a_hint(saved: tuple[AnomalyModel, Path]) -> None:
    _, path = saved
    parts = members(path)
    record = record_of(parts) | {"format_version": FORMAT_VERSION + 1}
    rewrite(path, with_record(parts, record, resign=True))
    with pytest.raises(ModelError, match=rf"format version {FORMAT_VERSION + 1}.*refit"):
        load_model(path)


def test_unknown_detector_kind_is_refused(saved: tuple[AnomalyModel, Path]) -> None:
    _, path = saved
    parts = members(path)
    rewrite(path, with_record(parts, record_of(parts) | {"kind": "os.system"}, resign=True))
    with pytest.raises(ModelError, match=r"unknown detector kind .os\.system."):
        load_model(path)


def test_inconsistent_arrays_are_refused_even_with_a_valid_checksum(saved: tuple[AnomalyModel, Path]) -> None:
    _, path = saved
    parts = members(path)
    name = next(k for k in parts if k.startswith("array."))
    parts[name] = parts[name][:-1]
    record = record_of(parts)
    rewrite(path, with_record(parts, record, resign=True))
    with pytest.raises(ModelError, match=str(path.name)):
        load_model(path)


def test_feature_count_mismatch_is_refused(saved: tuple[AnomalyModel, Path]) -> None:
    _, path = saved
    parts = members(path)
    record = record_of(parts) | {"feature_names": ["a", "b"]}
    rewrite(path, with_record(parts, record, resign=True))
    with pytest.raises(ModelError, match="features"):
        load_model(path)


def test_pickled_member_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    with path.open("wb") as out:
        evil = {"meta": np.frombuffer(b"{}", dtype=np.uint8), "array.x": np.array([object()], dtype=object)}
        np.savez(out, allow_pickle=True, **evil)
    with pytest.raises(ModelError, match="not a readable model file"):
        load_model(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a model at all", b"PK\x03\x04garbage"],
    ids=["empty", "text", "broken-zip"],
)
def test_non_archives_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=r"m\.npz"):
        load_model(path)


def test_bare_numpy_array_and_foreign_archive_are_refused(tmp_path: Path) -> None:
    bare = tmp_path / "bare.npz"
    with bare.open("wb") as out:
        np.save(out, np.arange(3))
    with pytest.raises(ModelError, match="bare numpy array"):
        load_model(bare)
    foreign = tmp_path / "foreign.npz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("weights.npy", b"\x93NUMPY")
    foreign.write_bytes(buffer.getvalue())
    with pytest.raises(ModelError):
        load_model(foreign)


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "absent.npz")


def test_version_1_files_still_load_and_score_with_a_fixed_centre_on_every_feature(tmp_path: Path) -> None:
    """A file written before version 2 (no used_features, no drift) is read as what it was: all features, no
    drift following; it scores exactly like a version 2 model fitted with drift and slow-feature dropping off."""
    old_style = fit_model(TRAIN, NAMES, FitSettings(smoothing=5, drift=False, drop_slow=False))
    path = tmp_path / "v1.npz"
    save_model(old_style, path)
    parts = members(path)
    record = record_of(parts)
    for field in ("used_features", "drift"):
        record.pop(field)
    rewrite(path, with_record(parts, record | {"format_version": 1}, resign=True))
    loaded = load_model(path)
    assert (loaded.used, loaded.drift_rows) == (None, 0)
    rows = normal_rows(300, seed=8) + np.linspace(0, 3, 300)[:, None]
    np.testing.assert_array_equal(loaded.score(rows).statistic, old_style.score(rows).statistic)


def test_version_2_keeps_used_features_and_drift_state(tmp_path: Path) -> None:
    train = TRAIN.copy()
    train[:, 3] = 60 + np.cumsum(np.random.default_rng(4).normal(size=len(train))) * 0.05  # slow: left out
    model = fit_model(train, NAMES, FitSettings(smoothing=5))
    assert model.ignored == ("temperature",)
    path = tmp_path / "v2.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert (loaded.used, loaded.drift_rows) == (model.used, model.drift_rows)
    rows = normal_rows(200, seed=9)
    np.testing.assert_array_equal(loaded.score(rows).statistic, model.score(rows).statistic)
    parts = members(path)
    bad = record_of(parts) | {"used_features": ["pressure", "nope"]}
    rewrite(path, with_record(parts, bad, resign=True))
    with pytest.raises(ModelError, match="used_features"):
        load_model(path)


def test_the_deadband_is_kept_and_a_file_written_before_it_alarms_as_before(tmp_path: Path) -> None:
    model = fit_model(TRAIN, NAMES, FitSettings(smoothing=5, clear=0.8))
    path = tmp_path / "deadband.npz"
    save_model(model, path)
    assert load_model(path).clear == 0.8
    parts = members(path)
    record = record_of(parts)
    record.pop("clear")
    rewrite(path, with_record(parts, record, resign=True))
    assert load_model(path).clear == 1.0  # no deadband: the alarm of the file's own time
