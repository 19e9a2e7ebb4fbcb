"""The pipeline's stages as Prefect tasks, shared by the single-stage flows and the pipeline.

Retries are declared here. Every stage publishes through `mlwf.storage.publish`, so a retried
or repeated task never leaves duplicate or partial output.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import get_run_logger

from mlwf import storage
from mlwf.tasks import stage
from workflows.storm import ingest, model_store, prepare, report, score
from workflows.storm.model import TrainConfig, train
from workflows.storm.zones import Zones


@stage(retries=3, retry_delay_seconds=[2, 10, 30])
def list_source_files(source: str, years: list[int] | None) -> list[ingest.SourceFile]:
    return ingest.list_source(source, years)


@stage(retries=3, retry_delay_seconds=[2, 10, 30], task_run_name="ingest {source.name}")
def ingest_one(source: ingest.SourceFile, raw_url: str) -> tuple[str, str, str]:
    return ingest.ingest_file(source, raw_url)


def ingest_all(source: str, years: list[int] | None, zones: Zones) -> ingest.IngestReport:
    logger = get_run_logger()
    files = list_source_files(source, years)
    result = ingest.IngestReport()
    for number, item in enumerate(files, start=1):
        outcome = ingest_one(item, zones.raw)
        result.merge(outcome)
        logger.info("[%d/%d] %s: %s %s", number, len(files), outcome[0], outcome[1], outcome[2])
    return result


@stage(retries=1, retry_delay_seconds=5)
def prepare_curated(zones: Zones) -> storage.Published:
    published = prepare.prepare(ingest.raw_files(zones.raw), zones.curated)
    get_run_logger().info(
        "curated version %s (%s): %s events",
        published.version,
        "new" if published.written else "unchanged",
        published.meta.get("rows"),
    )
    return published


@stage(retries=1, retry_delay_seconds=5)
def train_model(zones: Zones, curated: storage.Published, config: TrainConfig) -> model_store.StoredModel:
    logger = get_run_logger()
    existing = model_store.find(zones.models, curated.version, config)
    if existing is not None:
        logger.info("model %s already trained on curated %s: reusing it", existing.version, curated.version)
        return existing
    result = train(prepare.read_curated(curated), config)
    png = report.curves_png(result.test_labels, result.test_scores)
    stored = model_store.save(zones.models, result, curated.version, config, png)
    logger.info("model %s: %s", stored.version, result.metrics["model"])
    return stored


@stage(retries=1, retry_delay_seconds=5)
def score_events(
    zones: Zones, curated: storage.Published, stored: model_store.StoredModel, years: list[int] | None
) -> storage.Published:
    published = score.score(prepare.read_curated(curated), curated.version, stored, zones.scores, years)
    get_run_logger().info("scores version %s: %s events", published.version, published.meta.get("rows"))
    return published


@stage(retries=2, retry_delay_seconds=5)
def write_report(
    zones: Zones, stored: model_store.StoredModel, scores: storage.Published, ingested: ingest.IngestReport
) -> storage.Published:
    return report.write_report(
        zones.reports, stored.metadata, scores.meta, asdict(ingested), model_store.curves_png(stored)
    )
