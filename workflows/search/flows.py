"""The search workload's flow: only the platform's public API and its own functions."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

import mlwf
from mlwf import storage
from mlwf.errors import UserError
from mlwf.tasks import stage
from mlwf.versions import code_version
from workflows.search import search
from workflows.search.workload import REPORTS
from workflows.storm.prepare import read_curated
from workflows.storm.workload import CURATED


def curated_events(data_root: str) -> storage.Published:
    """The storm workload's current curated events under this data root."""
    curated = storage.current(storage.join(data_root, CURATED))
    if curated is None:
        raise UserError(f"no curated storm data under {storage.join(data_root, CURATED)}: run the storm pipeline first")
    return curated


@stage(retries=1, retry_delay_seconds=5)
def run_search(data_root: str, config: search.SearchConfig) -> dict[str, Any]:
    curated = curated_events(data_root)
    data = search.design(read_curated(curated), config)
    searcher = search.search(data, config)
    rows = search.results(searcher)
    held_out = search.held_out_auc(searcher, data)
    summary = search.summarise(config, data, rows, held_out, curated.version, code_version())
    published = search.publish(storage.join(data_root, REPORTS), summary, search.plot(rows))
    return {**summary, "report": storage.join(published.url, "report.md")}


@flow(name="storm-damage-search")
def damage_model_search(
    env: str = "local",
    data_root: str | None = None,
    split_year: int | None = None,
    max_rows: int = 100_000,
    c_values: list[float] | None = None,
    class_weights: list[str] | None = None,
    folds: int = 3,
    environments_dir: str = "environments",
    max_workers: int | None = None,
) -> dict[str, Any]:
    """Search C and class weighting of a logistic regression on the storm features over the
    cluster; publish the best parameters, every candidate's score and a plot."""
    defaults = search.SearchConfig()
    config = search.SearchConfig(
        split_year=split_year,
        max_rows=max_rows,
        c_values=tuple(c_values or defaults.c_values),
        class_weights=tuple(class_weights or defaults.class_weights),
        folds=folds,
    )
    with mlwf.cluster(env, data_root, max_workers=max_workers, environments_dir=environments_dir) as run:
        summary = run_search(run.data_root, config)
    create_table_artifact(key="damage-model-search", table=summary["candidates"])
    create_markdown_artifact(key="damage-model-search-report", markdown=search.report_markdown(summary))
    return summary
