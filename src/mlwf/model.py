"""Train: the storm-damage classifier on dask-ml, checked against scikit-learn and a baseline.

Target: did the event cause reported property damage. Split by time: train on the years before
``split_year``, evaluate on it and after, as the model will be used (on years it has not seen).
The distributed path is FeatureEncoder -> dask-ml StandardScaler -> dask-ml LogisticRegression
on dask arrays; the same design matrix also fits scikit-learn in one process so the two can be
compared (their ROC AUC must agree).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask_ml.linear_model import LogisticRegression as DaskLogisticRegression
from dask_ml.preprocessing import StandardScaler as DaskStandardScaler
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlwf.errors import UserError
from mlwf.features import INPUT_COLUMNS, FeatureEncoder
from mlwf.storm.parse import label_damage

log = logging.getLogger(__name__)

TARGET = "damaged"
CHUNK_ROWS = 500_000
SKLEARN_MAX_ITER = 2000  # the reference must converge: it is what the model is judged against


@dataclass(frozen=True)
class TrainConfig:
    """Training parameters (flow parameters, recorded in the model's metadata)."""

    split_year: int | None = None  # default: the last year in the data is the test set
    min_frequency: int = 20
    solver: str = "newton"  # dask-glm: "newton" (unpenalised, few passes), "lbfgs", "admm"
    C: float = 1.0  # inverse L2 strength, for the penalised solvers
    max_iter: int = 100


@dataclass
class TrainResult:
    model: Pipeline
    metrics: dict[str, dict[str, float]]
    train_years: list[int]
    test_years: list[int]
    rows: dict[str, float]
    seconds: dict[str, float]
    test_labels: np.ndarray = field(repr=False)
    test_scores: dict[str, np.ndarray] = field(repr=False)


def time_split(years: list[int], split_year: int | None) -> tuple[list[int], list[int]]:
    """Train on years before ``split_year``, test on the rest; both sides must be non-empty."""
    years = sorted(set(years))
    if len(years) < 2:
        raise UserError(f"a time-based split needs at least two years of data, got {years}")
    split = years[-1] if split_year is None else split_year
    train = [y for y in years if y < split]
    test = [y for y in years if y >= split]
    if not train or not test:
        raise UserError(
            f"split year {split} leaves no {'training' if not train else 'test'} years in {years[0]}-{years[-1]}"
        )
    return train, test


def evaluate(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision) and log loss of probabilities ``p``."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    if len(np.unique(y_true)) < 2:
        raise UserError("the test years have only one class of the target; choose another split year")
    return {
        "roc_auc": float(roc_auc_score(y_true, p)),
        "pr_auc": float(average_precision_score(y_true, p)),
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
    }


def _with_target(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{TARGET: label_damage(frame)})


def _encode_with_target(frame: pd.DataFrame, encoder: FeatureEncoder) -> pd.DataFrame:
    encoded = pd.DataFrame(encoder.encode(frame), columns=encoder.feature_names_, index=frame.index)
    return encoded.assign(**{TARGET: frame[TARGET].astype("float64")})


def _design(encoder: FeatureEncoder, frame: dd.DataFrame) -> tuple[Any, Any]:
    """X and y as dask arrays from one conversion of the whole frame (then sliced)."""
    meta = encoder.encoded_frame(frame)._meta.assign(**{TARGET: pd.Series(dtype="float64")})
    # Persist before converting: with partition pruning (the year filter) dask 2026.8 counts
    # lengths on the optimised graph but builds the array from the unoptimised one.
    encoded = frame.map_partitions(_encode_with_target, encoder, meta=meta).persist()
    # Few large blocks: the GLM solvers run one graph per iteration, so per-task overhead
    # dominates with one small block per yearly file.
    matrix = encoded.to_dask_array(lengths=True).rechunk({0: CHUNK_ROWS, 1: -1}).persist()
    return matrix[:, :-1], matrix[:, -1]


def train(curated: dd.DataFrame, config: TrainConfig) -> TrainResult:
    """Fit on the training years of ``curated`` and evaluate on the test years."""
    # Read once and keep in (spillable) worker memory: the encoder's statistics, the design
    # matrix and the solver all pass over it.
    frame = curated[[*INPUT_COLUMNS, "damage_property_usd", "year"]].map_partitions(_with_target).persist()
    years = [int(y) for y in frame["year"].drop_duplicates(split_out=1).compute()]
    train_years, test_years = time_split(years, config.split_year)
    train_frame = frame[frame["year"] < test_years[0]]
    test_frame = frame[frame["year"] >= test_years[0]]

    started = time.perf_counter()
    encoder = FeatureEncoder(min_frequency=config.min_frequency).fit(train_frame)
    X_train, y_train = _design(encoder, train_frame)
    scaler = DaskStandardScaler()
    classifier = DaskLogisticRegression(C=config.C, max_iter=config.max_iter, solver=config.solver)
    classifier.fit(scaler.fit_transform(X_train), y_train)
    model = Pipeline([("features", encoder), ("scale", scaler), ("classify", classifier)])
    dask_seconds = time.perf_counter() - started

    X_test, y_test = _design(encoder, test_frame)
    # dask-ml's StandardScaler.transform scales numpy input in place: always hand it a copy.
    X_train_np, y_train_np, X_test_np, y_test_np = da.compute(X_train, y_train, X_test, y_test)
    y_train_np, y_test_np = y_train_np.astype(int), y_test_np.astype(int)
    p_dask = _positive_class(classifier.predict_proba(scaler.transform(X_test_np.copy())))

    started = time.perf_counter()
    # The same objective in one process: unpenalised for newton (dask-glm's newton ignores C).
    reference_c = np.inf if config.solver == "newton" else config.C
    solver = "newton-cholesky" if config.solver == "newton" else "lbfgs"  # the same method where there is one
    reference = make_pipeline(
        StandardScaler(), LogisticRegression(C=reference_c, solver=solver, max_iter=SKLEARN_MAX_ITER)
    )
    reference.fit(X_train_np, y_train_np)
    sklearn_seconds = time.perf_counter() - started
    p_sklearn = reference.predict_proba(X_test_np)[:, 1]
    p_baseline = np.full(len(y_test_np), y_train_np.mean())

    scores = {"model": p_dask, "sklearn": p_sklearn, "baseline": p_baseline}
    metrics = {name: evaluate(y_test_np, p) for name, p in scores.items()}
    log.info("trained on %s, tested on %s: %s", train_years, test_years, metrics["model"])
    return TrainResult(
        model=model,
        metrics=metrics,
        train_years=train_years,
        test_years=test_years,
        rows={"train": len(y_train_np), "test": len(y_test_np), "positive_rate_train": float(y_train_np.mean())},
        seconds={"dask_ml_fit": dask_seconds, "sklearn_fit": sklearn_seconds},
        test_labels=y_test_np,
        test_scores=scores,
    )


def predict_proba(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """P(damage) for each event of a pandas frame (used per partition when scoring)."""
    encoder, scaler, classifier = (model.named_steps[s] for s in ("features", "scale", "classify"))
    # encode() returns a fresh array, which dask-ml's StandardScaler.transform scales in place.
    return _positive_class(classifier.predict_proba(scaler.transform(encoder.encode(frame))))


def _positive_class(p: Any) -> np.ndarray:
    p = np.asarray(p)
    return p[:, 1] if p.ndim == 2 else p
