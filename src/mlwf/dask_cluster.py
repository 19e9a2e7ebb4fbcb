"""Dask clusters for flow runs: a LocalCluster locally, an ephemeral Fargate cluster in AWS.

`dask_client(spec)` is the only way flows get a cluster. It is a create/close pair: the cluster
is closed when the block exits for any reason (success, an exception, cancellation, or SIGTERM
to the flow process, which is turned into an exception so the ``finally`` runs). Before any
work it waits for the expected workers and checks that client, scheduler and workers run the
same package versions; workers that join later are checked too (`mlwf.versions.guard_versions`).

Fargate clusters are built from the environment's settings and the compute stack's published
runtime (`ClusterRuntime`): they run the task definitions the stack registered (so a run
registers nothing and leaks nothing), adapt between ``n_workers`` and ``max_workers``, and are
tagged with the platform, environment, flow run and creation time so that a crashed run's
leftovers can be found and reaped without touching anyone else's.
"""

from __future__ import annotations

import logging
import re
import secrets
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from distributed import Client, LocalCluster

from mlwf.contract import (
    CREATED_AT_TAG,
    DASK_LOG_STREAM_PREFIX,
    DASK_TLS_VARIABLE,
    ENVIRONMENT_TAG,
    FLOW_RUN_TAG,
    PLATFORM,
    PLATFORM_TAG,
    RUN_TAGS,
    ClusterRuntime,
    dask_tls_secret_name,
)
from mlwf.errors import UserError
from mlwf.settings import TIER_MAX_WORKERS, Settings
from mlwf.versions import guard_versions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalSpec:
    """The embedded default: processes on this machine."""

    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str | float = "auto"
    join_timeout_s: float = 60.0


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
class Adaptivity:
    """How a Fargate cluster adapts: between ``minimum`` and ``maximum`` workers, giving a
    worker back once it has been idle for about ``idle_s`` seconds."""

    minimum: int
    maximum: int
    idle_s: int
    interval_s: float = 5.0

    def adapt_kwargs(self) -> dict[str, Any]:
        """Arguments for ``cluster.adapt``: distributed retires a worker after it was suggested
        for removal ``wait_count`` checks in a row, one check every ``interval``."""
        return {
            "minimum": self.minimum,
            "maximum": self.maximum,
            "interval": f"{self.interval_s}s",
            "wait_count": max(1, round(self.idle_s / self.interval_s)),
        }


@dataclass(frozen=True)
class FargateSpec:
    kwargs: dict[str, Any]
    adaptivity: Adaptivity
    join_timeout_s: float
    tls_secret: str | None = None  # the name of the run's certificates' secret (`mlwf.dask_tls`)


ClusterSpec = LocalSpec | FargateSpec


def worker_cap(settings: Settings, requested: int | None) -> int:
    """The most workers this run may have: the settings' ``max_workers``, or what the run asks
    for, never more than its tier allows nor fewer than ``n_workers``."""
    if requested is None:
        return settings.dask.max_workers
    cap = TIER_MAX_WORKERS[settings.tier]
    if requested > cap:
        raise UserError(f"max_workers {requested} is above the {settings.tier} tier's cap of {cap}")
    if requested < settings.dask.n_workers:
        raise UserError(f"max_workers {requested} is below the environment's n_workers ({settings.dask.n_workers})")
    return requested


def fargate_cluster_kwargs(settings: Settings, runtime: ClusterRuntime, run: RunInfo) -> dict[str, Any]:
    """Arguments for dask_cloudprovider's FargateCluster, from settings and the stack's runtime.

    Everything is pre-created by the stacks (ECS cluster, the scheduler and worker task
    definitions, roles, security groups, log group), so the cluster creates only its tasks;
    tasks get private IPs only. The roles and log group are passed too although the task
    definitions name them: dask-cloudprovider creates its own wherever one is missing.
    """
    dask = settings.dask
    image = runtime.image
    if ":" not in image.split("/")[-1]:  # name:tag, or name@sha256:digest
        raise ValueError(f"image {image!r} is not pinned (expected a tag or a digest)")
    lifetime = f"{dask.max_lifetime_minutes}m"
    return {
        "image": image,
        "scheduler_task_definition_arn": runtime.scheduler_task_definition_arn,
        "worker_task_definition_arn": runtime.worker_task_definition_arn,
        "cluster_arn": runtime.cluster_arn,
        "vpc": runtime.vpc_id,
        "subnets": list(runtime.private_subnets),
        "security_groups": [runtime.scheduler_security_group, runtime.worker_security_group],
        "fargate_use_private_ip": True,
        "execution_role_arn": runtime.execution_role_arn,
        "task_role_arn": runtime.task_role_arn,
        "cloudwatch_logs_group": runtime.log_group,
        "cloudwatch_logs_stream_prefix": DASK_LOG_STREAM_PREFIX,  # as in the task definitions
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
        "environment": {"MLWF_MAX_LIFETIME": lifetime, "AWS_DEFAULT_REGION": settings.region},
        "tags": {**settings.tags, **run.tags()},
        # Never run dask-cloudprovider's account-wide cleanup: it deletes other runs' resources.
        "skip_cleanup": True,
    }


