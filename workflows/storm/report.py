"""The pipeline report: a metrics table, a markdown summary and ROC/PR curves.

Pure functions build the content; `write_report` publishes it next to the outputs. The flow
also publishes the table and the markdown as Prefect artifacts.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from mlwf import storage

MODEL_LABELS = {"model": "storm-damage model", "sklearn": "scikit-learn (reference)", "baseline": "baseline (prior)"}
ENGINE_LABELS = {"sklearn": "scikit-learn on one worker", "dask-ml": "dask-ml on the cluster"}
_ORDER = {name: index for index, name in enumerate(MODEL_LABELS)}


def metrics_table(metrics: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One row per model: ROC AUC, PR AUC, log loss, rounded for display."""
    return [
        {
            "model": MODEL_LABELS.get(name, name),
            "roc_auc": round(values["roc_auc"], 4),
            "pr_auc": round(values["pr_auc"], 4),
            "log_loss": round(values["log_loss"], 4),
        }
        for name, values in sorted(metrics.items(), key=lambda item: _ORDER.get(item[0], len(_ORDER)))
    ]


def curves_png(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> bytes:
    """ROC and precision-recall curves of every model, side by side, as PNG bytes."""
    figure, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y_true, p)
        precision, recall, _ = precision_recall_curve(y_true, p)
        roc_ax.plot(fpr, tpr, label=MODEL_LABELS.get(name, name))
        if np.ptp(p) == 0:  # a constant score has one operating point: the positive rate
            pr_ax.axhline(float(np.mean(y_true)), color="grey", linestyle=":", label=MODEL_LABELS.get(name, name))
        else:
            pr_ax.plot(recall, precision, label=MODEL_LABELS.get(name, name))
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc_ax.set(title="ROC curve (test years)", xlabel="false positive rate", ylabel="true positive rate")
    pr_ax.set(title="Precision-recall (test years)", xlabel="recall", ylabel="precision")
    for axis in (roc_ax, pr_ax):
        axis.legend(loc="lower right" if axis is roc_ax else "upper right", fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def markdown_summary(model_meta: dict[str, Any], scores_meta: dict[str, Any], ingest: dict[str, Any]) -> str:
    rows = metrics_table(model_meta["metrics"])
    # Accepted = new or unchanged: the same inputs give the same report, whatever was new.
    accepted = [*ingest.get("ingested", []), *ingest.get("skipped", [])]
    lines = [
        "# Storm damage pipeline report",
        "",
        f"- Model `{model_meta['name']}` version `{model_meta['version']}` (code {model_meta['code_version']})",
        f"- Trained on {_years(model_meta['train_years'])} ({model_meta['rows']['train']:,} events), "
        f"evaluated on {_years(model_meta['test_years'])} ({model_meta['rows']['test']:,} events)",
        f"- Fitted with {ENGINE_LABELS.get(model_meta.get('engine', ''), 'dask-ml on the cluster')} "
        + (
            "(chosen by the size of the training data)"
            if model_meta.get("params", {}).get("engine", "auto") == "auto"
            else "(as requested)"
        ),
        f"- Data version `{model_meta['data_version']}`; positive rate in training "
        f"{model_meta['rows']['positive_rate_train']:.1%}",
        f"- Scored {scores_meta.get('rows', 0):,} events, {scores_meta.get('predicted_damaging', 0):,} "
        "predicted to cause property damage",
        f"- Source files accepted: {len(accepted)}; quarantined: {len(ingest.get('quarantined', {}))}",
        "",
        "| model | ROC AUC | PR AUC | log loss |",
        "|---|---:|---:|---:|",
        *(f"| {r['model']} | {r['roc_auc']:.4f} | {r['pr_auc']:.4f} | {r['log_loss']:.4f} |" for r in rows),
        "",
    ]
    for name, reason in sorted(ingest.get("quarantined", {}).items()):
        lines.append(f"- quarantined `{name}`: {reason}")
    lines += ["", "![ROC and PR curves](curves.png)", ""]
    return "\n".join(lines)


def write_report(
    reports_url: str, model_meta: dict[str, Any], scores_meta: dict[str, Any], ingest: dict[str, Any], png: bytes
) -> storage.Published:
    """Publish report.md, metrics.json and curves.png as one report version."""
    markdown = markdown_summary(model_meta, scores_meta, ingest)
    version = storage.fingerprint("report", markdown)

    def write(target: str) -> None:
        storage.write_bytes(storage.join(target, "curves.png"), png)
        storage.write_json(
            storage.join(target, "metrics.json"),
            {"model_version": model_meta["version"], "metrics": model_meta["metrics"], "scores": scores_meta},
        )
        storage.write_bytes(storage.join(target, "report.md"), markdown.encode())

    return storage.publish(reports_url, version, write)


def _years(years: list[int]) -> str:
    return f"{years[0]}" if len(years) == 1 else f"{years[0]}-{years[-1]}"
