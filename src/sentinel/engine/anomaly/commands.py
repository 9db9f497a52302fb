"""``sentinel anomaly fit`` / ``score``: offline fitting and scoring of any multivariate CSV; ``train``: from history.
(``versions``, ``rollback`` and ``refit``, on kept model versions, are in :mod:`.version_commands`.)

``sentinel anomaly train --class CLASS --since TIME [--until TIME] --out MODEL`` reads the class's stored readings
(see :mod:`.history`), builds rows as the live engine does, and fits through the same ``fit_model`` as ``fit``.
Its features are ``--metric`` options in order, else the ``metrics`` of the class's anomaly rule in the packs,
else every metric of the class.

``score`` runs :class:`~sentinel.engine.anomaly.model.Scorer` on the whole file as one batch: the same model file,
detector statistic, trailing mean and limit as the live engine's anomaly rules (:mod:`.live`, whose property test
checks its batched scores against per-row detector calls). What differs: the live engine grades the score with the
rule's levels and their ``for_s`` and ``clear`` on device time, while ``score``'s 0/1 alarm uses the model's
``persistence`` in rows and its ``clear`` (by default 0.9, the packs' own deadband), and the live engine builds its
rows from readings (latest value per metric) where ``score`` takes CSV rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer

from sentinel.engine.anomaly.dataset import Table, find_time_column, read_frame, select_features
from sentinel.engine.anomaly.history import train_from_history
from sentinel.engine.anomaly.model import DETECTOR_KINDS, AnomalyModel, FitSettings, fit_model
from sentinel.engine.anomaly.model_file import load_model, save_model
from sentinel.engine.anomaly.pca import PCA_STATISTICS
from sentinel.engine.anomaly.version_commands import refit_command, rollback_command, versions_command
from sentinel.engine.anomaly.versions import write_version
from sentinel.engine.loader import load_rules

anomaly_app = typer.Typer(
    help="Fit anomaly models on normal data (a CSV or stored history) and score CSV files with them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_DEFAULTS = FitSettings()

# Tuning options shared by `fit` and `train`.
SmoothingOption = Annotated[int, typer.Option(help="Rows in the trailing mean of the statistic")]
QuantileOption = Annotated[float, typer.Option(help="Quantile of training scores used as the limit")]
MarginOption = Annotated[float, typer.Option(help="Factor applied to that quantile")]
ClearOption = Annotated[
    float | None,
    typer.Option(help="A raised alarm clears below this share of the limit (1: no deadband); default 0.9, iforest 1"),
]
VarianceOption = Annotated[float, typer.Option(help="PCA: share of variance the components keep")]
StatisticOption = Annotated[str, typer.Option(help=f"PCA: one of {', '.join(PCA_STATISTICS)}")]
TreesOption = Annotated[int, typer.Option(help="Isolation forest: number of trees")]
WindowOption = Annotated[int, typer.Option(help="Robust z: rows in the rolling median")]
SeedOption = Annotated[int, typer.Option(help="Isolation forest: random seed")]
DropSlowOption = Annotated[
    bool,
    typer.Option(
        "--drop-slow/--keep-slow",
        help="Leave out features too slow in the training rows to put the limit on (effective sample size "
        "under 1 / (1 - quantile))",
    ),
]
DriftOption = Annotated[
    bool, typer.Option("--drift/--no-drift", help="Let the centre follow slow drift of rows judged normal")
]
LimitFoldsOption = Annotated[
    int,
    typer.Option(
        help="Take the limit from training rows held back from the fit, in this many consecutive blocks "
        "(each scored by a model of the others); 0: from the training rows themselves"
    ),
]
OneSensorSigmaOption = Annotated[
    float,
    typer.Option(
        help="With one sensor (PCA): the limit is this many training standard deviations on each reading "
        "(a Shewhart chart, no smoothing); 0: limited like several sensors"
    ),
]
DriftRowsOption = Annotated[
    int, typer.Option(help="Memory of the drift-following centre in rows; 0: as many as the training rows")
]

SeparatorOption = Annotated[str, typer.Option("--sep", help="CSV field separator")]
TimeColumnOption = Annotated[
    str | None,
    typer.Option(
        "--time-column",
        help="Name of the time column; '' when the file has none; default: found by itself "
        "(a column named timestamp, datetime or time, or a first column of date-times)",
    ),
]


def _table(csv: Path, sep: str, time_column: str | None, exclude: Sequence[str] = (), **kw: Any) -> Table:
    """The CSV's feature rows; the time column as given, or found (None), or none ('')."""
    frame = read_frame(csv, sep)
    column = find_time_column(frame, csv) if time_column is None else (time_column or None)
    return select_features(frame, csv, column, exclude, **kw)


