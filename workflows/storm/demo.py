"""The storm workload's local run (`mlwf demo`): the whole pipeline on the shipped sample
(or any source), checked up front so a bad argument fails before Prefect or Dask start."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from mlwf import storage
from mlwf.workloads import Demo

SAMPLE = str(files("workflows.storm") / "sample_data")


def run(
    output: str = "mlwf-data",
    source: str | None = None,
    years: list[int] | None = None,
    split_year: int | None = None,
    engine: str = "auto",
) -> Demo:
    from workflows.storm.ingest import list_source

    source = source or SAMPLE
    list_source(source, years)  # fail before any Prefect or Dask start-up
    storage.check_writable(output)

    from workflows.storm.flows import storm_damage_pipeline

    result = storm_damage_pipeline(source=source, years=years, data_root=output, split_year=split_year, engine=engine)
    return Demo(result, summary(result))


def summary(result: dict[str, Any]) -> list[str]:
    from workflows.storm.report import metrics_table

    lines = ["", f"{'model':<28} {'ROC AUC':>8} {'PR AUC':>8} {'log loss':>9}"]
    for row in metrics_table(result["metrics"]):
        lines.append(f"{row['model']:<28} {row['roc_auc']:>8.4f} {row['pr_auc']:>8.4f} {row['log_loss']:>9.4f}")
    lines.append("")
    for name, reason in sorted(result.get("quarantined", {}).items()):
        lines.append(f"quarantined  {name}: {reason}")
    lines.append(f"model        {result['model_version']} (fitted with {result['engine']})")
    lines.append(f"scores       {result['scores']} ({result['scored_rows']:,} events)")
    lines.append(f"report       {result['report']}")
    return lines
