"""The folded linear scorer gives the pipeline's own probabilities, for either engine's model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dask_ml.linear_model import LogisticRegression as DaskLogisticRegression
from dask_ml.preprocessing import StandardScaler as DaskStandardScaler
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from workflows.storm.features import FeatureEncoder
from workflows.storm.model import predict_proba
from workflows.storm.parse import empty_curated
from workflows.storm.scorer import LinearScorer

TYPES = ["Hail", "Tornado", "Flood", "Thunderstorm Wind"]
STATES = ["TEXAS", "IOWA", "KANSAS"]


def _frame(rng: np.random.Generator, n: int, types: list[str], states: list[str]) -> pd.DataFrame:
    frame = empty_curated().reindex(range(n))
    frame["event_type"] = rng.choice(types, n)
    frame["state"] = rng.choice(states, n)
    frame["cz_type"] = rng.choice(["C", "Z"], n)
    frame["magnitude_type"] = rng.choice(["EG", "MS", None], n)
    frame["era"] = rng.choice(["1993-1995", "1996+"], n)
    wind, hail = rng.gamma(2.0, 20.0, n), rng.gamma(2.0, 0.5, n)
    wind[rng.random(n) < 0.4] = np.nan
    hail[rng.random(n) < 0.5] = np.nan
    frame["wind_speed_kt"] = wind
    frame["hail_size_in"] = hail
    frame["duration_minutes"] = rng.integers(0, 600, n)
    frame["begin_hour_local"] = rng.integers(0, 24, n)
    frame["month"] = rng.integers(1, 13, n)
    frame["tor_f_scale"] = rng.choice(["EF0", "EF2", "F1", None], n)
    frame["begin_lat"] = rng.uniform(25, 49, n)
    frame["begin_lon"] = rng.uniform(-125, -67, n)
    return frame


def _fit(engine: str) -> Pipeline:
    rng = np.random.default_rng(7)
    train = _frame(rng, 600, TYPES, STATES)
    encoder = FeatureEncoder(min_frequency=5).fit(train)
    X = encoder.encode(train)
    signal = StandardScaler().fit_transform(X) @ rng.normal(0, 0.5, X.shape[1])
    y = (signal + rng.normal(0, 1, len(X)) > 0).astype(int)
    if engine == "sklearn":
        scaler, classifier = StandardScaler(), LogisticRegression(C=np.inf, solver="newton-cholesky")
    else:
        scaler, classifier = DaskStandardScaler(), DaskLogisticRegression(solver="newton")
    classifier.fit(scaler.fit_transform(X.copy()), y)
    return Pipeline([("features", encoder), ("scale", scaler), ("classify", classifier)])


MODELS = {engine: _fit(engine) for engine in ("sklearn", "dask-ml")}


@pytest.mark.parametrize("engine", sorted(MODELS))
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300))
def test_folded_scores_equal_the_pipeline_on_any_events(engine: str, seed: int, n: int) -> None:
    # Unseen event types and states, and missing numerics, included.
    frame = _frame(np.random.default_rng(seed), n, [*TYPES, "Volcanic Ash"], [*STATES, "GUAM"])
    model = MODELS[engine]
    np.testing.assert_allclose(
        LinearScorer.from_pipeline(model).predict_proba(frame), predict_proba(model, frame), rtol=1e-9, atol=1e-12
    )


def test_a_model_that_is_not_linear_in_the_features_is_refused() -> None:
    model = MODELS["sklearn"]
    bad = Pipeline([("features", model[0]), ("scale", model[1]), ("classify", LogisticRegression())])
    bad[-1].coef_ = np.zeros((2, 3))
    bad[-1].intercept_ = np.zeros(2)
    with pytest.raises(ValueError, match="coefficients"):
        LinearScorer.from_pipeline(bad)
