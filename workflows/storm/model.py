"""Train: the storm-damage classifier, on the engine its data size calls for, checked against a
baseline (and against scikit-learn when the distributed engine ran on data that fits).

Target: did the event cause reported property damage. Split by time: train on the years before
``split_year``, evaluate on it and after, as the model will be used (on years it has not seen).
The model is FeatureEncoder -> StandardScaler -> LogisticRegression (unpenalised Newton). Where
the training design matrix fits comfortably in one worker's memory, scikit-learn fits it on one
worker (newton-cholesky): dask-ml's Newton solver schedules one graph per iteration and took 6x
as long at 500K rows. Larger data trains on dask-ml over the cluster.
Evaluation scores the test years where they are, with the scoring path production uses.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import psutil
from dask.base import compute
from dask.delayed import delayed
from dask_ml.linear_model import LogisticRegression as DaskLogisticRegression
from dask_ml.preprocessing import StandardScaler as DaskStandardScaler
from distributed import default_client
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mlwf.errors import UserError
from workflows.storm import drift
from workflows.storm.encoding import numeric_view
from workflows.storm.features import CATEGORICAL, INPUT_COLUMNS, NUMERIC, FeatureEncoder, aliased_features
from workflows.storm.options import ENGINES, FIRST_YEAR, LAST_YEAR
from workflows.storm.parse import label_damage
from workflows.storm.schema import coverage_era, era_start
from workflows.storm.scorer import LinearScorer

log = logging.getLogger(__name__)

TARGET = "damaged"
ALL_YEARS = "all_years"  # metrics key of the comparison model trained on every year before the test years
CHUNK_ROWS = 500_000
SKLEARN_MAX_ITER = 2000  # the reference must converge: it is what the model is judged against
# scikit-learn's fit holds the design matrix ~4 times (encoded, scaled, the solver's weighted
# copy and temporaries): it runs on one worker when that fits in the worker's memory limit.
IN_MEMORY_COPIES = 4


@dataclass(frozen=True)
class TrainConfig:
    """Training parameters (flow parameters, recorded in the model's metadata)."""

    split_year: int | None = None  # default: the last year in the data is the test set
    min_frequency: int = 20
    solver: str = "newton"  # dask-glm: "newton" (unpenalised, few passes), "lbfgs", "admm"
    C: float = 1.0  # inverse L2 strength, for the penalised solvers
    max_iter: int = 100
    engine: str = "auto"  # "auto" (by data size), "sklearn" (one worker) or "dask-ml" (the cluster)
    # First and last training year; default: the evaluation years' coverage era, before them.
    train_years: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UserError(f"unknown training engine {self.engine!r}: expected one of {', '.join(ENGINES)}")
        if self.train_years is not None:
            first, last = self.train_years
            if first > last:
                raise UserError(f"training years {first}-{last}: the first year is after the last")
            object.__setattr__(self, "train_years", (int(first), int(last)))


def year_range(text: str | None) -> tuple[int, int] | None:
    """ "1996-2018" (or one year, "2010") as (first, last); None stays None."""
    if text is None:
        return None
    first, _, last = str(text).strip().partition("-")
    try:
        years = (int(first), int(last or first))
    except ValueError:
        raise UserError(f"training years {text!r}: expected FIRST-LAST, e.g. 1996-2018") from None
    if not all(FIRST_YEAR <= y <= LAST_YEAR for y in years):
        raise UserError(f"training years {text!r} are outside {FIRST_YEAR}-{LAST_YEAR}")
    return years


@dataclass
class TrainResult:
    model: Pipeline
    metrics: dict[str, dict[str, float]]
    train_years: list[int]
    test_years: list[int]
    rows: dict[str, float]
    seconds: dict[str, float]
    engine: str
    train_window: str  # which years trained, and why
    drift: dict[str, Any]
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


def training_years(earlier: list[int], first_test: int, window: tuple[int, int] | None) -> tuple[list[int], str]:
    """The training years among ``earlier`` (the data's years before ``first_test``) and why.

    A ``window`` is taken as given (it must end before the evaluation years). By default the
    model trains on the evaluation years' coverage era: what the database recorded, and how it
    wrote missing damage, changed by era (see `workflows.storm.schema.ERAS`). When that era has
    no earlier years in the data, every earlier year is the fallback; `month_split` splits the
    evaluation years by month instead where it can, and the report says which was used."""
    if window is not None:
        first, last = window
        if last >= first_test:
            raise UserError(f"training years {first}-{last} overlap the evaluation years (from {first_test})")
        chosen = [y for y in earlier if first <= y <= last]
        if not chosen:
            raise UserError(
                f"no data in training years {first}-{last} (the data before {first_test}: {earlier[0]}-{earlier[-1]})"
            )
        return chosen, f"{_span(chosen)}, as requested"
    start = era_start(first_test)
    chosen = [y for y in earlier if y >= start]
    if chosen:
        return chosen, f"{_span(chosen)}: the evaluation years' coverage era ({coverage_era(first_test)})"
    return earlier, (
        f"{_span(earlier)}: the evaluation years' era ({coverage_era(first_test)}) has no earlier data, "
        "so every earlier year"
    )


SPLIT_SHARE = 0.7  # of the evaluation years' events, the earliest that train in a month split
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_split(events: dict[int, int], era: str, share: float = SPLIT_SHARE) -> tuple[int, str] | None:
    """Where to split the evaluation years by time when their era has no earlier years:
    ``events`` counts events per month (``year * 12 + month - 1``). Returns the first evaluation
    month and the window's line: the earlier months (about ``share`` of the events) train, the
    later ones evaluate. None when the events span fewer than two months."""
    periods = sorted(p for p, n in events.items() if n > 0)
    if len(periods) < 2:
        return None
    total, running, cutoff = sum(events[p] for p in periods), 0, periods[-1]
    for period in periods[:-1]:
        running += events[period]
        if running >= share * total:
            cutoff = periods[periods.index(period) + 1]
            break
    before = [p for p in periods if p < cutoff]
    return cutoff, (
        f"{_month(before[0])}-{_month(before[-1])}: the evaluation years' earlier months (their era, {era}, has "
        f"no earlier years), evaluated on {_month(cutoff)}-{_month(periods[-1])}: a split within the year mixes "
        "seasons"
    )


def _month(period: int) -> str:
    return f"{MONTHS[period % 12]} {period // 12}"


def _span(years: list[int]) -> str:
    return f"{years[0]}" if years[0] == years[-1] else f"{years[0]}-{years[-1]}"


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


def with_target(frame: pd.DataFrame) -> pd.DataFrame:
    """The events whose label is known, with it (see `workflows.storm.parse.label_damage`)."""
    labelled = frame.assign(**{TARGET: label_damage(frame)})
    return labelled[labelled[TARGET].notna()]


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


def worker_memory_limit() -> int:
    """The smallest memory limit of the current cluster's workers (this machine's if none)."""
    try:
        workers = default_client().scheduler_info(n_workers=-1)["workers"].values()
    except ValueError:  # no distributed client: the local scheduler runs in this process
        workers = []
    limits = [w["memory_limit"] for w in workers if w.get("memory_limit")]
    return min(limits) if limits else psutil.virtual_memory().total


def choose_engine(requested: str, rows: int, features: int, worker_memory: int) -> str:
    """scikit-learn on one worker when the design matrix fits it ``IN_MEMORY_COPIES`` times over."""
    if requested != "auto":
        return requested
    return "sklearn" if rows * features * 8 * IN_MEMORY_COPIES <= worker_memory else "dask-ml"


def _reference_model(config: TrainConfig, max_iter: int) -> Pipeline:
    """The model in scikit-learn: unpenalised Newton (newton-cholesky) for dask-glm's newton,
    which ignores C; otherwise the same penalty with lbfgs."""
    if config.solver == "newton":
        classifier = LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=max_iter)
    else:
        classifier = LogisticRegression(C=config.C, solver="lbfgs", max_iter=max_iter)
    return make_pipeline(StandardScaler(), classifier)


