"""Refitting an anomaly rule's model on its recent normal history (``serve`` on a schedule; ``sentinel anomaly refit``).

A model fitted on a short normal period drifts out of date. ``bench/anomaly_refit.py`` replays this policy on SKAB
(the model's alarms standing in for alerts; refit every 30 minutes on the last hour of usable rows): on the
anomaly-free recording false alarms fall from 28.7 % to 3.2 % with a one-minute margin around alarms, and on
valve1's five-hour session from 14.9 % to 5.3 % on normal rows, at a price: 14 of its 16 faults seen instead of 16
(a fault too faint to alarm is learnt as normal). Hence off by default. :func:`refit_rule`:

1. reads the readings of the rule's metrics from every device of its classes over the last ``window``
   (:func:`~.history.read_class_history`);
2. drops each device's readings inside the periods where that rule had an alert on it (``alerts.raised_at`` to
   ``cleared_at``, an alert whose condition still holds counting to now), widened by :data:`PAD` on both sides:
   the rule raises only after its ``for_s`` and the smoothing, so the rows just before ``raised_at`` were already
   off, and the plant settles after the clear. One minute, not more: in the replay a 10-minute margin left no
   normal rows on a plant whose normal level had moved, and its model stayed in alarm (82 % false alarms).
   Other devices' readings of the same times stay: they were normal;
3. builds rows as the live engine does (:func:`~.history.feature_rows`) and fits with the settings the current
   model was fitted with (recorded with its version, else read back from the model file: :func:`fit_settings_of`);
4. refuses, keeping the current model, when fewer than ``min_rows`` rows or fewer than half the current model's
   training rows remain (many alerts, devices silent), or when there is no current model to refit (train one with
   ``sentinel anomaly train`` first): a refit only follows a model someone chose, it never starts one;
5. writes the model as a new version of the rule's file (:mod:`.versions`); the engine reloads it.

A refusal raises :class:`~sentinel.errors.RefitRefused` (Chinese first: it is read in the log and the CLI).
:func:`refit_loop` is the periodic part the composition root (``sentinel.app``) starts when
``anomaly_refit_every_s`` is set: it refits every anomaly rule in a thread, logs each outcome, and rides out any
failure (a database outage, a bad file) with the current models untouched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from sentinel.engine.anomaly.history import Readings, feature_rows, read_class_history
from sentinel.engine.anomaly.live import load_rule_model
from sentinel.engine.anomaly.model import AnomalyModel, FitSettings, fit_model
from sentinel.engine.anomaly.versions import ModelVersion, live_version, write_version
from sentinel.engine.model import Rule, RuleSet
from sentinel.errors import DatasetError, ModelError, RefitRefused

log = logging.getLogger(__name__)

PAD = timedelta(minutes=1)
_FIT_FIELDS = {f.name for f in dataclasses.fields(FitSettings)}


@dataclass(frozen=True)
class RefitConfig:
    """How refits run: the history window, the fewest rows accepted, the versions kept (from settings)."""

    window: timedelta = timedelta(hours=24)
    min_rows: int = 500
    keep: int = 10


@dataclass(frozen=True)
class RefitResult:
    """A refit that was written: the new version, its rows, and the readings left out for alert periods."""

    rule_id: str
    version: ModelVersion
    rows: int
    excluded_readings: int
    alert_periods: int


def fit_settings_of(model: AnomalyModel, recorded: Mapping[str, Any] | None) -> FitSettings:
    """The settings ``model`` was fitted with: as recorded with its version, else what its file tells."""
    if recorded:
        known = {k: v for k, v in recorded.items() if k in _FIT_FIELDS}
        try:
            return FitSettings(**known)
        except (TypeError, ValueError):
            log.warning("recorded fit settings %r are not valid; reading them back from the model", recorded)
    params = model.detector.parameters()
    values: dict[str, Any] = {
        "detector": model.kind,
        "smoothing": model.smoothing,
        "limit_quantile": model.limit_quantile,
        "margin": model.margin,
        "persistence": model.persistence,
        "clear": model.clear,
        "drift": model.drift_rows > 0,
        # drift_rows 0 means "as many as the training rows": a memory equal to them was most likely that.
        "drift_rows": 0 if model.drift_rows in (0, model.training.rows) else model.drift_rows,
    }
    if model.kind == "pca" and params.get("statistic") in ("t2", "q", "combined"):
        values["pca_statistic"] = params["statistic"]
    if model.kind == "iforest":
        values |= {"trees": params["trees"], "max_samples": params["max_samples"]}
    if model.kind == "robust_z":
        values["window"] = params["window"]
    return FitSettings(**values)


_ALERTS_SQL = """
SELECT device_id, (extract(epoch FROM raised_at) * 1000000)::bigint,
       (extract(epoch FROM coalesce(cleared_at, %(until)s)) * 1000000)::bigint
