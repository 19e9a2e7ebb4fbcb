"""The Prefect flows of the storm-damage workload.

Each stage is a flow of its own (for ad-hoc runs and deployments) and the pipeline chains them
on a single ephemeral cluster. Flows use only the platform's public API (`mlwf.cluster`,
`mlwf.data_root`); only the flow process talks to Prefect, the Dask workers run Dask graphs
only (no per-worker Prefect API, no "database is locked").
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

import mlwf
from mlwf import progress, storage
from mlwf.api import Run
from mlwf.errors import UserError
from workflows.storm import model_store, stages
from workflows.storm.ingest import NCEI_SOURCE
from workflows.storm.model import TrainConfig, year_range
from workflows.storm.report import metrics_table
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
    train_years: str | None = None,
    force_promote: bool = False,
) -> dict[str, Any]:
    """Train on the current curated data and store the model; it becomes current only if it
    passes the promotion gate (the run ends Refused otherwise, or ``force_promote`` overrides it).
    ``train_years`` is "FIRST-LAST" (default: the evaluation years' coverage era)."""
    zones = Zones(mlwf.data_root(env, data_root, environments_dir))
    curated = _curated(zones)
    config = TrainConfig(split_year=split_year, engine=engine, train_years=year_range(train_years))
    with mlwf.cluster(env, data_root, max_workers=max_workers, environments_dir=environments_dir):
        training = stages.train_model(zones, curated, config, force_promote)
    return _outcome(training, training.candidate.metadata)


def _outcome(training: stages.Training, result: dict[str, Any]) -> Any:
    """The run's result, or its distinct final state (a flow returning a state ends in it):
    Decayed (the serving model is worse than the baseline on the newest rows), Refused (the gate
    refused the candidate)."""
    if training.decayed:
        return mlwf.decayed(f"{training.decayed}; {training.line}", result)
    if training.refused:
        return mlwf.refused(training.line, result)
    return result


def _stops_when_decayed(run: Run, override: bool | None) -> bool:
    """Whether a decayed champion stops scoring: the flow's parameter, else the environment's
    setting (on in prod), else off (local runs)."""
    if override is not None:
        return override
    return run.settings.stops_decayed_scoring if run.settings is not None else False


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
    train_years: str | None = None,
    force_promote: bool = False,
    stop_when_decayed: bool | None = None,
) -> dict[str, Any]:
    """Ingest, prepare, train, score and report on one cluster; publish the report as artifacts.

    The trained model scores only if it passes the promotion gate; otherwise the current model
    (if any) scores, the report says why, and the run ends Refused. A current model worse than
    the baseline on the newest rows ends the run Decayed, and stops scoring where
    ``stop_when_decayed`` (default: the environment's ``alerts.stop_scoring_when_decayed``, on in
    prod). ``max_workers`` lets an AWS run's cluster grow beyond the environment's default, up
    to its tier's cap."""
    progress.announce_flow_run()
    zones = Zones(mlwf.data_root(env, data_root, environments_dir))
    config = TrainConfig(split_year=split_year, engine=engine, train_years=year_range(train_years))
    ingested = stages.ingest_all(source, years, zones)
    with mlwf.cluster(env, data_root, max_workers=max_workers, environments_dir=environments_dir) as run:
        cluster = str(run.client.scheduler_info()["address"])
        opened = datetime.now(UTC).isoformat()
        curated = stages.prepare_curated(zones)
        stop = _stops_when_decayed(run, stop_when_decayed)
        training = stages.train_model(zones, curated, config, force_promote, stop)
        serving = training.serving
        scores = None if serving is None else stages.score_events(zones, curated, serving, score_years)
    closed = datetime.now(UTC).isoformat()
    written = stages.write_report(zones, training, scores, ingested)
    candidate = training.candidate.metadata
    create_table_artifact(key="storm-damage-metrics", table=metrics_table(candidate["metrics"]))
    report_md = storage.join(written.url, "report.md")
    create_markdown_artifact(key="storm-damage-report", markdown=storage.read_bytes(report_md).decode())
    result = {
        "data_root": zones.root,
        "curated_version": curated.version,
        "model_version": training.candidate.version,
        "promotion": training.line,
        "serving_model": serving.version if serving else None,
        "metrics": candidate["metrics"],
        "engine": candidate["engine"],
        "train_window": candidate.get("train_window"),
        "drift_warnings": [
            f["feature"] for f in candidate.get("drift", {}).get("features", []) if f["level"] != "stable"
        ],
        "scores": None if scores is None else scores.url,
        "unscored": training.unscored,
        "scored_rows": None if scores is None else scores.meta.get("rows"),
        "report": report_md,
        "quarantined": dict(ingested.quarantined),
        "superseded": dict(ingested.superseded),
        "releases": {str(year): name for year, name in ingested.releases.items()},
        "cluster": cluster,
        "cluster_open": [opened, closed],  # when this run's cluster was up (UTC)
        "decayed": training.decayed or None,
    }
    return _outcome(training, result)