def cluster_spec(
    settings: Settings | None, runtime: ClusterRuntime | None, run: RunInfo, max_workers: int | None = None
) -> ClusterSpec:
    """LocalSpec without an AWS environment (a fixed LocalCluster: ``max_workers`` does not
    apply), an adaptive FargateSpec with one."""
    if settings is None or runtime is None:
        return LocalSpec()
    dask = settings.dask
    tls_secret = None
    if dask.tls:
        stamp = f"{run.created_at:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        tls_secret = dask_tls_secret_name(settings.name_prefix, f"{run.flow_run_id}-{stamp}")
    return FargateSpec(
        fargate_cluster_kwargs(settings, runtime, run),
        Adaptivity(dask.n_workers, worker_cap(settings, max_workers), dask.worker_idle_seconds),
        join_timeout_s=dask.worker_join_timeout_minutes * 60,
        tls_secret=tls_secret,
    )


def _start(spec: ClusterSpec, cleanup: ExitStack) -> Any:
    """Start the cluster; what must outlive it (the run's certificates) is undone by ``cleanup``."""
    if isinstance(spec, LocalSpec):
        return LocalCluster(
            n_workers=spec.n_workers,
            threads_per_worker=spec.threads_per_worker,
            memory_limit=spec.memory_limit,
            dashboard_address=None,
        )  # one process per worker (LocalCluster's default)
    from dask_cloudprovider.aws import FargateCluster

    kwargs = spec.kwargs
    _require_ecs_cluster(kwargs["cluster_arn"], kwargs["region_name"])  # before anything is created
    if spec.tls_secret is not None:
        import boto3

        from mlwf import dask_tls

        certificates = dask_tls.Certificates.new()
        client = boto3.client("secretsmanager", region_name=kwargs["region_name"])
        arn = dask_tls.store(client, spec.tls_secret, certificates, _run_tags(kwargs["tags"]))
        cleanup.callback(dask_tls.delete, client, arn)
        environment = {**kwargs["environment"], DASK_TLS_VARIABLE: arn}
        kwargs = {**kwargs, "security": certificates.security(), "environment": environment}
    try:
        cluster = FargateCluster(**kwargs)
    except Exception as exc:  # dask-cloudprovider closes what it started before raising
        raise ClusterStartError(start_error_line(exc)) from exc
    cluster.adapt(**spec.adaptivity.adapt_kwargs())
    return cluster


class ClusterStartError(RuntimeError):
    """The run's Dask cluster could not start (the message is one line)."""


class ClusterMissingError(ClusterStartError, UserError):
    """The ECS cluster the compute stack published is gone: retrying cannot help (exit 2)."""


def _require_ecs_cluster(arn: str, region: str) -> None:
    """dask-cloudprovider unpacks DescribeClusters' answer and, for a deleted cluster, fails with
    "not enough values to unpack": ask first, and name the cluster."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = boto3.client("ecs", region_name=region).describe_clusters(clusters=[arn])["clusters"]
    except (BotoCoreError, ClientError) as exc:
        raise ClusterStartError(start_error_line(exc)) from exc
    if not any(cluster.get("status") == "ACTIVE" for cluster in found):
        raise ClusterMissingError(
            f"the Dask cluster could not start: ECS cluster {arn} does not exist in {region} "
            "(or is no longer ACTIVE): deploy the environment's compute stack"
        )


_DENIED = re.compile(r"User: (\S+) is not authorized to perform: ([\w:*-]+)(?: on resource: ([^\s<]+))?")


def start_error_line(exc: BaseException) -> str:
    """One line for a cluster that did not start; an IAM denial names the principal's role or
    user and the action (AWS and dask-cloudprovider wrap it in pages of XML and traceback)."""
    text = str(exc)
    denied = _DENIED.search(text)
    if denied:
        principal = denied[1].split(":")[-1]  # user/NAME, assumed-role/NAME/session or root
        name = principal.split("/")[1] if "/" in principal else principal
        where = f" on {denied[3]}" if denied[3] else ""
        return f"the Dask cluster could not start: {name} is not allowed {denied[2]}{where} (AccessDenied)"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"the Dask cluster could not start: {first[:300]}"


def _run_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k in RUN_TAGS}


def _expected_workers(spec: ClusterSpec) -> tuple[int, float]:
    if isinstance(spec, LocalSpec):
        return spec.n_workers, spec.join_timeout_s
    return spec.adaptivity.minimum, spec.join_timeout_s


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
    with _sigterm_raises(), ExitStack() as cleanup:
        cluster = _start(spec, cleanup)
        try:
            # `with` makes this client the current one for the block, even if the caller has
            # another client active: every graph of the flow runs on this run's own cluster.
            with Client(cluster) as client, guard_versions(client, *_expected_workers(spec)):
                yield client
        finally:
            log.info("closing Dask cluster %s", getattr(cluster, "name", ""))
            cluster.close()
