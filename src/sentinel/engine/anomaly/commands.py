"""``sentinel anomaly fit`` and ``sentinel anomaly score``: offline fitting and scoring of any multivariate CSV.

Scoring runs the same :class:`~sentinel.engine.anomaly.model.Scorer` the live engine runs, on the whole file as
one batch, so offline figures are the engine's figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from sentinel.engine.anomaly.dataset import read_table
from sentinel.engine.anomaly.model import DETECTOR_KINDS, FitSettings, fit_model
from sentinel.engine.anomaly.model_file import load_model, save_model
from sentinel.engine.anomaly.pca import PCA_STATISTICS

anomaly_app = typer.Typer(
    help="Fit anomaly models on normal data and score CSV files with them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_DEFAULTS = FitSettings()

SeparatorOption = Annotated[str, typer.Option("--sep", help="CSV field separator")]
TimeColumnOption = Annotated[
    str, typer.Option("--time-column", help="Name of the time column; '' when the file has none")
]


@anomaly_app.command("fit")
def fit_command(  # noqa: PLR0917  # typer maps each option to a parameter
    csv: Annotated[Path, typer.Option("--csv", help="CSV of normal operation to train on")],
    out: Annotated[Path, typer.Option("--out", help="Model file to write")],
    sep: SeparatorOption = ",",
    time_column: TimeColumnOption = "datetime",
    detector: Annotated[str, typer.Option(help=f"One of {', '.join(DETECTOR_KINDS)}")] = _DEFAULTS.detector,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Column to leave out (repeatable), e.g. labels")
    ] = None,
    smoothing: Annotated[int, typer.Option(help="Rows in the trailing mean of the statistic")] = _DEFAULTS.smoothing,
    quantile: Annotated[
        float, typer.Option(help="Quantile of training scores used as the limit")
    ] = _DEFAULTS.limit_quantile,
    margin: Annotated[float, typer.Option(help="Factor applied to that quantile")] = _DEFAULTS.margin,
    persistence: Annotated[
        int, typer.Option(help="Rows over the limit in a row before the alarm")
    ] = _DEFAULTS.persistence,
    variance: Annotated[
        float, typer.Option(help="PCA: share of variance the components keep")
    ] = _DEFAULTS.pca_variance,
    statistic: Annotated[str, typer.Option(help=f"PCA: one of {', '.join(PCA_STATISTICS)}")] = _DEFAULTS.pca_statistic,
    trees: Annotated[int, typer.Option(help="Isolation forest: number of trees")] = _DEFAULTS.trees,
    window: Annotated[int, typer.Option(help="Robust z: rows in the rolling median")] = _DEFAULTS.window,
    seed: Annotated[int, typer.Option(help="Isolation forest: random seed")] = _DEFAULTS.seed,
) -> None:
    """Fit a model on the rows of CSV (all of them are taken as normal) and write it to OUT."""
    if detector not in DETECTOR_KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(DETECTOR_KINDS)}", param_hint="--detector")
    if statistic not in PCA_STATISTICS:
        raise typer.BadParameter(f"must be one of {', '.join(PCA_STATISTICS)}", param_hint="--statistic")
    try:
        settings = FitSettings(
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
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    table = read_table(csv, sep, time_column or None, exclude or ())
    model = fit_model(
        table.values, table.feature_names, settings, first=table.first_time, last=table.last_time, source=str(csv)
    )
    save_model(model, out)
    typer.echo(
        f"fitted {model.kind} on {model.training.rows} rows x {len(model.feature_names)} features "
        f"({', '.join(model.feature_names)}); limit {model.limit:.6g}; wrote {out}"
    )


@anomaly_app.command("score")
def score_command(
    model_path: Annotated[Path, typer.Option("--model", help="Model file written by `fit`")],
    csv: Annotated[Path, typer.Option("--csv", help="CSV to score; needs the model's feature columns")],
    out: Annotated[Path, typer.Option("--out", help="CSV of per-row statistic, score and alarm")],
    sep: SeparatorOption = ",",
    time_column: TimeColumnOption = "datetime",
) -> None:
    """Score every row of CSV; score = statistic / limit, alarm = 1 when the model's alarm rule holds."""
    model = load_model(model_path)
    table = read_table(csv, sep, time_column or None, features=model.feature_names)
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
