"""Drift between the training rows and the evaluation rows, feature by feature.

For each input: the population stability index (PSI) of the evaluation rows against the
training rows, the share of evaluation rows whose category never occurs in training, and the
change in the share of missing values. PSI = sum over bins of (a - e) * ln(a / e), with e and
a the training and evaluation shares of each bin. Numerics use 10 quantile bins of the
training values (ties merge bins); categories are bins of their own, with every category
unseen in training pooled into one. Missing values are left out of the bins and reported as
their own share. A share of 0 counts as `FLOOR`, so a bin present on one side only gives a
large, finite term. PSI under 0.1 is stable, 0.1-0.25 a shift worth a look (`WARN`), 0.25 or
more a shift a model should not be trusted across (`FLAG`).

Profiles are counts, so they are built partition by partition and added up.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workflows.storm import encoding

WARN, FLAG = 0.1, 0.25
BINS = 10
FLOOR = 1e-4
GAP_YEARS = 5  # warn when evaluation starts this many years or more after training ends
UNSEEN = "(unseen in training)"


@dataclass
class Profile:
    """Counts of one side's rows: per numeric, rows per bin and missing; per category, rows
    per value and missing."""

    rows: int = 0
    bins: dict[str, np.ndarray] = field(default_factory=dict)
    categories: dict[str, Counter[str]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Profile) -> Profile:
        return Profile(
            self.rows + other.rows,
            {c: self.bins.get(c, 0) + other.bins[c] for c in other.bins},
            {c: self.categories.get(c, Counter()) + other.categories[c] for c in other.categories},
            {c: self.missing.get(c, 0) + other.missing[c] for c in other.missing},
        )


def numeric_edges(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inner edges of `BINS` quantile bins of each numeric's training values, exactly (the
    pipeline takes Dask's approximate deciles through `edges_from_quantiles`)."""
    deciles = np.arange(1, BINS) / BINS
    return edges_from_quantiles(
        {c: np.quantile(a[~np.isnan(a)], deciles) if (~np.isnan(a)).any() else np.array([]) for c, a in values.items()}
    )


def edges_from_quantiles(quantiles: Any) -> dict[str, np.ndarray]:
    """Bin edges from each column's deciles: unique (tied quantiles merge their bins), and none
    for a column with no values."""
    out = {}
    for column in quantiles:
        values = np.asarray(quantiles[column], dtype="float64")
        out[str(column)] = np.unique(values[~np.isnan(values)])
    return out


def profile(frame: pd.DataFrame, edges: dict[str, np.ndarray], categorical: tuple[str, ...]) -> Profile:
    """The counts of one partition: a value x falls in bin i when edges[i-1] < x <= edges[i]."""
    out = Profile(rows=len(frame))
    for column, array in encoding.numeric_arrays(frame, list(edges)).items():
        present = array[~np.isnan(array)]
        positions = np.searchsorted(edges[column], present, side="left")
        out.bins[column] = np.bincount(positions, minlength=len(edges[column]) + 1)
        out.missing[column] = int(len(array) - len(present))
    for column in categorical:
        values = frame[column].astype("string")
        blank = values.isna() | (values.str.strip() == "")
        out.categories[column] = Counter({str(k): int(v) for k, v in values[~blank].value_counts().items()})
        out.missing[column] = int(blank.sum())
    return out


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of the ``actual`` counts against the ``expected`` counts over the same bins."""
    e = _shares(expected)
    a = _shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype="float64")
    total = counts.sum()
    shares = counts / total if total else np.zeros_like(counts)
    return np.maximum(shares, FLOOR)


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric" or "categorical"
    psi: float
    level: str  # "stable", "warn" or "flag"
    unseen_share: float  # of evaluation rows with a value: a category never seen in training
    missing_train: float
    missing_eval: float

    @property
    def missing_change(self) -> float:
        return self.missing_eval - self.missing_train


def level(value: float) -> str:
    return "flag" if value >= FLAG else "warn" if value >= WARN else "stable"


def compare(train: Profile, evaluation: Profile) -> list[FeatureDrift]:
    """Drift of every profiled feature, largest PSI first."""
    out = []
    for column, expected in train.bins.items():
        value = psi(expected, evaluation.bins[column])
        out.append(FeatureDrift(column, "numeric", value, level(value), 0.0, *_missing(train, evaluation, column)))
    for column, seen in train.categories.items():
        counts = evaluation.categories[column]
        names = sorted(seen)
        unseen = sum(n for value, n in counts.items() if value not in seen)
        expected = np.array([seen[v] for v in names] + [0])
        actual = np.array([counts.get(v, 0) for v in names] + [unseen])
        value = psi(expected, actual)
        present = sum(counts.values())
        out.append(
            FeatureDrift(
                column,
                "categorical",
                value,
                level(value),
                unseen / present if present else 0.0,
                *_missing(train, evaluation, column),
            )
        )
    return sorted(out, key=lambda d: (-d.psi, d.feature))


def _missing(train: Profile, evaluation: Profile, column: str) -> tuple[float, float]:
    return (
        train.missing[column] / train.rows if train.rows else 0.0,
        evaluation.missing[column] / evaluation.rows if evaluation.rows else 0.0,
    )


def gap_warning(train_years: list[int], test_years: list[int]) -> str | None:
    """A warning when evaluation starts `GAP_YEARS` or more after the last training year."""
    gap = min(test_years) - max(train_years)
    if gap >= GAP_YEARS:
        return (
            f"evaluation starts {gap} years after the last training year ({max(train_years)} -> "
            f"{min(test_years)}): the data may have changed in between"
        )
    return None


def as_json(drifts: list[FeatureDrift], gap: str | None) -> dict[str, Any]:
    return {"features": [asdict(d) for d in drifts], "gap_warning": gap, "warn": WARN, "flag": FLAG}
