"""The model's input columns and the column-level encoding shared by training and scoring.

Light on purpose (numpy, pandas, pyarrow only): Dask workers that score import this and
`workflows.storm.scorer`, not scikit-learn or dask-ml, so a worker holds less before any data.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

CATEGORICAL = ("event_type", "state", "cz_type", "magnitude_type", "era")
NUMERIC = (
    "wind_speed_kt",
    "hail_size_in",
    "duration_minutes",
    "begin_hour_local",
    "month",
    "tor_f_scale",
    "begin_lat",
    "begin_lon",
)
INPUT_COLUMNS = CATEGORICAL + NUMERIC
# Tornado ratings in any letter case ("EF1", "ef1", "Ef1"): a lookup is cheaper than upper-casing.
_F_SCALE = {f"{prefix}{i}": float(i) for i in range(6) for prefix in ("F", "f", "EF", "Ef", "eF", "ef")}
_F_SCALE_KEYS = pa.array(list(_F_SCALE), pa.string())
_F_SCALE_VALUES = np.array([*_F_SCALE.values(), np.nan])  # position -1: not a rating


def numeric_arrays(frame: pd.DataFrame, columns: Iterable[str] = NUMERIC) -> dict[str, np.ndarray]:
    """Numeric inputs as floats (NaN where missing), skewed and coded ones made model-friendly.
    ``columns`` are the ones a model uses (a model stored by older code names its own)."""
    out = {}
    for column in columns:
        if column == "tor_f_scale":
            out[column] = _F_SCALE_VALUES[lookup(_strings(frame[column]), _F_SCALE_KEYS)]
        elif column == "duration_minutes":
            out[column] = np.log1p(frame[column].to_numpy(dtype="float64", na_value=np.nan).clip(min=0))
        else:
            out[column] = frame[column].to_numpy(dtype="float64", na_value=np.nan)
    return out


def numeric_view(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(numeric_arrays(frame), index=frame.index)


def codes(frame: pd.DataFrame, column: str, vocabulary: list[str]) -> np.ndarray:
    """Codes of ``column`` against a fixed vocabulary: -1 for anything not in it (or missing)."""
    return lookup(_strings(frame[column]), pa.array(vocabulary, pa.string()))


def numeric_values(
    frame: pd.DataFrame, numeric: list[str], medians: dict[str, float], indicators: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ``numeric`` inputs with missing values imputed by ``medians``, and the missing-value
    masks of the ``indicators`` columns."""
    arrays = numeric_arrays(frame, dict.fromkeys([*numeric, *indicators]))
    imputed = {c: np.where(np.isnan(arrays[c]), medians[c], arrays[c]) for c in numeric}
    return imputed, {c: np.isnan(arrays[c]) for c in indicators}


def lookup(values: pa.Array | pa.ChunkedArray, vocabulary: pa.Array) -> np.ndarray:
    """Each value's position in ``vocabulary``, -1 where it is missing or not in it."""
    return np.asarray(pc.index_in(values, value_set=vocabulary).fill_null(-1).to_numpy())  # int32


def _strings(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(series.astype("string"))
