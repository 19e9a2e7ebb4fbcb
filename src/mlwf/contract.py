"""The contract between the stacks and the flows: what the compute stack publishes for flow
runs, under which name, and the tags and log names both sides use. One place for each fact;
a light module (no Dask, no Pulumi) so stacks, flows, the reaper and the CLI all import it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

PLATFORM_TAG = "mlwf:platform"
PLATFORM = "ml-workflows"
ENVIRONMENT_TAG = "mlwf:environment"
FLOW_RUN_TAG = "mlwf:flow-run"
CREATED_AT_TAG = "mlwf:created-at"
RUN_TAGS = (PLATFORM_TAG, ENVIRONMENT_TAG, FLOW_RUN_TAG, CREATED_AT_TAG)  # what every run-created resource carries

DASK_LOG_STREAM_PREFIX = "dask"  # the Dask task definitions' awslogs-stream-prefix
FLOW_RUN_LOG_STREAM_PREFIX = "flow-run"


SMOKE_ROOT = "smoke"  # smoke runs write under <data root>/smoke/<a workload's prefix>
IMAGE_WORKDIR = "/opt/mlwf"  # WORKDIR of image/Dockerfile (a test keeps them equal)
IMAGE_HOME = "/home/mlwf"  # the image user's home (useradd in image/Dockerfile)
DASK_TLS_VARIABLE = "MLWF_DASK_TLS_SECRET"  # names the run's certificates' secret to its Dask tasks
FLOW_RUN_CONTAINER = "prefect"  # prefect-aws runs the flow in the container of this name


def runtime_parameter_name(name_prefix: str) -> str:
    """The SSM parameter the compute stack writes and flow runs read."""
    return f"/{name_prefix}/compute"


def api_key_secret_name(name_prefix: str) -> str:
    """The Secrets Manager secret the prefect-agent stack creates for the Prefect API key (its value
    is put by an administrator: `mlwf secrets set`, never by the stack)."""
    return f"{name_prefix}/prefect-api-key"


def work_pool_parameter_name(name_prefix: str) -> str:
    """The SSM parameter the prefect-agent stack writes with the ECS work pool's job variables
    (`mlwf flows deploy` reads it)."""
    return f"/{name_prefix}/work-pool"


def dask_tls_secret_name(name_prefix: str, flow_run_id: str) -> str:
    """The Secrets Manager secret holding one run's Dask certificates (deleted with its cluster)."""
    return f"{name_prefix}/dask-tls/{flow_run_id}"


def dask_tls_secrets_arn(region: str, account: str, name_prefix: str) -> str:
    """Every run's certificates' secret (what the roles are granted on)."""
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{dask_tls_secret_name(name_prefix, '*')}"


def task_events_queue_name(name_prefix: str) -> str:
    """The SQS queue of "ECS Task State Change" events the Prefect worker's observer reads."""
    return f"{name_prefix}-ecs-task-events"


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
    scheduler_task_definition_arn: str
    worker_task_definition_arn: str

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


# What the reaper publishes on each real run (CloudWatch), and the compute stack alarms on.
REAPER_METRICS_NAMESPACE = "mlwf/reaper"
LEFTOVER_METRIC = "LeftoverTasks"  # tasks found older than the environment's max cluster lifetime


def alerts_topic_name(name_prefix: str) -> str:
    """The environment's SNS topic of AWS-side alerts (its budget, the reaper's alarms)."""
    return f"{name_prefix}-alerts"
