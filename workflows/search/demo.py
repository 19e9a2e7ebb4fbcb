"""The search workload's local run (`mlwf demo --workload search`): on the curated data a
storm demo left in the same output folder."""

from __future__ import annotations

from mlwf import storage
from mlwf.workloads import Demo


def run(output: str = "mlwf-data", split_year: int | None = None) -> Demo:
    storage.check_writable(output)
    from workflows.search.flows import curated_events, damage_model_search

    curated_events(output)  # before Prefect or Dask start: is there anything to search?

    summary = damage_model_search(data_root=output, split_year=split_year)
    best = summary["best"]
    lines = [
        "",
        f"{'C':>8} {'class weight':<13} {'ROC AUC':>8} {'std':>7}",
        *(
            f"{row['C']:>8g} {row['class_weight']:<13} {row['roc_auc_mean']:>8.4f} {row['roc_auc_std']:>7.4f}"
            for row in summary["candidates"]
        ),
        "",
        f"best         C={best['C']:g}, class weight {best['class_weight']} "
        f"(held-out {summary['test_years']}: ROC AUC {summary['held_out_roc_auc']:.4f})",
        f"report       {summary['report']}",
    ]
    return Demo(summary, lines)