def fit_in_memory(
    parts: list[pd.DataFrame], encoder: FeatureEncoder, config: TrainConfig
) -> tuple[FeatureEncoder, Pipeline]:
    """Runs on one worker: the training partitions in one frame, encoded and fitted there.

    Dask starts workers with BLAS limited to one thread (OMP/OPENBLAS_NUM_THREADS=1) so tasks
    do not oversubscribe; this one task is the whole job while it runs, so its linear algebra
    gets every core the worker's machine gives it."""
    frame = pd.concat(parts, ignore_index=True)
    with threadpool_limits(limits=_usable_cores(), user_api="blas"):
        X = encoder.encode(frame)
        dropped = aliased_features(len(X), X.sum(axis=0), X.T @ X, encoder.feature_names_)
        if dropped:
            X = np.delete(X, [encoder.feature_names_.index(name) for name in dropped], axis=1)
            encoder = encoder.without(dropped)
        return encoder, _reference_model(config, SKLEARN_MAX_ITER).fit(X, frame[TARGET].to_numpy(dtype=int))


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may run on
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def fit_classifier(
    train_frame: dd.DataFrame, encoder: FeatureEncoder, config: TrainConfig, rows: int
) -> tuple[Pipeline, str]:
    """The fitted model for ``train_frame`` and the engine that fitted it. Features that are
    linear combinations of others are left out (see `aliased_features`)."""
    engine = choose_engine(config.engine, rows, len(encoder.feature_names_), worker_memory_limit())
    log.info("training on %s: %d rows x %d features", engine, rows, len(encoder.feature_names_))
    if engine == "sklearn":
        encoder, fitted = delayed(fit_in_memory)(train_frame.to_delayed(), encoder, config).compute()
        scaler, classifier = fitted[0], fitted[-1]
    else:
        X_train, y_train = _design(encoder, train_frame)
        sums, gram = da.compute(X_train.sum(axis=0), X_train.T @ X_train)
        dropped = aliased_features(rows, sums, gram, encoder.feature_names_)
        if dropped:
            keep = [i for i, name in enumerate(encoder.feature_names_) if name not in dropped]
            X_train, encoder = X_train[:, keep].persist(), encoder.without(dropped)
        scaler = DaskStandardScaler()
        classifier = DaskLogisticRegression(C=config.C, max_iter=config.max_iter, solver=config.solver)
        classifier.fit(scaler.fit_transform(X_train), y_train)
    model = Pipeline([("features", encoder), ("scale", scaler), ("classify", classifier)])
    return model, engine


