"""Score: batch-predict curated events with a stored model, partition by partition.

The output is Parquet published as a dataset version keyed by the model version, the curated
version and the selected years: readers see the old result or the new one, never a part, and
scoring the same inputs again is a no-op rather than a second copy.
"""

from __future__ import annotations

import logging

import dask.dataframe as dd
import pandas as pd

from mlwf import progress, storage
from workflows.storm import model_store
from workflows.storm.scorer import KEY_COLUMNS, SCORE_META, THRESHOLD, LinearScorer, score_partition

__all__ = ["KEY_COLUMNS", "SCORE_META", "THRESHOLD", "read_scores", "score", "score_partition"]

log = logging.getLogger(__name__)


def score(
    curated: dd.DataFrame,
    curated_version: str,
    stored: model_store.StoredModel,
    scores_url: str,
    years: list[int] | None = None,
) -> storage.Published:
    """Score ``curated`` (optionally only ``years``) and publish the result atomically."""
    model_store.check_schema(stored, list(curated.columns))
    # The model's own inputs: a model stored by older code may read other columns.
    selected = curated[list(dict.fromkeys([*KEY_COLUMNS, *stored.model.named_steps["features"].input_columns()]))]
    if years:
        selected = selected[selected["year"].isin(years)]
    scorer = LinearScorer.from_pipeline(stored.model)
    version = storage.fingerprint("scores", stored.version, curated_version, sorted(years or []))

    def write(target: str) -> dict[str, object]:
        scored = selected.map_partitions(score_partition, scorer, meta=SCORE_META)
        progress.compute(scored.to_parquet(target, write_index=False, compute=False), scored.npartitions)
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
