"""The platform's public API: all a workload's flow needs, and all it should know.

    from mlwf import cluster

    @flow
    def my_flow(env: str = "local", data_root: str | None = None) -> None:
        with cluster(env, data_root) as run:
            frame = dd.read_parquet(f"{run.data_root}/curated/my_data")  # on run.client's cluster
            ...

``cluster`` gives this run its own Dask cluster (a LocalCluster locally; in AWS an adaptive
Fargate cluster of the environment, tagged with the flow run, always torn down), the
environment's settings and the data root. Where it runs, SSM, tags, cluster specs and the
version guard stay inside the platform. `data_root` answers "where" without a cluster (for
work that needs none, such as copying files in).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwf.errors import DecayedError, RefusedError
from mlwf.runtime import LOCAL, resolve
from mlwf.settings import Settings


@dataclass(frozen=True)
class Run:
    """What a flow gets inside ``with cluster(...)``."""

    client: Any  # distributed.Client on this run's own cluster
    env: str
    data_root: str
    settings: Settings | None  # None locally


def flow_run_id() -> str:
    """This Prefect flow run's ID (what the run's cluster is tagged with)."""
    from prefect.runtime import flow_run

    return str(flow_run.get_id() or "no-flow-run")


def data_root(env: str = LOCAL, data_root: str | None = None, environments_dir: str | Path = "environments") -> str:
    """Where this environment's data lives: ``data_root`` if given, else the default (a local
    folder, or the environment's bucket)."""
    return resolve(env, data_root, environments_dir).data_root


@contextmanager
def cluster(
    env: str = LOCAL,
    data_root: str | None = None,
    *,
    max_workers: int | None = None,
    environments_dir: str | Path = "environments",
) -> Iterator[Run]:
    """This run's Dask cluster, closed when the block exits (success, error, cancellation).
    ``max_workers`` lets an AWS run grow beyond the environment's default, up to its tier's cap."""
    from mlwf.dask_cluster import dask_client

    runtime = resolve(env, data_root, environments_dir)
    with dask_client(runtime.cluster_spec(flow_run_id(), max_workers)) as client:
        yield Run(client, runtime.env, runtime.data_root, runtime.settings)


def refused(message: str, details: dict[str, Any] | None = None) -> Any:
    """The final state of a run whose result a check refused to publish (a model the promotion
    gate refused): FAILED, named "Refused", one line; the "refused" alert fires on it. Calling
    the flow in process raises `mlwf.errors.RefusedError` with ``details``."""
    return _failed("Refused", RefusedError(message, details))


def decayed(message: str, details: dict[str, Any] | None = None) -> Any:
    """The final state of a run whose serving model is worse than the constant baseline on the
    newest rows: FAILED, named "Decayed", one line; the "decayed" alert fires on it. In process
    it raises `mlwf.errors.DecayedError`."""
    return _failed("Decayed", DecayedError(message, details))


def _failed(name: str, error: RefusedError) -> Any:
    from prefect.states import Failed

    return Failed(name=name, message=str(error), data=error)