def _settings(  # the options of fit and train, checked once
    detector: str,
    smoothing: int,
    quantile: float,
    margin: float,
    persistence: int,
    variance: float,
    statistic: str,
    trees: int,
    window: int,
    seed: int,
    **drift: Any,
) -> FitSettings:
    if detector not in DETECTOR_KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(DETECTOR_KINDS)}", param_hint="--detector")
    if statistic not in PCA_STATISTICS:
        raise typer.BadParameter(f"must be one of {', '.join(PCA_STATISTICS)}", param_hint="--statistic")
    try:
        return FitSettings(
            detector=detector,
            smoothing=smoothing,
            limit_quantile=quantile,
            margin=margin,
            persistence=persistence,
            pca_variance=variance,
            pca_statistic=statistic,
            trees=trees,
            seed=seed,
            window=window,
            **drift,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _time(text: str, option: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time such as 2026-11-01T00:00Z", param_hint=option
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _features(
    device_class: str, metrics: list[str] | None, rules_path: Path | None
) -> tuple[tuple[str, ...], str | None]:
    """--metric options, else the class's anomaly rule metrics, else every metric of the class; and the rule's
    detector, if its pack names one."""
    rules = load_rules(rules_path)
    if device_class not in rules.classes:
        known = ", ".join(rules.classes)
        raise typer.BadParameter(
            f"no device class {device_class!r} in the rule packs (known: {known})", param_hint="--class"
        )
    reported = rules.classes[device_class].metrics
    rule = next((r for r in rules.rules if r.kind == "anomaly" and device_class in r.device_classes), None)
    detector = rule.detector if rule is not None else None
    if metrics:
        missing = [m for m in metrics if m not in reported]
        if missing:
            raise typer.BadParameter(
                f"class {device_class!r} does not report {', '.join(missing)}", param_hint="--metric"
            )
        return tuple(metrics), detector
    return (rule.features if rule is not None else reported), detector


@anomaly_app.command("fit")
def fit_command(  # typer maps each option to a parameter
    csv: Annotated[Path, typer.Option("--csv", help="CSV of normal operation to train on")],
    out: Annotated[Path, typer.Option("--out", help="Model file to write")],
    sep: SeparatorOption = ",",
    time_column: TimeColumnOption = None,
    detector: Annotated[str, typer.Option(help=f"One of {', '.join(DETECTOR_KINDS)}")] = _DEFAULTS.detector,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Column to leave out (repeatable), e.g. labels")
    ] = None,
    smoothing: SmoothingOption = _DEFAULTS.smoothing,
    quantile: QuantileOption = _DEFAULTS.limit_quantile,
    margin: MarginOption = _DEFAULTS.margin,
    clear: ClearOption = _DEFAULTS.clear,
    persistence: Annotated[
        int, typer.Option(help="Rows over the limit in a row before the alarm")
    ] = _DEFAULTS.persistence,
    variance: VarianceOption = _DEFAULTS.pca_variance,
    statistic: StatisticOption = _DEFAULTS.pca_statistic,
    trees: TreesOption = _DEFAULTS.trees,
    window: WindowOption = _DEFAULTS.window,
    seed: SeedOption = _DEFAULTS.seed,
    drop_slow: DropSlowOption = _DEFAULTS.drop_slow,
    drift: DriftOption = _DEFAULTS.drift,
    drift_rows: DriftRowsOption = _DEFAULTS.drift_rows,
    limit_folds: LimitFoldsOption = _DEFAULTS.limit_folds,
    one_sensor_sigma: OneSensorSigmaOption = _DEFAULTS.one_sensor_sigma,
) -> None:
    """Fit a model on the rows of CSV (all of them are taken as normal) and write it to OUT."""
    settings = _settings(
        detector, smoothing, quantile, margin, persistence, variance, statistic, trees, window, seed,
        drop_slow=drop_slow, drift=drift, drift_rows=drift_rows, limit_folds=limit_folds,
        one_sensor_sigma=one_sensor_sigma, clear=clear,
    )  # fmt: skip
    table = _table(csv, sep, time_column, exclude or ())
    model = fit_model(
        table.values, table.feature_names, settings, first=table.first_time, last=table.last_time, source=str(csv)
    )
    save_model(model, out)
    typer.echo(
        f"fitted {model.kind} on {model.training.rows} rows x {len(model.feature_names)} features "
        f"({', '.join(model.feature_names)}); limit {model.limit:.6g}; {_notes(model)}wrote {out}"
    )


def _notes(model: AnomalyModel) -> str:
    """What the fit decided by itself: slow features left out, drift following, the alarm's deadband."""
    notes = ""
    if model.ignored:
        notes += f"not used (too slow in training for the limit): {', '.join(model.ignored)}; "
    if model.drift_rows:
        notes += f"centre follows drift with a memory of {model.drift_rows} rows; "
    if model.clear < 1.0:
        notes += f"an alarm clears below {model.clear:g} x the limit; "
    return notes


@anomaly_app.command("train")
def train_command(  # typer maps each option to a parameter
    ctx: typer.Context,
    device_class: Annotated[str, typer.Option("--class", help="Device class (as the rule packs define it)")],
    since: Annotated[str, typer.Option(help="Start of the normal period, ISO 8601 (UTC if no zone)")],
    out: Annotated[Path, typer.Option("--out", help="Model file to write")],
    until: Annotated[str | None, typer.Option(help="End of the period (exclusive); default: now")] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="Feature metric (repeatable, in order); default: its anomaly rule's, else all"),
    ] = None,
    rules_path: Annotated[Path | None, typer.Option("--rules", help="Rule packs; default: the shipped ones")] = None,
    detector: Annotated[
        str | None, typer.Option(help=f"One of {', '.join(DETECTOR_KINDS)}; default: the rule's, else pca")
    ] = None,
    smoothing: SmoothingOption = _DEFAULTS.smoothing,
    quantile: QuantileOption = _DEFAULTS.limit_quantile,
    margin: MarginOption = _DEFAULTS.margin,
    clear: ClearOption = _DEFAULTS.clear,
    variance: VarianceOption = _DEFAULTS.pca_variance,
    statistic: StatisticOption = _DEFAULTS.pca_statistic,
    trees: TreesOption = _DEFAULTS.trees,
    window: WindowOption = _DEFAULTS.window,
    seed: SeedOption = _DEFAULTS.seed,
    drop_slow: DropSlowOption = _DEFAULTS.drop_slow,
    drift: DriftOption = _DEFAULTS.drift,
    drift_rows: DriftRowsOption = _DEFAULTS.drift_rows,
    limit_folds: LimitFoldsOption = _DEFAULTS.limit_folds,
    one_sensor_sigma: OneSensorSigmaOption = _DEFAULTS.one_sensor_sigma,
) -> None:
    """Fit a model for a device class on its stored readings between --since and --until, and write it to OUT."""
    from sentinel.cli_settings import cli_settings  # database code only for this command
    from sentinel.store.database import Database

    features, rule_detector = _features(device_class, metric, rules_path)
    chosen = detector or rule_detector or _DEFAULTS.detector
    settings = _settings(
        chosen, smoothing, quantile, margin, 1, variance, statistic, trees, window, seed,
        drop_slow=drop_slow, drift=drift, drift_rows=drift_rows, limit_folds=limit_folds,
        one_sensor_sigma=one_sensor_sigma, clear=clear,
    )  # fmt: skip
    start, end = _time(since, "--since"), _time(until, "--until") if until else None
    config = cli_settings(ctx)
    with Database.open(config, share=True) as db, db.connect() as conn:
        model = train_from_history(conn, device_class, features, start, end, settings)
    # A trained model is the one serve runs: kept as a version with its settings, so that a later refit fits the
    # same way and `rollback` can go back to it (or from it to the model it replaced).
    version = write_version(
        model, out, keep=config.anomaly_model_versions, note="train", fit=dataclasses.asdict(settings)
    )
    typer.echo(
        f"trained {model.kind} for {device_class} on {model.training.rows} rows "
        f"({model.training.first} .. {model.training.last}) x {len(features)} features ({', '.join(features)}); "
        f"limit {model.limit:.6g}; {_notes(model)}wrote {out} (version {version.number})"
    )


