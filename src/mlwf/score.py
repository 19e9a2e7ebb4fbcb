"""Score: batch-predict curated events with a stored model, partition by partition.

The output is Parquet published as a dataset version keyed by the model version, the curated
version and the selected years: readers see the old result or the new one, never a part, and
scoring the same inputs again is a no-op rather than a second copy.
"""

from __future__ import annotations

import logging

import dask.dataframe as dd
import numpy as np
import pandas as pd

from mlwf import model_store, storage
from mlwf.features import INPUT_COLUMNS
from mlwf.model import predict_proba

log = logging.getLogger(__name__)

THRESHOLD = 0.5
SLICE_ROWS = 100_000
KEY_COLUMNS = ("event_id", "year", "event_type", "state")
SCORE_META = pd.DataFrame(
    {
        "event_id": pd.Series(dtype="int64"),
        "year": pd.Series(dtype="int32"),
        "event_type": pd.Series(dtype="string"),
        "state": pd.Series(dtype="string"),
        "p_damage": pd.Series(dtype="float64"),
        "predicted_damage": pd.Series(dtype="bool"),
    }
)


def score_partition(frame: pd.DataFrame, stored: model_store.StoredModel) -> pd.DataFrame:
    """Scores for one partition of curated events (pure pandas; runs on the workers)."""
    if frame.empty:
        return SCORE_META.copy()
    # In slices: the dense design matrix of a whole partition can be larger than the partition.
    p = np.concatenate(
        [
            predict_proba(stored.model, frame.iloc[start : start + SLICE_ROWS])
            for start in range(0, len(frame), SLICE_ROWS)
        ]
    )
    out = frame[list(KEY_COLUMNS)].reset_index(drop=True).copy()
    out["p_damage"] = p
    out["predicted_damage"] = p >= THRESHOLD
    return out.astype(SCORE_META.dtypes.to_dict())


def score(
    curated: dd.DataFrame,
    curated_version: str,
    stored: model_store.StoredModel,
    scores_url: str,
    years: list[int] | None = None,
) -> storage.Published:
    """Score ``curated`` (optionally only ``years``) and publish the result atomically."""
    model_store.check_schema(stored, list(curated.columns))
    selected = curated[list(dict.fromkeys([*KEY_COLUMNS, *INPUT_COLUMNS]))]
    if years:
        selected = selected[selected["year"].isin(years)]
    version = storage.fingerprint("scores", stored.version, curated_version, sorted(years or []))

    def write(target: str) -> dict[str, object]:
        scored = selected.map_partitions(score_partition, stored, meta=SCORE_META)
        scored.to_parquet(target, write_index=False)
        written = dd.read_parquet(target, columns=["p_damage"])
        rows, positive = dd.compute(written.shape[0], (written["p_damage"] >= THRESHOLD).sum())
        log.info("scored %d events, %d predicted damaging", rows, positive)
        return {"rows": int(rows), "predicted_damaging": int(positive)}

    return storage.publish(
        scores_url,
        version,
        write,
        meta={"model_version": stored.version, "curated_version": curated_version, "years": sorted(years or [])},
    )


def read_scores(scores_url: str) -> pd.DataFrame:
    """The current scores as one pandas frame (for reports and tests)."""
    published = storage.current(scores_url)
    if published is None:
        return SCORE_META.copy()
    return dd.read_parquet(published.url).compute()
