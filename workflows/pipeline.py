"""The storm-damage pipeline: ingest -> prepare -> train -> score -> report, on one cluster."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from mlwf import storage
from mlwf.compute import dask_client
from mlwf.ingest import NCEI_SOURCE
from mlwf.model import TrainConfig
from mlwf.report import markdown_summary, metrics_table
from mlwf.runtime import resolve
from workflows import stages


@flow(name="storm-damage-pipeline", log_prints=True)
def storm_damage_pipeline(
    source: str = NCEI_SOURCE,
    years: list[int] | None = None,
    env: str = "local",
    data_root: str | None = None,
    split_year: int | None = None,
    score_years: list[int] | None = None,
    environments_dir: str = "environments",
) -> dict[str, Any]:
    """Run every stage; publish the metrics table and the summary as Prefect artifacts."""
    runtime = resolve(env, data_root, environments_dir)
    zones = runtime.zones
    ingested = stages.ingest_all(source, years, zones)
    with dask_client(runtime.cluster_spec(str(flow_run.get_id() or "local"))):
        curated = stages.prepare_curated(zones)
        stored = stages.train_model(zones, curated, TrainConfig(split_year=split_year))
        scores = stages.score_events(zones, curated, stored, score_years)
    written = stages.write_report(zones, stored, scores, ingested)
    create_table_artifact(
        key="storm-damage-metrics", table=metrics_table(stored.metadata["metrics"]), description="Test-year metrics"
    )
    create_markdown_artifact(
        key="storm-damage-report", markdown=markdown_summary(stored.metadata, scores.meta, _as_dict(ingested))
    )
    result = stages.summary(stored, scores, written)
    result["quarantined"] = dict(ingested.quarantined)
    result["data_root"] = zones.root
    result["curated_version"] = curated.version
    result["report_dir"] = written.url
    result["raw"] = storage.join(zones.raw)
    return result


def _as_dict(ingested: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(ingested)
