"""Versioned model files: every model written for a rule's file is kept, so a bad refit can be rolled back.

Layout, for the live file ``<models_dir>/dust_collector.npz`` (the one the rule names and the engine reads)::

    <models_dir>/.versions/dust_collector/1.npz    # a model file exactly as save_model writes it
    <models_dir>/.versions/dust_collector/1.json   # when it was written, why, its training period, rows, limit,
                                                   # the FitSettings it was fitted with (when known), its SHA-256

:func:`write_version` saves a model as the next number, then puts a copy of it in place of the live file with
``os.replace`` (the engine never reads half a file; the new inode tells :func:`~.live.model_stamp` it changed, so
the running engine reloads it). A live file that is no version yet (written by ``sentinel anomaly fit``, or copied
in) is first kept as a version of its own ("adopted"), so the first refit can be rolled back too. :func:`rollback`
copies the previous version (the one that was live when the live one was written, else the highest number below
it) or a named one over the live file the same way, after checking that it loads. Which version is live is found by the
live file's SHA-256. At most ``keep`` versions are kept (the oldest go first; the live one and the one it replaced
are never removed). Writers of one rule's versions take a lock file (``flock``), so a refit in ``serve`` and a
``sentinel anomaly rollback`` cannot interleave.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.engine.anomaly.model import AnomalyModel
from sentinel.engine.anomaly.model_file import load_model, save_model
from sentinel.errors import ModelError

VERSIONS_DIR = ".versions"


@dataclass(frozen=True)
class ModelVersion:
    """One kept version of a model file, as its record describes it."""

    number: int
    path: Path
    written_at: datetime
    note: str
    kind: str
    rows: int
    first: str | None
    last: str | None
    limit: float
    sha256: str
    fit: Mapping[str, Any] | None
    previous: int | None = None  # the version live when this one was written (the one to roll back to)
    live: bool = False


def versions_dir(live: Path) -> Path:
    """Where the versions of the live model file ``live`` are kept."""
    return live.parent / VERSIONS_DIR / live.stem


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace_with_copy(source: Path, target: Path) -> None:
    """Put a copy of ``source`` at ``target`` in one rename (never half a file at ``target``)."""
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


@contextmanager
def _locked(live: Path) -> Iterator[Path]:
    folder = versions_dir(live)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_record(path: Path) -> ModelVersion | None:
    """A version's record, or None when it is unreadable (a version half written by a process that died)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ModelVersion(
            number=int(data["number"]),
            path=path.with_suffix(".npz"),
            written_at=datetime.fromisoformat(data["written_at"]),
            note=str(data["note"]),
            kind=str(data["kind"]),
            rows=int(data["rows"]),
            first=data.get("first"),
            last=data.get("last"),
            limit=float(data["limit"]),
            sha256=str(data["sha256"]),
            fit=data.get("fit"),
            previous=data.get("previous"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _records(folder: Path) -> list[ModelVersion]:
    if not folder.is_dir():
        return []
    found = (_read_record(p) for p in folder.glob("*.json") if p.stem.isdigit())
    return sorted((v for v in found if v is not None and v.path.is_file()), key=lambda v: v.number)


def list_versions(live: Path) -> list[ModelVersion]:
    """The kept versions of ``live``, oldest first, the one the live file holds marked ``live``."""
    live_sha = _sha256(live) if live.is_file() else None
    return [_with_live(v, v.sha256 == live_sha) for v in _records(versions_dir(live))]


def _with_live(version: ModelVersion, live: bool) -> ModelVersion:
    return ModelVersion(**{**version.__dict__, "live": live})


def live_version(live: Path) -> ModelVersion | None:
    """The version the live file holds (the newest if several hold the same bytes); None if it is none of them."""
    held = [v for v in list_versions(live) if v.live]
    return held[-1] if held else None


def _store(
    folder: Path,
    number: int,
    model_file: Path,
    note: str,
    fit: Mapping[str, Any] | None,
    now: datetime,
    previous: int | None = None,
) -> ModelVersion:
    """Keep ``model_file`` (already at ``<folder>/<number>.npz``) with its record written after it."""
    model = load_model(model_file)
    record = {
        "number": number,
        "written_at": now.astimezone(UTC).isoformat(),
        "note": note,
        "kind": model.kind,
        "rows": model.training.rows,
        "first": model.training.first,
        "last": model.training.last,
        "limit": model.limit,
        "sha256": _sha256(model_file),
        "fit": dict(fit) if fit is not None else None,
        "previous": previous,
    }
    partial = folder / f"{number}.json.partial"
    partial.write_text(json.dumps(record, sort_keys=True, indent=1), encoding="utf-8")
    os.replace(partial, folder / f"{number}.json")
    stored = _read_record(folder / f"{number}.json")
    assert stored is not None
    return stored


def _adopt(live: Path, folder: Path, records: list[ModelVersion], now: datetime) -> list[ModelVersion]:
    """Keep the live file as a version when it is none of the kept ones (written by `anomaly fit`, or copied in)."""
    if not live.is_file():
        return records
    live_sha = _sha256(live)
    if any(v.sha256 == live_sha for v in records):
        return records
    number = records[-1].number + 1 if records else 1
    try:
        load_model(live)
    except ModelError:
        return records  # an unreadable live file is not worth keeping; the new version replaces it
    shutil.copyfile(live, folder / f"{number}.npz")
    return [*records, _store(folder, number, folder / f"{number}.npz", "adopted", None, now)]


def _prune(folder: Path, records: list[ModelVersion], keep: int, live: ModelVersion) -> None:
    """Remove the oldest versions beyond ``keep`` (never the live one, nor the one it replaced)."""
    extra = len(records) - keep
    for version in records:
        if extra <= 0:
            break
        if version.sha256 == live.sha256 or version.number == live.previous:
            continue
        (folder / f"{version.number}.json").unlink(missing_ok=True)
        version.path.unlink(missing_ok=True)
        extra -= 1


def write_version(
    model: AnomalyModel,
    live: Path,
    *,
    keep: int,
    note: str,
    fit: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> ModelVersion:
    """Keep ``model`` as the next version of ``live`` and make it the live file (see the module docstring)."""
    if keep < 2:
        raise ValueError("keep at least 2 versions (the live one and the one to roll back to)")
    now = now or datetime.now(UTC)
    with _locked(live) as folder:
        records = _adopt(live, folder, _records(folder), now)
        number = records[-1].number + 1 if records else 1
        current = live_version(live)
        save_model(model, folder / f"{number}.npz")
        version = _store(folder, number, folder / f"{number}.npz", note, fit, now, current.number if current else None)
        _replace_with_copy(version.path, live)
        _prune(folder, [*records, version], keep, version)
    return _with_live(version, True)


def rollback(live: Path, to: int | None = None) -> ModelVersion:
    """Make version ``to`` (default: the one before the live one) the live file again; ModelError says why not."""
    with _locked(live) as folder:
        records = _records(folder)
        if not records:
            raise ModelError(f"没有可回退的版本 no versions of {live} kept (in {folder})")
        numbers = ", ".join(str(v.number) for v in records)
        if to is None:
            current = live_version(live)
            if current is None:
                raise ModelError(
                    f"当前模型文件不是已保存的版本 {live} holds none of the kept versions ({numbers}): "
                    "name one with --to"
                )
            replaced = [v for v in records if v.number == current.previous]
            earlier = replaced or [v for v in records if v.number < current.number]
            if not earlier:
                raise ModelError(f"没有更早的版本 {live} holds version {current.number}, the oldest kept ({numbers})")
            target = earlier[-1]
        else:
            named = [v for v in records if v.number == to]
            if not named:
                raise ModelError(f"没有版本 {to} no version {to} of {live} (kept: {numbers}, in {folder})")
            target = named[0]
        load_model(target.path)  # a damaged version is refused before it replaces anything
        if _sha256(target.path) != target.sha256:
            raise ModelError(f"版本文件已损坏 {target.path}: its SHA-256 is not the one recorded when it was written")
        _replace_with_copy(target.path, live)
    return _with_live(target, True)
