"""Drift metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workflows.storm import drift
from workflows.storm.parse import empty_curated


def test_psi_of_two_bins_by_hand() -> None:
    # Training 50/50, evaluation 80/20: (0.8-0.5) ln(0.8/0.5) + (0.2-0.5) ln(0.2/0.5).
    expected = 0.3 * math.log(1.6) + (-0.3) * math.log(0.4)
    assert drift.psi(np.array([50, 50]), np.array([80, 20])) == pytest.approx(expected)
    assert expected == pytest.approx(0.4159, abs=1e-4)
    assert drift.psi(np.array([10, 30]), np.array([1, 3])) == pytest.approx(0.0)


def test_an_empty_bin_counts_as_the_floor() -> None:
    # Evaluation puts 10% where training had nothing: e = 1e-4 there.
    value = drift.psi(np.array([100, 0]), np.array([90, 10]))
    by_hand = (0.9 - 1.0) * math.log(0.9 / 1.0) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert value == pytest.approx(by_hand)


def _frame(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    frame = empty_curated().reindex(range(n))
    for name, values in columns.items():
        frame[name] = values
    return frame


def test_numeric_bins_are_training_quantiles_and_missing_values_are_apart() -> None:
    train = _frame(month=[float(m) for m in range(1, 11)])  # 1..10: deciles 1.9, 2.8, ..., 9.1
    edges = drift.numeric_edges({"month": train["month"].to_numpy(dtype="float64")})
    assert edges["month"] == pytest.approx([1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1])
    evaluation = _frame(month=[1.0, 1.0, 2.0, 10.0, np.nan])  # bins 0, 0, 1, 9; one missing
    p_train = drift.profile(train, edges, ())
    p_eval = drift.profile(evaluation, edges, ())
    assert p_train.bins["month"].tolist() == [1] * 10
    assert p_eval.bins["month"].tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    (result,) = drift.compare(p_train, p_eval)
    e, a = np.full(10, 0.1), np.maximum(np.array([0.5, 0.25, 0, 0, 0, 0, 0, 0, 0, 0.25]), 1e-4)
    assert result.psi == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert result.level == "flag"
    assert (result.missing_train, result.missing_eval) == (0.0, 0.2)
    assert result.missing_change == pytest.approx(0.2)


def test_unseen_categories_are_pooled_into_one_bin() -> None:
    train = _frame(event_type=["Hail"] * 6 + ["Tornado"] * 4)
    evaluation = _frame(event_type=["Hail"] * 5 + ["Tornado"] * 2 + ["Flood", "Heat"] + [""])
    p_train = drift.profile(train, {}, ("event_type",))
    p_eval = drift.profile(evaluation, {}, ("event_type",))
    (result,) = drift.compare(p_train, p_eval)
    # Bins Hail, Tornado, unseen: training 0.6, 0.4, 0 (floor); evaluation 5/9, 2/9, 2/9.
    e = np.array([0.6, 0.4, 1e-4])
    a = np.array([5 / 9, 2 / 9, 2 / 9])
    assert result.psi == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert result.unseen_share == pytest.approx(2 / 9)
    assert result.missing_eval == pytest.approx(0.1)


def test_profiles_of_partitions_add_up_to_the_whole() -> None:
    frame = _frame(month=[float(m % 12 + 1) for m in range(40)], event_type=["Hail", "Tornado"] * 20)
    edges = drift.numeric_edges({"month": frame["month"].to_numpy(dtype="float64")})
    whole = drift.profile(frame, edges, ("event_type",))
    parts = sum(
        (drift.profile(frame.iloc[i : i + 7], edges, ("event_type",)) for i in range(0, 40, 7)), drift.Profile()
    )
    assert parts.rows == whole.rows
    assert parts.bins["month"].tolist() == whole.bins["month"].tolist()
    assert parts.categories == whole.categories


def test_levels_and_the_gap_warning() -> None:
    assert [drift.level(v) for v in (0.05, 0.1, 0.2, 0.25, 3.0)] == ["stable", "warn", "warn", "flag", "flag"]
    assert drift.gap_warning([1993, 1994], [1995]) is None
    assert drift.gap_warning([1990, 1994], [1998]) is None  # 4 years
    assert "5 years after the last training year (1994 -> 1999)" in str(drift.gap_warning([1994], [1999]))


def test_the_pipeline_bins_by_dasks_deciles_of_the_training_values() -> None:
    import dask
    import dask.dataframe as dd

    from workflows.storm.model import _quantiles

    train = _frame(month=[float(m) for m in range(1, 11)], wind_speed_kt=[np.nan] * 10)
    with dask.config.set(scheduler="sync"):
        quantiles = _quantiles(dd.from_pandas(train, npartitions=1)).compute()
    edges = drift.edges_from_quantiles(quantiles)
    assert edges["month"] == pytest.approx(drift.numeric_edges({"month": train["month"].to_numpy()})["month"])
    assert edges["wind_speed_kt"].size == 0, "a column without values has no bins"