FROM alerts
WHERE rule_id = %(rule)s AND raised_at < %(until)s AND (cleared_at IS NULL OR cleared_at > %(since)s)
"""


def alert_periods(
    conn: psycopg.Connection[Any], rule_id: str, since: datetime, until: datetime
) -> list[tuple[int, int, int]]:
    """(device id, start µs, end µs) of every alert of ``rule_id`` overlapping ``[since, until)``, padded."""
    pad = int(PAD.total_seconds() * 1_000_000)
    rows = conn.execute(_ALERTS_SQL, {"rule": rule_id, "since": since, "until": until}).fetchall()
    return [(int(device), int(start) - pad, int(end) + pad) for device, start, end in rows]


def without_periods(readings: Readings, periods: Sequence[tuple[int, int, int]]) -> Readings:
    """The readings outside every (device, start, end) period of their device."""
    inside = np.zeros(len(readings.ts_us), dtype=np.bool_)
    for device, start, end in periods:
        inside |= (readings.device == device) & (readings.ts_us >= start) & (readings.ts_us <= end)
    keep = ~inside
    return Readings(
        readings.device[keep],
        [m for m, k in zip(readings.metric, keep, strict=True) if k],
        readings.ts_us[keep],
        readings.value[keep],
    )


def _class_readings(
    conn: psycopg.Connection[Any], rule: Rule, since: datetime, until: datetime
) -> tuple[Readings, str]:
    """The readings of the rule's metrics from all devices of its classes (classes with none are skipped)."""
    parts: list[Readings] = []
    for device_class in rule.device_classes:
        try:
            parts.append(read_class_history(conn, device_class, rule.features, since, until))
        except DatasetError:
            continue
    classes = ", ".join(rule.device_classes)
    if not parts:
        raise RefitRefused(
            f"没有近期数据 no readings of {', '.join(rule.features)} from devices of {classes} "
            f"since {since.isoformat()}"
        )
    return (
        Readings(
            np.concatenate([p.device for p in parts]),
            [m for p in parts for m in p.metric],
            np.concatenate([p.ts_us for p in parts]),
            np.concatenate([p.value for p in parts]),
        ),
        classes,
    )


def refit_rule(
    conn: psycopg.Connection[Any], rule: Rule, models_dir: Path, config: RefitConfig, now: datetime | None = None
) -> RefitResult:
    """Refit ``rule``'s model on its recent normal history and write it as a new version (module docstring)."""
    now = now or datetime.now(UTC)
    if rule.kind != "anomaly" or not rule.model:
        raise RefitRefused(f"不是异常规则 rule {rule.id} is not an anomaly rule with a model file")
    path = models_dir / rule.model
    keeping = f"保留当前模型 keeping the current model {path}"
    try:
        current = load_rule_model(rule, models_dir)
    except ModelError as exc:
        raise RefitRefused(
            f"没有可重新拟合的当前模型 rule {rule.id}: no current model to refit ({exc}); "
            "train one first with `sentinel anomaly train`"
        ) from None
    since = now - config.window
    readings, classes = _class_readings(conn, rule, since, now)
    periods = alert_periods(conn, rule.id, since, now)
    normal = without_periods(readings, periods)
    rows = feature_rows(normal, rule.features) if len(normal.ts_us) else np.empty((0, len(rule.features)))
    needed = max(config.min_rows, current.training.rows // 2)
    if len(rows) < needed:
        raise RefitRefused(
            f"正常数据不足，拒绝重新拟合 rule {rule.id}: {len(rows)} rows of normal operation since "
            f"{since.isoformat()} after leaving out {len(periods)} alert period(s), {needed} needed "
            f"(at least {config.min_rows}, and half the {current.training.rows} the current model was trained on); "
            f"{keeping}"
        )
    recorded = live_version(path)
    settings = fit_settings_of(current, recorded.fit if recorded is not None else None)
    first = datetime.fromtimestamp(int(normal.ts_us.min()) / 1e6, UTC).isoformat()
    last = datetime.fromtimestamp(int(normal.ts_us.max()) / 1e6, UTC).isoformat()
    source = f"refit of {rule.id}: readings of {classes} outside {len(periods)} alert period(s)"
    try:
        model = fit_model(rows, rule.features, settings, first=first, last=last, source=source)
    except (DatasetError, ModelError) as exc:
        raise RefitRefused(f"拟合失败 rule {rule.id}: the fit failed ({exc}); {keeping}") from None
    version = write_version(model, path, keep=config.keep, note="refit", fit=dataclasses.asdict(settings), now=now)
    return RefitResult(rule.id, version, len(rows), len(readings.ts_us) - len(normal.ts_us), len(periods))


def refit_all(
    connect: Callable[[], psycopg.Connection[Any]], rules: RuleSet, models_dir: Path, config: RefitConfig
) -> list[RefitResult]:
    """One refit of every anomaly rule; each refusal or failure is logged and leaves that rule's model as it was."""
    done: list[RefitResult] = []
    for rule in rules.rules:
        if rule.kind != "anomaly":
            continue
        try:
            with connect() as conn:
                result = refit_rule(conn, rule, models_dir, config)
        except RefitRefused as exc:
            log.warning("%s", exc)
            continue
        except Exception as exc:  # a refit must never stop the service nor lose the current model
            failure = f"{type(exc).__name__}: {exc}"
            log.error("重新拟合出错 refit of rule %s failed, current model kept: %s", rule.id, failure)
            continue
        log.info(
            "已重新拟合 rule %s: version %d, %d rows, limit %.6g (%d readings in %d alert period(s) left out)",
            rule.id, result.version.number, result.rows, result.version.limit, result.excluded_readings,
            result.alert_periods,
        )  # fmt: skip
        done.append(result)
    return done


async def refit_loop(
    connect: Callable[[], psycopg.Connection[Any]],
    rules: RuleSet,
    models_dir: Path,
    config: RefitConfig,
    every_s: float,
) -> None:
    """Refit every anomaly rule every ``every_s`` seconds (the first after one interval), until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(refit_all, connect, rules, models_dir, config)
        except Exception as exc:
            log.error("重新拟合出错 scheduled refit failed, models kept: %s: %s", type(exc).__name__, exc)
