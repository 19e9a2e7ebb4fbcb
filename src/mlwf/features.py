"""Turn curated events into a numeric design matrix, identically for training and scoring.

`FeatureEncoder` follows the scikit-learn contract. Its vocabulary is fixed at fit time, so a
category never seen in training (a new event type or state in a later year) maps to the
all-zeros "other" encoding instead of failing or shifting columns. It works on pandas frames
and, partition by partition, on dask frames, which sidesteps dask-ml's DataFrame transformers
(selecting columns after them trips dask's query optimizer on dask 2026.8).
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

CATEGORICAL = ("event_type", "state", "cz_type")
NUMERIC = ("magnitude", "duration_minutes", "begin_hour_local", "month", "tor_f_scale", "begin_lat", "begin_lon")
INPUT_COLUMNS = CATEGORICAL + NUMERIC
_F_SCALE = {f"F{i}": float(i) for i in range(6)} | {f"EF{i}": float(i) for i in range(6)}


def numeric_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The numeric inputs as floats, with skewed and coded ones made model-friendly."""
    out = pd.DataFrame(index=frame.index)
    for column in NUMERIC:
        if column == "tor_f_scale":
            out[column] = frame[column].astype("string").str.upper().map(_F_SCALE).astype("float64")
        elif column == "duration_minutes":
            out[column] = np.log1p(frame[column].astype("float64").clip(lower=0))
        else:
            out[column] = frame[column].astype("float64")
    return out


class FeatureEncoder(TransformerMixin, BaseEstimator):
    """One-hot encode categories seen at least ``min_frequency`` times; impute numerics with
    their training median and add a missing-value indicator for each."""

    def __init__(self, min_frequency: int = 20) -> None:
        self.min_frequency = min_frequency

    def fit(self, X: pd.DataFrame | dd.DataFrame, y: Any = None) -> FeatureEncoder:
        numeric = X[list(NUMERIC)]
        if isinstance(X, dd.DataFrame):
            numeric = numeric.map_partitions(numeric_view, meta=dict.fromkeys(NUMERIC, "float64"))
            stats = da.compute(
                len(X),
                {c: X[c].astype("string").value_counts(split_out=1) for c in CATEGORICAL},
                numeric.count(),
                numeric.min(),
                numeric.max(),
                numeric.quantile(0.5),
            )
        else:
            numeric = numeric_view(numeric)
            stats = (
                len(X),
                {c: X[c].astype("string").value_counts() for c in CATEGORICAL},
                numeric.count(),
                numeric.min(),
                numeric.max(),
                numeric.median(),
            )
        rows, counts, present, low, high, medians = stats
        # Only columns that vary in training: a constant column carries no signal and makes the
        # GLM solvers' own normalisation fail ("Multiple constant columns detected").
        self.categories_ = {
            c: sorted(str(v) for v, n in counts[c].items() if self.min_frequency <= n < rows) for c in CATEGORICAL
        }
        self.medians_ = {c: float(0.0 if pd.isna(medians[c]) else medians[c]) for c in NUMERIC}
        self.numeric_ = [c for c in NUMERIC if present[c] > 0 and low[c] < high[c]]
        self.indicators_ = [c for c in NUMERIC if 0 < present[c] < rows]
        self.feature_names_ = (
            [f"{c}={v}" for c in CATEGORICAL for v in self.categories_[c]]
            + list(self.numeric_)
            + [f"{c}_missing" for c in self.indicators_]
        )
        return self

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The design matrix of a pandas frame (float64, one row per event)."""
        blocks = []
        rows = np.arange(len(frame))
        for column in CATEGORICAL:
            vocabulary = self.categories_[column]
            # Codes against the fixed training vocabulary: -1 (all zeros) for anything unseen.
            codes = pd.Categorical(frame[column].astype("string").fillna(""), categories=vocabulary).codes
            block = np.zeros((len(frame), len(vocabulary)))
            seen = codes >= 0
            block[rows[seen], codes[seen]] = 1.0
            blocks.append(block)
        numeric = numeric_view(frame)
        for column in self.numeric_:
            values = numeric[column].to_numpy(dtype="float64")
            blocks.append(np.where(np.isnan(values), self.medians_[column], values)[:, None])
        for column in self.indicators_:
            blocks.append(numeric[column].isna().to_numpy(dtype="float64")[:, None])
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def encoded_frame(self, X: dd.DataFrame) -> dd.DataFrame:
        """The design matrix of a dask frame as a dask frame of floats, partition by partition."""
        meta = pd.DataFrame({name: pd.Series(dtype="float64") for name in self.feature_names_})
        return X[list(INPUT_COLUMNS)].map_partitions(self._encode_frame, meta=meta)

    def _encode_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.encode(frame), columns=self.feature_names_, index=frame.index)

    def transform(self, X: pd.DataFrame | dd.DataFrame) -> np.ndarray | da.Array:
        if isinstance(X, dd.DataFrame):
            return self.encoded_frame(X).to_dask_array(lengths=True)
        return self.encode(X)
