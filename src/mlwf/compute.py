"""Dask clusters for flow runs: a LocalCluster locally, an ephemeral Fargate cluster in AWS.

`dask_client(spec)` is the only way flows get a cluster. It is a create/close pair: the cluster
is closed when the block exits for any reason (success, an exception, cancellation, or SIGTERM
to the flow process, which is turned into an exception so the ``finally`` runs). Before any
work it checks that client, scheduler and workers run the same package versions.

Fargate clusters are built from the environment's settings and the compute stack's published
runtime (`ClusterRuntime`), with tags naming the platform, environment, flow run and creation
time so that a crashed run's leftovers can be found and reaped without touching anyone else's.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from distributed import Client, LocalCluster

from mlwf.settings import Settings
from mlwf.versions import check_versions

log = logging.getLogger(__name__)

PLATFORM_TAG = "mlwf:platform"
PLATFORM = "ml-workflows"
ENVIRONMENT_TAG = "mlwf:environment"
FLOW_RUN_TAG = "mlwf:flow-run"
CREATED_AT_TAG = "mlwf:created-at"


@dataclass(frozen=True)
class LocalSpec:
    """The embedded default: processes on this machine."""

    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str | float = "auto"


@dataclass(frozen=True)
class ClusterRuntime:
    """What the compute stack publishes for flows (SSM parameter ``/<prefix>/compute``)."""

    cluster_arn: str
    vpc_id: str
    private_subnets: list[str]
    scheduler_security_group: str
    worker_security_group: str
    flow_security_group: str
    execution_role_arn: str
    task_role_arn: str
    flow_task_role_arn: str
    log_group: str
    image: str
    data_root: str


@dataclass(frozen=True)
class RunInfo:
    """Identifies one flow run in the tags of what it creates."""

    environment: str
    flow_run_id: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def tags(self) -> dict[str, str]:
        return {
            PLATFORM_TAG: PLATFORM,
            ENVIRONMENT_TAG: self.environment,
            FLOW_RUN_TAG: self.flow_run_id,
            CREATED_AT_TAG: self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@dataclass(frozen=True)
class FargateSpec:
    kwargs: dict[str, Any]


ClusterSpec = LocalSpec | FargateSpec


def fargate_cluster_kwargs(settings: Settings, runtime: ClusterRuntime, run: RunInfo) -> dict[str, Any]:
    """Arguments for dask_cloudprovider's FargateCluster, from settings and the stack's runtime.

    Everything is pre-created by the stacks (ECS cluster, roles, security groups, log group),
    so the cluster creates only its tasks and task definitions; tasks get private IPs only.
    """
    dask = settings.dask
    image = runtime.image
    if ":" not in image.rsplit("/", 1)[-1] and "@sha256:" not in image:
        raise ValueError(f"image {image!r} is not pinned (expected a tag or a digest)")
    lifetime = f"{dask.max_lifetime_minutes}m"
    return {
        "image": image,
        "cluster_arn": runtime.cluster_arn,
        "vpc": runtime.vpc_id,
        "subnets": list(runtime.private_subnets),
        "security_groups": [runtime.scheduler_security_group, runtime.worker_security_group],
        "fargate_use_private_ip": True,
        "execution_role_arn": runtime.execution_role_arn,
        "task_role_arn": runtime.task_role_arn,
        "cloudwatch_logs_group": runtime.log_group,
        "region_name": settings.region,
        "fargate_spot": dask.spot_workers,  # scheduler stays on FARGATE; workers on FARGATE_SPOT
        "scheduler_cpu": dask.scheduler_cpu,
        "scheduler_mem": dask.scheduler_memory_mib,
        "scheduler_timeout": f"{dask.idle_timeout_minutes} minutes",
        "worker_cpu": dask.worker_cpu,
        "worker_mem": dask.worker_memory_mib,
        "worker_nthreads": max(dask.worker_cpu // 1024, 1),
        "n_workers": dask.n_workers,
        "worker_extra_args": ["--lifetime", lifetime],
        "environment": {"MLWF_MAX_LIFETIME": lifetime},
        "tags": {**settings.tags, **run.tags()},
        # Never run dask-cloudprovider's account-wide cleanup: it deletes other runs' resources.
        "skip_cleanup": True,
    }


def cluster_spec(settings: Settings | None, runtime: ClusterRuntime | None, run: RunInfo) -> ClusterSpec:
    """LocalSpec without an AWS environment, FargateSpec with one."""
    if settings is None or runtime is None:
        return LocalSpec()
    return FargateSpec(fargate_cluster_kwargs(settings, runtime, run))


def _start(spec: ClusterSpec) -> Any:
    if isinstance(spec, LocalSpec):
        return LocalCluster(
            n_workers=spec.n_workers,
            threads_per_worker=spec.threads_per_worker,
            memory_limit=spec.memory_limit,
            dashboard_address=None,
            processes=True,
        )
    from dask_cloudprovider.aws import FargateCluster

    return FargateCluster(**spec.kwargs)


class Terminated(BaseException):
    """SIGTERM arrived while a cluster was open (BaseException: never swallowed by retries)."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def dask_client(spec: ClusterSpec) -> Iterator[Client]:
    """A client on a fresh cluster that is always closed when the block exits."""
    with _sigterm_raises():
        cluster = _start(spec)
        try:
            # `with` makes this client the current one for the block, even if the caller has
            # another client active: every graph of the flow runs on this run's own cluster.
            with Client(cluster) as client:
                check_versions(client)
                yield client
        finally:
            log.info("closing Dask cluster %s", getattr(cluster, "name", ""))
            cluster.close()
