"""The Prefect flows of the storm-damage workload.

Each stage is a flow of its own (for ad-hoc runs and deployments) and the pipeline chains them
on a single ephemeral cluster. Flows use only the platform's public API (`mlwf.cluster`,
`mlwf.data_root`); only the flow process talks to Prefect, the Dask workers run Dask graphs
only (no per-worker Prefect API, no "database is locked").
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

import mlwf
from mlwf import storage
from mlwf.errors import UserError
from workflows.storm import model_store, stages
from workflows.storm.ingest import NCEI_SOURCE
from workflows.storm.model import TrainConfig
from workflows.storm.report import markdown_summary, metrics_table
from workflows.storm.zones import Zones

LOCAL = "local"


def _curated(zones: Zones) -> storage.Published:
    published = storage.current(zones.curated)
    if published is None:
        raise UserError(f"no curated data under {zones.curated}: run the prepare flow first")
    return published


@flow(name="storm-ingest")
def ingest_flow(
    source: str = NCEI_SOURCE,
    years: list[int] | None = None,
    env: str = LOCAL,
    data_root: str | None = None,
    environments_dir: str = "environments",
) -> dict[str, Any]:
    """Copy yearly details files into the raw zone; quarantine bad ones (no cluster needed)."""
    zones = Zones(mlwf.data_root(env, data_root, environments_dir))
    return asdict(stages.ingest_all(source, years, zones))


@flow(name="storm-prepare")
def prepare_flow(
    env: str = LOCAL,
    data_root: str | None = None,
    environments_dir: str = "environments",
    max_workers: int | None = None,
) -> str:
    """Clean the raw zone into curated Parquet partitioned by year; returns the curated version."""
    with mlwf.cluster(env, data_root, max_workers=max_workers, environments_dir=environments_dir) as run:
        return stages.prepare_curated(Zones(run.data_root)).version


@flow(name="storm-train")
def train_flow(
    split_year: int | None = None,
    engine: str = "auto",
    env: str = LOCAL,
    data_root: str | None = None,
    environments_dir: str = "environments",
    max_workers: int | None = None,
) -> dict[str, Any]:
    """Train and store the damage model on the current curated data; returns its metadata."""
    zones = Zones(mlwf.data_root(env, data_root, environments_dir))
    curated = _curated(zones)
    with mlwf.cluster(env, data_root, max_workers=max_workers, environments_dir=environments_dir):
        stored = stages.train_model(zones, curated, TrainConfig(split_year=split_year, engine=engine))
    return stored.metadata


@flow(name="storm-score")
def score_flow(
    years: list[int] | None = None,
    model_version: str | None = None,
    env: str = LOCAL,
    data_root: str | None = None,
    environments_dir: str = "environments",
    max_workers: int | None = None,
) -> str:
    """Score curated events with a stored model (the current one by default); returns the scores URL."""
    zones = Zones(mlwf.data_root(env, data_root, environments_dir))
    curated = _curated(zones)
    stored = model_store.load(zones.models, model_version)
    with mlwf.cluster(env, data_root, max_workers=max_workers, environments_dir=environments_dir):
        return stages.score_events(zones, curated, stored, years).url


@flow(name="storm-damage-pipeline")
def storm_damage_pipeline(
    source: str = NCEI_SOURCE,
    years: list[int] | None = None,
    env: str = LOCAL,
    data_root: str | None = None,
    split_year: int | None = None,
    score_years: list[int] | None = None,
    engine: str = "auto",
    environments_dir: str = "environments",
    max_workers: int | None = None,
) -> dict[str, Any]:
    """Ingest, prepare, train, score and report on one cluster; publish the report as artifacts.
    ``max_workers`` lets an AWS run's cluster grow beyond the environment's default, up to its
    tier's cap."""
    zones = Zones(mlwf.data_root(env, data_root, environments_dir))
    ingested = stages.ingest_all(source, years, zones)
    with mlwf.cluster(env, data_root, max_workers=max_workers, environments_dir=environments_dir) as run:
        cluster = str(run.client.scheduler_info()["address"])
        curated = stages.prepare_curated(zones)
        stored = stages.train_model(zones, curated, TrainConfig(split_year=split_year, engine=engine))
        scores = stages.score_events(zones, curated, stored, score_years)
    written = stages.write_report(zones, stored, scores, ingested)
    create_table_artifact(key="storm-damage-metrics", table=metrics_table(stored.metadata["metrics"]))
    create_markdown_artifact(
        key="storm-damage-report", markdown=markdown_summary(stored.metadata, scores.meta, asdict(ingested))
    )
    return {
        "data_root": zones.root,
        "curated_version": curated.version,
        "model_version": stored.version,
        "metrics": stored.metadata["metrics"],
        "engine": stored.metadata["engine"],
        "scores": scores.url,
        "scored_rows": scores.meta.get("rows"),
        "report": storage.join(written.url, "report.md"),
        "quarantined": dict(ingested.quarantined),
        "cluster": cluster,
    }
