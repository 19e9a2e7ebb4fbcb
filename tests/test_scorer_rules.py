"""The scorer's rules on a scorer with known weights: an unseen or missing category weighs 0, a
missing numeric weighs as its training median plus its indicator, a column with only an
indicator still counts; P(damage) is the logistic of the decision function without overflow
warnings; a partition's scores have fixed columns and types, and "damage" from P = 0.5 up; a
scorer whose weights do not match its inputs fails; one folded from a fitted pipeline matches it."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from workflows.storm.features import FeatureEncoder
from workflows.storm.parse import empty_curated
from workflows.storm.scorer import SCORE_META, LinearScorer, score_partition

NAN = np.nan
Event = tuple[str, str | None, float, float, float, str | None, float]
COLUMNS = ["event_type", "state", "wind_speed_kt", "month", "hail_size_in", "tor_f_scale"]


def _scorer(intercept: float = -3.0) -> LinearScorer:
    """Hail +0.5, Tornado +1.0, TEXAS -0.25; wind 0.02 per knot (median 50, +0.3 when missing);
    month unused (weight 0, no indicator); hail size only through its indicator (+1 when
    missing), as for a column constant in training; 1 per tornado rating step (median 1, no
    indicator)."""
    return LinearScorer(
        intercept=intercept,
        vocabularies={"event_type": ["Hail", "Tornado"], "state": ["TEXAS"]},
        category_weights={"event_type": np.array([0.5, 1.0, 0.0]), "state": np.array([-0.25, 0.0])},
        numeric=["wind_speed_kt", "month", "tor_f_scale"],
        medians={"wind_speed_kt": 50.0, "month": 6.0, "hail_size_in": 1.0, "tor_f_scale": 1.0},
        numeric_weights=np.array([0.02, 0.0, 1.0]),
        indicators=["wind_speed_kt", "hail_size_in"],
        indicator_weights=np.array([0.3, 1.0]),
    )


# event_type, state, wind_speed_kt, month, hail_size_in, tor_f_scale -> decision function
EVENTS: list[Event] = [
    ("Hail", "TEXAS", 60.0, 5.0, 1.5, None, -3 + 0.5 - 0.25 + 0.02 * 60 + 1),
    ("Tornado", "KANSAS", NAN, NAN, NAN, "EF2", -3 + 1.0 + (0.02 * 50 + 0.3) + 1 + 2),
    ("Volcanic Ash", None, 0.0, 7.0, NAN, None, -3 + 1 + 1),
    ("Tornado", "GUAM", 0.0, 1.0, 2.0, "F2", -3 + 1.0 + 2),
    ("Hail", "TEXAS", NAN, 3.0, NAN, None, -3 + 0.5 - 0.25 + (0.02 * 50 + 0.3) + 1 + 1),
]


def _frame(rows: list[Event], index: list[int] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame([r[:-1] for r in rows], columns=COLUMNS, index=index)
    frame["event_id"] = np.arange(len(rows), dtype="int64") + 100
    frame["year"] = 1995
    return frame


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: "-".join(map(str, e[:-1])))
def test_each_event_scores_its_weights(event: Event) -> None:
    np.testing.assert_allclose(_scorer().decision_function(_frame([event])), [event[-1]], rtol=0, atol=1e-12)


def test_a_frame_scores_row_by_row() -> None:
    z = _scorer().decision_function(_frame(EVENTS))
    np.testing.assert_allclose(z, [e[-1] for e in EVENTS], rtol=0, atol=1e-12)
    np.testing.assert_allclose(_scorer().predict_proba(_frame(EVENTS)), expit(z), rtol=1e-12)


@pytest.mark.parametrize(("intercept", "p"), [(-800.0, 0.0), (-1.0, 0.5), (800.0, 1.0)])
def test_extreme_scores_are_0_and_1_without_warnings(intercept: float, p: float) -> None:
    frame = _frame([("Flood", "OHIO", 0.0, 1.0, 1.0, None, 0.0)])  # z = intercept + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _scorer(intercept).predict_proba(frame).tolist() == [p]


def test_a_partition_gets_its_keys_p_and_the_decision_from_one_half_up() -> None:
    frame = _frame(EVENTS, index=[10, 20, 30, 40, 50])
    scores = score_partition(frame, _scorer())
    assert list(scores.columns) == list(SCORE_META.columns)
    assert scores.dtypes.to_dict() == SCORE_META.dtypes.to_dict()
    assert scores.index.tolist() == [0, 1, 2, 3, 4]
    assert scores["event_id"].tolist() == [100, 101, 102, 103, 104]
    assert scores["year"].tolist() == [1995] * 5
    assert scores["event_type"].tolist() == [e[0] for e in EVENTS]
    assert scores["state"].tolist() == ["TEXAS", "KANSAS", pd.NA, "GUAM", "TEXAS"]
    np.testing.assert_allclose(scores["p_damage"], expit([e[-1] for e in EVENTS]), rtol=1e-12)
    # P exactly 0.5 (the GUAM tornado) counts as damage.
    assert scores["predicted_damage"].tolist() == [False, True, False, True, True]


def test_an_empty_partition_has_the_score_columns_and_types() -> None:
    scores = score_partition(_frame([]), _scorer())
    assert scores.empty
    assert scores.dtypes.to_dict() == SCORE_META.dtypes.to_dict()
    scores.loc[0] = [1, 1995, "Hail", "TEXAS", 0.9, True]  # a copy: the shared meta stays empty
    assert SCORE_META.empty


@pytest.mark.parametrize(
    "change",
    [{"numeric_weights": np.array([0.02, 0.0])}, {"indicator_weights": np.array([0.3, 1.0, 0.5])}],
    ids=["a numeric input without its weight", "an extra indicator weight"],
)
def test_a_scorer_whose_weights_do_not_match_its_inputs_fails_instead_of_dropping_one(
    change: dict[str, np.ndarray],
) -> None:
    with pytest.raises(ValueError, match="zip"):
        dataclasses.replace(_scorer(), **change).decision_function(_frame(EVENTS))


def _pipeline(train: pd.DataFrame, classifier: LogisticRegression) -> Pipeline:
    encoder = FeatureEncoder(min_frequency=2).fit(train)
    X = encoder.encode(train)
    scaler = StandardScaler().fit(X)
    y = np.arange(len(train)) % 2
    classifier.fit(scaler.transform(X), y)
    return Pipeline([("features", encoder), ("scale", scaler), ("classify", classifier)])


def _train(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = empty_curated().reindex(range(n))
    frame["event_type"] = rng.choice(["Hail", "Tornado", "Flood"], n)
    frame["state"] = rng.choice(["TEXAS", "IOWA"], n)
    frame["wind_speed_kt"] = np.where(rng.random(n) < 0.3, np.nan, rng.gamma(2.0, 20.0, n))
    # Constant where present: no numeric weight, only its missing-value indicator.
    frame["hail_size_in"] = np.where(rng.random(n) < 0.5, np.nan, 1.0)
    frame["month"] = rng.integers(1, 13, n)
    return frame


def test_a_fitted_pipeline_folds_into_one_weight_per_category_and_input() -> None:
    model = _pipeline(_train(), LogisticRegression(C=1.0))
    encoder = model.named_steps["features"]
    scorer = LinearScorer.from_pipeline(model)
    assert scorer.vocabularies == encoder.categories_
    assert scorer.numeric == encoder.numeric_
    assert scorer.indicators == encoder.indicators_
    assert scorer.medians == encoder.medians_
    assert "hail_size_in" in scorer.indicators
    assert "hail_size_in" not in scorer.numeric
    for column, vocabulary in scorer.vocabularies.items():
        assert len(scorer.category_weights[column]) == len(vocabulary) + 1
        assert scorer.category_weights[column][-1] == 0.0
    assert len(scorer.numeric_weights) == len(scorer.numeric)
    assert len(scorer.indicator_weights) == len(scorer.indicators)
    test = _train(40)
    test.loc[:5, "event_type"] = "Volcanic Ash"
    expected = model.predict_proba(test)[:, 1]
    np.testing.assert_allclose(scorer.predict_proba(test), expected, rtol=1e-9, atol=1e-12)


def test_a_classifier_with_the_wrong_number_of_coefficients_is_refused_with_the_counts() -> None:
    model = _pipeline(_train(), LogisticRegression())
    n = len(model.named_steps["features"].feature_names_)
    model.named_steps["classify"].coef_ = np.zeros((2, 3))
    with pytest.raises(ValueError, match="coefficients") as caught:
        LinearScorer.from_pipeline(model)
    assert str(caught.value) == f"expected {n} coefficients for {n} features, got shape (6,)"
