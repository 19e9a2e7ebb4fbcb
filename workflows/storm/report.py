"""The pipeline report: a metrics table, the promotion gate's decision, the drift between
training and evaluation rows, and plots (ROC/PR curves, drift).

Pure functions build the content; `write_report` publishes it next to the outputs. The flow
also publishes the table and the markdown as Prefect artifacts. Plots are embedded in the
markdown as data URIs: the Prefect UI cannot resolve a relative path, and a report opened
from its folder (or copied anywhere) still shows them.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from mlwf import storage

MODEL_LABELS = {
    "model": "storm-damage model",
    "champion": "current model (champion)",
    "all_years": "same model, every earlier year",
    "sklearn": "scikit-learn (reference)",
    "baseline": "baseline (prior)",
}
IMAGE_TITLES = {"curves": "ROC and PR curves", "drift": "Drift of each input (PSI)"}
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
    return _png(figure)


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def drift_png(drift: dict[str, Any]) -> bytes:
    """PSI of every input, with the warn and flag lines, as PNG bytes."""
    features = drift["features"][::-1]  # largest at the top
    figure, axis = plt.subplots(figsize=(8, 0.35 * len(features) + 1.2))
    colours = {"stable": "tab:green", "warn": "tab:orange", "flag": "tab:red"}
    axis.barh(
        [f["feature"] for f in features], [f["psi"] for f in features], color=[colours[f["level"]] for f in features]
    )
    for value, name in ((drift["warn"], "warn"), (drift["flag"], "flag")):
        axis.axvline(value, color=colours[name], linestyle=":", linewidth=1, label=f"{name} ({value:g})")
    axis.set(title="Drift from training to evaluation rows", xlabel="population stability index")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def model_section(meta: dict[str, Any], images: dict[str, bytes]) -> list[str]:
    """The model's part of a report: what trained, the gate's decision, metrics, drift, plots."""
    promotion = meta.get("promotion", {})
    rows = meta["rows"]
    lines = [
        f"- Model `{meta['name']}` version `{meta['version']}` (code {meta['code_version']}): "
        f"**{promotion.get('decision', 'promoted')}**",
        f"- Trained on {meta.get('train_window', _years(meta['train_years']))} ({rows['train']:,} events), "
        f"evaluated on {_years(meta['test_years'])} ({rows['test']:,} events)",
        f"- Fitted with {ENGINE_LABELS.get(meta.get('engine', ''), 'dask-ml on the cluster')} "
        + (
            "(chosen by the size of the training data)"
            if meta.get("params", {}).get("engine", "auto") == "auto"
            else "(as requested)"
        ),
        f"- Data version `{meta['data_version']}`; positive rate in training {rows['positive_rate_train']:.1%}; "
        f"events with unknown damage (blank from 1996 on) left out: {rows.get('unknown_label', 0):,}",
    ]
    if promotion:
        lines += ["", "## Promotion gate", "", f"Compared with {promotion['compared_with']} on the same rows."]
        lines += [f"- {reason}" for reason in promotion.get("reasons", [])]
        lines += [f"- note: {note}" for note in promotion.get("notes", [])]
        if promotion.get("forced"):
            lines.append("- promoted by a person with --force-promote despite the reasons above")
    table = metrics_table(meta["metrics"])
    lines += [
        "",
        "| model | ROC AUC | PR AUC | log loss |",
        "|---|---:|---:|---:|",
        *(f"| {r['model']} | {r['roc_auc']:.4f} | {r['pr_auc']:.4f} | {r['log_loss']:.4f} |" for r in table),
    ]
    lines += drift_section(meta.get("drift"))
    for name, png in images.items():
        lines += ["", f"![{IMAGE_TITLES.get(name, name)}]({data_uri(png)})"]
    return lines


def drift_section(drift: dict[str, Any] | None) -> list[str]:
    if not drift:
        return []
    lines = [
        "",
        "## Drift: training rows -> evaluation rows",
        "",
        f"PSI over 10 quantile bins of the training values (numerics) or the training categories "
        f"(unseen ones pooled); warn at {drift['warn']:g}, flag at {drift['flag']:g}.",
    ]
    if drift.get("gap_warning"):
        lines += ["", f"**Warning:** {drift['gap_warning']}."]
    lines += [
        "",
        "| input | PSI | level | unseen categories | missing (train -> eval) |",
        "|---|---:|---|---:|---|",
    ]
    for f in drift["features"]:
        unseen = f"{f['unseen_share']:.1%}" if f["kind"] == "categorical" else ""
        lines.append(
            f"| {f['feature']} | {f['psi']:.3f} | {f['level']} | {unseen} | "
            f"{f['missing_train']:.1%} -> {f['missing_eval']:.1%} |"
        )
    return lines


def markdown_summary(
    model_meta: dict[str, Any],
    scores_meta: dict[str, Any] | None,
    ingest: dict[str, Any],
    images: dict[str, bytes],
    scored_with: str | None = None,
    unscored: str = "no model is current",
    decayed: str = "",
) -> str:
    """The pipeline's report: ingest, the model section, and what was scored with which model
    (or why nothing was)."""
    # Accepted = new or unchanged: the same inputs give the same report, whatever was new.
    accepted = [*ingest.get("ingested", []), *ingest.get("skipped", [])]
    if scores_meta is None:
        scored = f"- Nothing scored: {unscored or 'no model is current'}"
    else:
        scored = (
            f"- Scored {scores_meta.get('rows', 0):,} events with model `{scored_with or model_meta['version']}`, "
            f"{scores_meta.get('predicted_damaging', 0):,} predicted to cause property damage"
        )
    lines = [
        "# Storm damage pipeline report",
        "",
        f"- Source files accepted: {len(accepted)}; quarantined: {len(ingest.get('quarantined', {}))}",
        *(f"- quarantined `{name}`: {reason}" for name, reason in sorted(ingest.get("quarantined", {}).items())),
        *(
            f"- not used `{name}`: older than the release held, `{newer}`"
            for name, newer in sorted(ingest.get("superseded", {}).items())
        ),
        *releases_line(ingest.get("releases", {})),
        scored,
        *([f"- **Decayed**: {decayed}"] if decayed else []),
        *model_section(model_meta, images),
        "",
    ]
    return "\n".join(lines)


def releases_line(releases: dict[Any, str]) -> list[str]:
    """Which release (NCEI's creation date, ``_cYYYYMMDD``) of each data year was used."""
    if not releases:
        return []
    used = ", ".join(f"{year} `{_created(name)}`" for year, name in sorted(releases.items(), key=lambda i: int(i[0])))
    return [f"- Releases used (data year, NCEI creation date): {used}"]


def _created(name: str) -> str:
    return name.rsplit("_c", 1)[-1].removesuffix(".csv.gz")


def write_report(
    reports_url: str,
    model_meta: dict[str, Any],
    scores_meta: dict[str, Any] | None,
    ingest: dict[str, Any],
    images: dict[str, bytes],
    scored_with: str | None = None,
    unscored: str = "",
    decayed: str = "",
) -> storage.Published:
    """Publish report.md (plots embedded), metrics.json and the plots as one report version."""
    markdown = markdown_summary(model_meta, scores_meta, ingest, images, scored_with, unscored, decayed)
    version = storage.fingerprint("report", markdown)

    def write(target: str) -> None:
        for name, png in images.items():
            storage.write_bytes(storage.join(target, f"{name}.png"), png)
        storage.write_json(
            storage.join(target, "metrics.json"),
            {
                "model_version": model_meta["version"],
                "promotion": model_meta.get("promotion"),
                "metrics": model_meta["metrics"],
                "drift": model_meta.get("drift"),
                "scores": scores_meta,
                "scored_with": scored_with,
                "decayed": decayed or None,
            },
        )
        storage.write_bytes(storage.join(target, "report.md"), markdown.encode())

    return storage.publish(reports_url, version, write)


def _years(years: list[int]) -> str:
    return f"{years[0]}" if len(years) == 1 else f"{years[0]}-{years[-1]}"
