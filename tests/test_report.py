"""The report's content: pure functions of the model's metadata."""

from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np

from workflows.storm.report import curves_png, drift_png, markdown_summary, metrics_table

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
    auto = markdown_summary(_meta("sklearn", "auto"), {"rows": 10, "predicted_damaging": 4}, {"ingested": ["a"]}, {})
    assert "- Fitted with scikit-learn on one worker (chosen by the size of the training data)" in auto
    assert "| storm-damage model | 0.8059 | 0.6950 | 0.5691 |" in auto
    forced = markdown_summary(_meta("dask-ml", "dask-ml"), {}, {}, {})
    assert "- Fitted with dask-ml on the cluster (as requested)" in forced


DRIFT = {
    "warn": 0.1,
    "flag": 0.25,
    "gap_warning": "evaluation starts 29 years after the last training year (1995 -> 2024)",
    "features": [
        {
            "feature": "event_type",
            "kind": "categorical",
            "psi": 1.9,
            "level": "flag",
            "unseen_share": 0.41,
            "missing_train": 0.0,
            "missing_eval": 0.0,
        },
        {
            "feature": "begin_lat",
            "kind": "numeric",
            "psi": 0.12,
            "level": "warn",
            "unseen_share": 0.0,
            "missing_train": 0.96,
            "missing_eval": 0.0,
        },
    ],
}


def test_the_plots_are_embedded_so_the_prefect_ui_and_a_copied_report_show_them() -> None:
    curves = curves_png(np.array([0, 1, 0, 1]), {"model": np.array([0.1, 0.9, 0.4, 0.6])})
    drift = drift_png(DRIFT)
    markdown = markdown_summary(_meta("sklearn", "auto"), None, {}, {"curves": curves, "drift": drift})
    images = re.findall(r"!\[([^\]]*)\]\(([^)]*)\)", markdown)
    assert [alt for alt, _ in images] == ["ROC and PR curves", "Drift of each input (PSI)"]
    for (_, target), png in zip(images, (curves, drift), strict=True):
        assert target.startswith("data:image/png;base64,"), "no path the UI would have to resolve"
        assert base64.b64decode(target.split(",", 1)[1]) == png
    assert "Nothing scored: no model is current" in markdown


def test_the_report_shows_the_gate_decision_and_the_drift() -> None:
    meta = {
        **_meta("sklearn", "auto"),
        "drift": DRIFT,
        "promotion": {
            "decision": "rejected",
            "compared_with": "the baseline",
            "reasons": ["ROC AUC 0.390 is not 0.05 above the baseline's 0.500"],
            "notes": ["champion abc cannot score these events (no column magnitude): compared with the baseline only"],
            "forced": False,
        },
    }
    markdown = markdown_summary(meta, None, {}, {})
    assert "version `v1` (code 0.1.0): **rejected**" in markdown
    assert "- ROC AUC 0.390 is not 0.05 above the baseline's 0.500" in markdown
    assert "- note: champion abc cannot score" in markdown
    assert "**Warning:** evaluation starts 29 years after the last training year (1995 -> 2024)." in markdown
    assert "| event_type | 1.900 | flag | 41.0% | 0.0% -> 0.0% |" in markdown
    assert "| begin_lat | 0.120 | warn |  | 96.0% -> 0.0% |" in markdown