@anomaly_app.command("score")
def score_command(
    model_path: Annotated[Path, typer.Option("--model", help="Model file written by `fit`")],
    csv: Annotated[Path, typer.Option("--csv", help="CSV to score; needs the model's feature columns")],
    out: Annotated[Path, typer.Option("--out", help="CSV of per-row statistic, score and alarm")],
    sep: SeparatorOption = ",",
    time_column: TimeColumnOption = None,
) -> None:
    """Score every row of CSV; score = statistic / limit, alarm = 1 when the model's alarm rule holds."""
    model = load_model(model_path)
    table = _table(csv, sep, time_column, features=model.feature_names)
    scores = model.score(table.values)
    columns: dict[str, object] = {}
    if table.times is not None and table.time_column is not None:
        columns[table.time_column] = list(table.times)
    columns |= {
        "statistic": scores.statistic,
        "score": scores.score,
        "alarm": scores.alarm.astype("int8"),
    }
    pl.DataFrame(columns).write_csv(out, separator=sep)
    typer.echo(f"scored {len(scores.score)} rows, {int(scores.alarm.sum())} in alarm; wrote {out}")


# The kept versions of a model file and refits by hand (version_commands.py).
anomaly_app.command("versions")(versions_command)
anomaly_app.command("rollback")(rollback_command)
anomaly_app.command("refit")(refit_command)
