"""The report's content: pure functions of the model's metadata."""

from __future__ import annotations

from typing import Any

from workflows.storm.report import markdown_summary, metrics_table

METRICS = {
    "baseline": {"roc_auc": 0.5, "pr_auc": 0.3455, "log_loss": 0.6586},
    "model": {"roc_auc": 0.80587, "pr_auc": 0.69500, "log_loss": 0.56907},
}


def _meta(engine: str, requested: str) -> dict[str, Any]:
    return {
        "name": "storm-damage",
        "version": "v1",
        "code_version": "0.1.0",
        "train_years": [1993, 1994],
        "test_years": [1995],
        "rows": {"train": 24_291, "test": 20_461, "positive_rate_train": 0.427},
        "data_version": "d1",
        "engine": engine,
        "params": {"engine": requested},
        "metrics": METRICS,
    }


def test_the_metrics_table_puts_the_model_first_and_rounds() -> None:
    assert metrics_table(METRICS) == [
        {"model": "storm-damage model", "roc_auc": 0.8059, "pr_auc": 0.695, "log_loss": 0.5691},
        {"model": "baseline (prior)", "roc_auc": 0.5, "pr_auc": 0.3455, "log_loss": 0.6586},
    ]


def test_the_summary_says_which_engine_fitted_the_model_and_why() -> None:
    auto = markdown_summary(_meta("sklearn", "auto"), {"rows": 10, "predicted_damaging": 4}, {"ingested": ["a"]})
    assert "- Fitted with scikit-learn on one worker (chosen by the size of the training data)" in auto
    assert "| storm-damage model | 0.8059 | 0.6950 | 0.5691 |" in auto
    forced = markdown_summary(_meta("dask-ml", "dask-ml"), {}, {})
    assert "- Fitted with dask-ml on the cluster (as requested)" in forced
