"""Turn curated events into a numeric design matrix, identically for training and scoring.

`FeatureEncoder` follows the scikit-learn contract. Its vocabulary is fixed at fit time, so a
category never seen in training (a new event type or state in a later year) maps to the
all-zeros "other" encoding instead of failing or shifting columns. It works on pandas frames
and, partition by partition, on dask frames, which sidesteps dask-ml's DataFrame transformers
(selecting columns after them trips dask's query optimizer on dask 2026.8).
"""

from __future__ import annotations

import copy
from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from workflows.storm import encoding
from workflows.storm.encoding import CATEGORICAL, INPUT_COLUMNS, NUMERIC, numeric_view

__all__ = ["CATEGORICAL", "INPUT_COLUMNS", "NUMERIC", "FeatureEncoder", "aliased_features"]


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
        self.categories_ = {c: self._vocabulary(counts[c], rows) for c in CATEGORICAL}
        self.medians_ = {c: float(0.0 if pd.isna(medians[c]) else medians[c]) for c in NUMERIC}
        self.numeric_ = [c for c in NUMERIC if present[c] > 0 and low[c] < high[c]]
        self.indicators_ = [c for c in NUMERIC if 0 < present[c] < rows]
        self.feature_names_ = (
            [f"{c}={v}" for c in CATEGORICAL for v in self.categories_[c]]
            + list(self.numeric_)
            + [f"{c}_missing" for c in self.indicators_]
        )
        return self

    def without(self, features: list[str]) -> FeatureEncoder:
        """A copy that leaves out ``features``: a dropped category encodes as all zeros (like an
        unseen one), a dropped numeric or indicator is not used."""
        out = copy.deepcopy(self)
        gone = set(features)
        out.categories_ = {c: [v for v in vs if f"{c}={v}" not in gone] for c, vs in self.categories_.items()}
        out.numeric_ = [c for c in self.numeric_ if c not in gone]
        out.indicators_ = [c for c in self.indicators_ if f"{c}_missing" not in gone]
        out.feature_names_ = [name for name in self.feature_names_ if name not in gone]
        return out

    def _vocabulary(self, counts: pd.Series, rows: int) -> list[str]:
        kept = {str(v): int(n) for v, n in counts.items() if self.min_frequency <= n < rows}
        if kept and sum(kept.values()) == rows:
            # The levels cover every row, so their one-hot block sums to the intercept's column
            # and an unpenalised fit is singular: the most frequent level becomes the reference,
            # encoded as all zeros like a category never seen.
            del kept[max(kept, key=lambda v: (kept[v], v))]
        return sorted(kept)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The design matrix of a pandas frame (float64, one row per event)."""
        blocks = []
        rows = np.arange(len(frame))
        for column in self.categories_:  # a model stored by older code has its own columns
            codes = self.codes(frame, column)
            block = np.zeros((len(frame), len(self.categories_[column])))
            seen = codes >= 0
            block[rows[seen], codes[seen]] = 1.0
            blocks.append(block)
        imputed, missing = self.numeric_values(frame)
        blocks.extend(values[:, None] for values in imputed.values())
        blocks.extend(values[:, None].astype("float64") for values in missing.values())
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def codes(self, frame: pd.DataFrame, column: str) -> np.ndarray:
        """Codes of ``column`` against the fixed training vocabulary: -1 for anything unseen."""
        return encoding.codes(frame, column, self.categories_[column])

    def numeric_values(self, frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The used numeric inputs with missing values imputed, and the missing-value masks."""
        return encoding.numeric_values(frame, self.numeric_, self.medians_, self.indicators_)

    def encoded_frame(self, X: dd.DataFrame) -> dd.DataFrame:
        """The design matrix of a dask frame as a dask frame of floats, partition by partition."""
        meta = pd.DataFrame({name: pd.Series(dtype="float64") for name in self.feature_names_})
        return X[self.input_columns()].map_partitions(self._encode_frame, meta=meta)

    def input_columns(self) -> list[str]:
        """The curated columns this fitted encoder reads."""
        return [*self.categories_, *dict.fromkeys([*self.numeric_, *self.indicators_])]

    def _encode_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.encode(frame), columns=self.feature_names_, index=frame.index)

    def transform(self, X: pd.DataFrame | dd.DataFrame) -> np.ndarray | da.Array:
        if isinstance(X, dd.DataFrame):
            return self.encoded_frame(X).to_dask_array(lengths=True)
        return self.encode(X)


def aliased_features(rows: int, sums: np.ndarray, gram: np.ndarray, names: list[str]) -> list[str]:
    """The features that are linear combinations of the intercept and the features kept before
    them, from the design matrix's column sums and Gram matrix (X.T @ X). An unpenalised fit on
    such a design is singular: missing-value indicators that repeat each other (latitude and
    longitude are missing together) or a category (tor_f_scale is missing exactly when the
    event is not a tornado). Numerics are kept first, then categories, then indicators."""
    full = np.block([[np.array([[float(rows)]]), sums[None, :]], [sums[:, None], gram]])
    norm = np.sqrt(np.clip(np.diagonal(full), 1e-300, None))
    cosine = full / np.outer(norm, norm)
    kinds = [2 if n.endswith("_missing") else 1 if "=" in n else 0 for n in names]
    kept, dropped = [0], []
    for j in sorted(range(len(names)), key=lambda i: (kinds[i], i)):
        column = j + 1
        block = cosine[np.ix_(kept, kept)]
        cross = cosine[kept, column]
        residual = cosine[column, column] - cross @ np.linalg.lstsq(block, cross, rcond=None)[0]
        if residual > 1e-9:
            kept.append(column)
        else:
            dropped.append(names[j])
    return dropped
