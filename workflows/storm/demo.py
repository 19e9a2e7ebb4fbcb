"""The storm workload's local run (`mlwf demo`): the whole pipeline on the shipped sample
(or any source), checked up front so a bad argument fails before Prefect or Dask start."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from mlwf import storage
from mlwf.errors import RefusedError
from mlwf.workloads import Demo

SAMPLE = str(files("workflows.storm") / "sample_data")


def run(
    output: str = "mlwf-data",
    source: str | None = None,
    years: list[int] | None = None,
    split_year: int | None = None,
    engine: str = "auto",
    train_years: str | None = None,
    force_promote: bool = False,
) -> Demo:
    from workflows.storm.ingest import list_source
    from workflows.storm.model import year_range

    source = source or SAMPLE
    list_source(source, years)  # fail before any Prefect or Dask start-up
    year_range(train_years)
    storage.check_writable(output)

    from workflows.storm.flows import storm_damage_pipeline

    try:
        result = storm_damage_pipeline(
            source=source,
            years=years,
            data_root=output,
            split_year=split_year,
            engine=engine,
            train_years=train_years,
            force_promote=force_promote,
        )
    except RefusedError as refused:
        if not refused.details:
            raise
        return Demo(refused.details, summary(refused.details), refused=str(refused))
    return Demo(result, summary(result))


def summary(result: dict[str, Any]) -> list[str]:
    from workflows.storm.report import metrics_table

    lines = ["", f"{'model':<32} {'ROC AUC':>8} {'PR AUC':>8} {'log loss':>9}"]
    for row in metrics_table(result["metrics"]):
        lines.append(f"{row['model']:<32} {row['roc_auc']:>8.4f} {row['pr_auc']:>8.4f} {row['log_loss']:>9.4f}")
    lines.append("")
    for name, reason in sorted(result.get("quarantined", {}).items()):
        lines.append(f"quarantined  {name}: {reason}")
    for name, newer in sorted(result.get("superseded", {}).items()):
        lines.append(f"not used     {name}: older than the release held, {newer}")
    lines.append(
        f"model        {result['model_version']} (fitted with {result['engine']}, trained on {result['train_window']})"
    )
    lines.append(f"gate         {result['promotion']}")
    if result["drift_warnings"]:
        lines.append(f"drift        PSI over 0.1 in {', '.join(result['drift_warnings'])} (see the report)")
    if result["scores"] is None:
        lines.append(f"scores       none: {result.get('unscored') or 'no model can score these events'}")
    else:
        lines.append(
            f"scores       {result['scores']} ({result['scored_rows']:,} events, model {result['serving_model']})"
        )
    lines.append(f"report       {result['report']}")
    return lines
