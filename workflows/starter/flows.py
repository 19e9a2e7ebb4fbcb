"""The starter workload's flow: a computation over the run's Dask cluster, its result written
under the data root. Only the platform's public API and Dask."""

from __future__ import annotations

import dask.array as da
from prefect import flow

import mlwf
from mlwf import storage
from mlwf.errors import UserError
from workflows.starter.workload import RESULTS


def summarise(size: int, chunk: int) -> dict[str, float | int]:
    """Mean and spread of ``size`` seeded uniform numbers, computed chunk by chunk on the cluster
    (the mean of U(0, 1) is 0.5, its standard deviation 1/sqrt(12) = 0.2887)."""
    values = da.random.default_rng(2026).random(size, chunks=chunk)
    mean, std = da.compute(values.mean(), values.std())
    return {"size": size, "chunks": len(values.chunks[0]), "mean": float(mean), "std": float(std)}


@flow(name="starter")
def starter_flow(
    env: str = "local",
    data_root: str | None = None,
    size: int = 10_000_000,
    environments_dir: str = "environments",
) -> dict[str, float | int | str]:
    """Summarise ``size`` random numbers on this run's Dask cluster and write the summary to
    ``<data root>/results/starter/summary.json``."""
    if size < 1:
        raise UserError(f"size must be at least 1, not {size}")
    with mlwf.cluster(env, data_root, environments_dir=environments_dir) as run:
        summary = summarise(size, chunk=max(1, size // 8))
        where = storage.join(run.data_root, RESULTS, "summary.json")
        storage.write_json(where, summary)
    return {**summary, "result": where}
