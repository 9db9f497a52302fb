"""``sentinel anomaly versions`` / ``rollback`` / ``refit``: the kept versions of a model file, and refits by hand.

``versions --model FILE`` prints the versions kept for a model file (:mod:`.versions`), times in the display zone;
``rollback --model FILE [--to N]`` puts the previous (or version N) back in place of the live file, which a running
engine reloads; ``refit --rule ID`` runs one refit of an anomaly rule now, the same code as ``serve``'s scheduled
refits (:func:`~.refit.refit_rule`, with the ``anomaly_refit_*`` settings). ``FILE`` is a path, or a name under
``anomaly_models_dir``. The commands are registered on ``sentinel anomaly`` by :mod:`.commands`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sentinel.engine.anomaly.versions import list_versions, rollback, versions_dir

ModelOption = Annotated[
    Path, typer.Option("--model", help="The rule's model file: a path, or a name under anomaly_models_dir")
]


def _model_path(ctx: typer.Context, model: Path) -> Path:
    """``model`` as given when it (or its versions) exists, else under anomaly_models_dir; BadParameter otherwise."""
    from sentinel.cli_settings import cli_settings

    if model.is_file() or versions_dir(model).is_dir():
        return model
    folder = cli_settings(ctx).anomaly_models_dir
    if folder is not None and not model.is_absolute():
        candidate = folder / model
        if candidate.is_file() or versions_dir(candidate).is_dir():
            return candidate
    where = f" (nor under anomaly_models_dir {folder})" if folder is not None else ""
    raise typer.BadParameter(f"没有这个模型文件 no model file {model}{where}", param_hint="--model")


def versions_command(ctx: typer.Context, model: ModelOption) -> None:
    """List the kept versions of a model file (the live one marked *)."""
    from sentinel.cli_common import display_zone, table

    path = _model_path(ctx, model)
    kept = list_versions(path)
    if not kept:
        typer.echo(f"没有保存的版本 no versions of {path} kept yet (in {versions_dir(path)})")
        return
    rows = [
        {
            "版本 version": f"{v.number}{' *' if v.live else ''}",
            "写入 written": v.written_at,
            "说明 note": v.note,
            "检测器 kind": v.kind,
            "训练行 rows": v.rows,
            "训练自 from": v.first,
            "训练至 to": v.last,
            "上限 limit": f"{v.limit:.6g}",
        }
        for v in kept
    ]
    columns = tuple(rows[0])
    table(rows, columns, f"模型版本 versions of {path} (* = 当前 live)", display_zone(ctx))
    if not any(v.live for v in kept):
        typer.echo(f"当前文件不是已保存的版本 {path} holds none of these versions (written by hand or by `train`)")


def rollback_command(
    ctx: typer.Context,
    model: ModelOption,
    to: Annotated[int | None, typer.Option("--to", help="Version number to go back to; default: the previous")] = None,
) -> None:
    """Put the previous version (or version --to) back as the live model file; a running engine reloads it."""
    path = _model_path(ctx, model)
    version = rollback(path, to)
    typer.echo(
        f"已回退 rolled back: {path} now holds version {version.number} ({version.note}, {version.kind}, "
        f"{version.rows} rows, limit {version.limit:.6g}); a running engine reloads it"
    )


def refit_command(
    ctx: typer.Context,
    rule_id: Annotated[str, typer.Option("--rule", help="Id of the anomaly rule whose model to refit")],
    rules_path: Annotated[Path | None, typer.Option("--rules", help="Rule packs; default: the shipped ones")] = None,
) -> None:
    """Refit an anomaly rule's model now on its recent normal history (as `serve` does on its schedule)."""
    from datetime import timedelta

    from sentinel.cli_settings import cli_settings
    from sentinel.engine.anomaly.refit import RefitConfig, refit_rule
    from sentinel.engine.loader import load_rules
    from sentinel.store.database import Database

    settings = cli_settings(ctx)
    if settings.anomaly_models_dir is None:
        raise typer.BadParameter(
            "未设置模型目录 anomaly_models_dir is not set (SENTINEL_ANOMALY_MODELS_DIR or the config file)",
            param_hint="--rule",
        )
    rules = load_rules(rules_path)
    rule = next((r for r in rules.rules if r.id == rule_id), None)
    if rule is None or rule.kind != "anomaly":
        known = ", ".join(r.id for r in rules.rules if r.kind == "anomaly")
        what = "没有这条规则 no rule" if rule is None else "不是异常规则 not an anomaly rule:"
        raise typer.BadParameter(f"{what} {rule_id!r} (anomaly rules: {known})", param_hint="--rule")
    config = RefitConfig(
        timedelta(seconds=settings.anomaly_refit_window_s),
        settings.anomaly_refit_min_rows,
        settings.anomaly_model_versions,
    )
    with Database.open(settings, share=True) as db, db.connect() as conn:
        result = refit_rule(conn, rule, settings.anomaly_models_dir, config)
    v = result.version
    typer.echo(
        f"已重新拟合 refitted {rule.id}: version {v.number} of {settings.anomaly_models_dir / (rule.model or '')}, "
        f"{result.rows} rows ({v.first} .. {v.last}), limit {v.limit:.6g}; "
        f"{result.excluded_readings} readings in {result.alert_periods} alert period(s) left out"
    )
