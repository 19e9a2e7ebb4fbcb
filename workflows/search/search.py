"""A grid search over scikit-learn's ``LogisticRegression`` (``C`` and ``class_weight``) on the
storm features, with dask-ml's ``GridSearchCV``: every candidate x fold is a task on the Dask
cluster. (dask-ml's own LogisticRegression ignores ``class_weight``, hence scikit-learn's.)
Plain functions: the flow only wires them to the platform."""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd

from mlwf import storage
from mlwf.errors import UserError
from workflows.storm.features import INPUT_COLUMNS, FeatureEncoder
from workflows.storm.model import TARGET, time_split, with_target

LABEL_COLUMN = "damage_property_usd"  # what the storm label is made of (`workflows.storm.parse.label_damage`)


@dataclass(frozen=True)
class SearchConfig:
    """What is searched, and on how much data (flow parameters, recorded in the report)."""

    split_year: int | None = None  # default: the last year is held out to test the best model
    max_rows: int = 100_000  # training rows sampled for the search
    c_values: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    class_weights: tuple[str, ...] = ("none", "balanced")
    folds: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.c_values or any(c <= 0 for c in self.c_values):
            raise UserError(f"c_values must be positive numbers, got {list(self.c_values)}")
        unknown = [w for w in self.class_weights if w not in ("none", "balanced")]
        if not self.class_weights or unknown:
            raise UserError(f"class_weights must be 'none' or 'balanced', got {list(self.class_weights)}")
        if self.folds < 2 or self.max_rows < 100:
            raise UserError("folds must be at least 2 and max_rows at least 100")


@dataclass
class Design:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_years: list[int]
    test_years: list[int]
    features: list[str] = field(default_factory=list)


def design(curated: dd.DataFrame, config: SearchConfig) -> Design:
    """The encoded training sample and the held-out years, from the curated events."""
    years = sorted(int(y) for y in curated["year"].unique().compute())
    train_years, test_years = time_split(years, config.split_year)
    frame = curated[[*INPUT_COLUMNS, LABEL_COLUMN, "year"]]
    train = frame[frame["year"] < min(test_years)]
    rows = int(train.shape[0].compute())
    if rows > config.max_rows:  # sampled on the cluster: only the sample reaches this process
        train = train.sample(frac=config.max_rows / rows, random_state=config.seed)
    train, test = with_target(train.compute()), with_target(frame[frame["year"] >= min(test_years)].compute())
    encoder = FeatureEncoder().fit(train)
    return Design(
        encoder.encode(train),
        train[TARGET].to_numpy(dtype="int8"),
        encoder.encode(test),
        test[TARGET].to_numpy(dtype="int8"),
        train_years,
        test_years,
        list(encoder.feature_names_),
    )


def grid(config: SearchConfig) -> dict[str, list[Any]]:
    return {
        "logisticregression__C": list(config.c_values),
        "logisticregression__class_weight": [None if w == "none" else w for w in config.class_weights],
    }


def search(data: Design, config: SearchConfig) -> Any:
    """Fit every candidate on every fold on the current Dask cluster; refit the best."""
    from dask_ml.model_selection import GridSearchCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    # iid=False: the plain mean over folds, as scikit-learn reports it (dask-ml still weights
    # each fold by its size by default).
    searcher = GridSearchCV(estimator, grid(config), scoring="roc_auc", cv=config.folds, refit=True, iid=False)
    return searcher.fit(data.x_train, data.y_train)


def results(searcher: Any) -> list[dict[str, Any]]:
    """One row per candidate: its parameters and its cross-validated ROC AUC."""
    cv = searcher.cv_results_
    rows = []
    for index, params in enumerate(cv["params"]):
        rows.append(
            {
                "C": float(params["logisticregression__C"]),
                "class_weight": params["logisticregression__class_weight"] or "none",
                "roc_auc_mean": float(cv["mean_test_score"][index]),
                "roc_auc_std": float(cv["std_test_score"][index]),
                "rank": int(cv["rank_test_score"][index]),
            }
        )
    return sorted(rows, key=lambda row: (row["rank"], row["C"], row["class_weight"]))


def held_out_auc(searcher: Any, data: Design) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(data.y_test)) < 2:
        raise UserError("the held-out years have only one class; choose another split year")
    return float(roc_auc_score(data.y_test, searcher.predict_proba(data.x_test)[:, 1]))


def plot(rows: list[dict[str, Any]]) -> bytes:
    """Cross-validated ROC AUC against C, one line per class weighting (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for weight, group in pd.DataFrame(rows).groupby("class_weight"):
        group = group.sort_values("C")
        axes.errorbar(group["C"], group["roc_auc_mean"], yerr=group["roc_auc_std"], marker="o", capsize=3, label=weight)
    axes.set_xscale("log")
    axes.set_xlabel("C (inverse regularisation strength)")
    axes.set_ylabel("ROC AUC (cross-validated)")
    axes.set_title("Damage model search")
    axes.legend(title="class weight")
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def report_markdown(summary: dict[str, Any]) -> str:
    best = summary["best"]
    lines = [
        "# Damage model search",
        "",
        f"Best: C = {best['C']:g}, class weight = {best['class_weight']} "
        f"(cross-validated ROC AUC {best['roc_auc_mean']:.4f} ± {best['roc_auc_std']:.4f}; "
        f"held-out years {summary['test_years']}: {summary['held_out_roc_auc']:.4f}).",
        "",
        f"{summary['rows']:,} training rows from {summary['train_years'][0]}-{summary['train_years'][-1]}, "
        f"{summary['config']['folds']}-fold cross-validation, curated data {summary['curated_version']}.",
        "",
        "| rank | C | class weight | ROC AUC (mean) | std |",
        "|---:|---:|---|---:|---:|",
    ]
    for row in summary["candidates"]:
        scores = f"{row['roc_auc_mean']:.4f} | {row['roc_auc_std']:.4f}"
        lines.append(f"| {row['rank']} | {row['C']:g} | {row['class_weight']} | {scores} |")
    lines += ["", "![ROC AUC against C](scores.png)", ""]
    return "\n".join(lines)


def publish(reports_url: str, summary: dict[str, Any], png: bytes) -> storage.Published:
    """The report (markdown, JSON, plot) as one version, keyed by what produced it."""
    version = storage.fingerprint(summary["curated_version"], summary["config"], summary["code_version"])

    def write(target: str) -> dict[str, Any]:
        storage.write_bytes(storage.join(target, "scores.png"), png)
        storage.write_json(storage.join(target, "results.json"), summary)
        storage.write_bytes(storage.join(target, "report.md"), report_markdown(summary).encode())
        return {"best": summary["best"]}

    return storage.publish(reports_url, version, write)


def summarise(
    config: SearchConfig, data: Design, rows: list[dict[str, Any]], held_out: float, curated_version: str, code: str
) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {
                "config": asdict(config),
                "curated_version": curated_version,
                "code_version": code,
                "train_years": data.train_years,
                "test_years": data.test_years,
                "rows": len(data.y_train),
                "features": len(data.features),
                "best": rows[0],
                "held_out_roc_auc": held_out,
                "candidates": rows,
            }
        )
    )