def train(curated: dd.DataFrame, config: TrainConfig, champion: Pipeline | None = None) -> TrainResult:
    """Fit on the training years of ``curated`` and evaluate on the test years: the model, the
    constant baseline and (if given) the ``champion`` on the same rows, and the drift of every
    input between the training and the test rows. Events whose label is unknown take no part."""
    columns = [*INPUT_COLUMNS, "damage_property_usd", "year"]
    if champion is not None:
        columns += [c for c in champion.named_steps["features"].input_columns() if c not in columns]
    # Read once and keep in (spillable) worker memory: the encoder's statistics, the fit and the
    # evaluation all pass over it.
    frame = curated[columns].map_partitions(with_target).persist()
    years = [int(y) for y in frame["year"].drop_duplicates(split_out=1).compute()]
    earlier, test_years = time_split(years, config.split_year)
    train_years, window = training_years(earlier, test_years[0], config.train_years)
    in_window = (frame["year"] >= train_years[0]) & (frame["year"] <= train_years[-1])
    in_test = frame["year"] >= test_years[0]
    used = curated[["damage_property_usd", "year", "event_type"]]
    used_test = used["year"] >= test_years[0]
    used_window = (used["year"] >= train_years[0]) & (used["year"] <= train_years[-1])
    split = None
    if config.train_years is None and train_years[-1] < era_start(test_years[0]):  # the era has no earlier years
        period = frame["year"].astype("int64") * 12 + frame["month"].astype("int64").clip(lower=1) - 1
        counts = period[in_test].value_counts().compute()
        split = month_split({int(p): int(n) for p, n in counts.items()}, coverage_era(test_years[0]))
    if split is not None:
        cutoff, window = split
        in_window, in_test = in_test & (period < cutoff), in_test & (period >= cutoff)
        train_years, used_window = list(range(test_years[0], (cutoff - 1) // 12 + 1)), used_test
    train_frame = frame[in_window]
    test_frame = frame[in_test]
    used = used[used_window | used_test]

    started = time.perf_counter()
    encoder = FeatureEncoder(min_frequency=config.min_frequency).fit(train_frame)
    rows, positive_rate, quantiles, unknown = compute(
        train_frame.shape[0],
        train_frame[TARGET].mean(),
        _quantiles(train_frame),
        used.map_partitions(_unknown_labels, meta=("unknown", "i8")).sum(),  # left out of both sides
    )
    model, engine = fit_classifier(train_frame, encoder, config, int(rows))
    encoder = model.named_steps["features"]
    seconds = {"fit": time.perf_counter() - started}

    scorers = {"model": LinearScorer.from_pipeline(model)}
    if champion is not None:
        scorers["champion"] = LinearScorer.from_pipeline(champion)
    if train_years != earlier and earlier:
        # The window's effect, shown in the report: the same model on every earlier year, when
        # that fits one worker too (a comparison must not cost a distributed fit).
        everything = frame[frame["year"] < test_years[0]]
        all_rows = int(everything.shape[0].compute())
        if choose_engine("auto", all_rows, len(encoder.feature_names_), worker_memory_limit()) == "sklearn":
            scorers[ALL_YEARS] = _fit_all_years(everything, config, all_rows)
    p_test, y_test = compute(
        test_frame.map_partitions(_score_all, scorers, meta=dict.fromkeys(scorers, "f8")), test_frame[TARGET]
    )
    edges = drift.edges_from_quantiles(quantiles)
    train_profile, test_profile = compute(*(_profile(part, edges) for part in (train_frame, test_frame)))
    y_test_np = y_test.to_numpy(dtype=int)
    scores = {name: p_test[name].to_numpy() for name in scorers}
    scores["baseline"] = np.full(len(y_test_np), float(positive_rate))
    features = len(encoder.feature_names_)
    if engine == "dask-ml" and choose_engine("auto", int(rows), features, psutil.virtual_memory().total) == "sklearn":
        # The distributed fit on data that fits here: judge it against scikit-learn on the same matrix.
        X_train, y_train, X_test = da.compute(*_design(encoder, train_frame), _design(encoder, test_frame)[0])
        started = time.perf_counter()
        reference = _reference_model(config, SKLEARN_MAX_ITER).fit(X_train, y_train.astype(int))
        seconds["sklearn_fit"] = time.perf_counter() - started
        scores["sklearn"] = reference.predict_proba(X_test)[:, 1]
    metrics = {name: evaluate(y_test_np, p) for name, p in scores.items()}
    log.info("trained on %s with %s, tested on %s: %s", train_years, engine, test_years, metrics["model"])
    drifts = drift.compare(train_profile, test_profile)
    return TrainResult(
        model=model,
        metrics=metrics,
        train_years=train_years,
        test_years=test_years,
        rows={
            "train": int(rows),
            "test": len(y_test_np),
            "positive_rate_train": float(positive_rate),
            "unknown_label": int(unknown),
        },
        seconds=seconds,
        engine=engine,
        train_window=window,
        drift=drift.as_json(drifts, drift.gap_warning(train_years, test_years)),
        test_labels=y_test_np,
        test_scores=scores,
    )


def _fit_all_years(frame: dd.DataFrame, config: TrainConfig, rows: int) -> LinearScorer:
    encoder = FeatureEncoder(min_frequency=config.min_frequency).fit(frame)
    model, _ = fit_classifier(frame, encoder, replace(config, engine="sklearn"), rows)
    return LinearScorer.from_pipeline(model)


def _unknown_labels(frame: pd.DataFrame) -> pd.Series:
    return label_damage(frame).isna().astype("int64")


def _score_all(frame: pd.DataFrame, scorers: dict[str, LinearScorer]) -> pd.DataFrame:
    return pd.DataFrame({name: s.predict_proba(frame) for name, s in scorers.items()}, index=frame.index)


def _quantiles(train_frame: dd.DataFrame) -> dd.DataFrame:
    """The training numerics' decile values (dask's approximate quantiles), the drift bins' edges."""
    numeric = train_frame[list(NUMERIC)].map_partitions(numeric_view, meta=dict.fromkeys(NUMERIC, "float64"))
    return numeric.quantile(list(np.arange(1, drift.BINS) / drift.BINS))


def _profile(frame: dd.DataFrame, edges: dict[str, np.ndarray]) -> Any:
    parts = [delayed(drift.profile)(part, edges, CATEGORICAL) for part in frame.to_delayed()]
    return delayed(sum)(parts, drift.Profile())


def predict_proba(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """P(damage) for each event of a pandas frame through the pipeline's own steps (the
    single-process way; the platform scores with the equivalent `LinearScorer`)."""
    encoder, scaler, classifier = (model.named_steps[s] for s in ("features", "scale", "classify"))
    # encode() returns a fresh array, which dask-ml's StandardScaler.transform scales in place.
    return _positive_class(classifier.predict_proba(scaler.transform(encoder.encode(frame))))


def _positive_class(p: Any) -> np.ndarray:
    p = np.asarray(p)
    return p[:, 1] if p.ndim == 2 else p
