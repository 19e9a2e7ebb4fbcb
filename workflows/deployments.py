"""Every flow as a Prefect deployment on an environment's work pool, created or updated
idempotently (`mlwf flows deploy --env ENV`), and the smoke run that gates a promotion
(`mlwf flows smoke --env ENV`).

AWS environments deploy to their ECS work pool with the pinned image and run from the image's
working directory; ``local`` deploys to a process pool that runs from this checkout (what the
tests use against a real local server and worker).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound
from prefect.utilities.callables import parameter_schema

from mlwf.errors import UserError
from workflows.flows import ingest_flow, prepare_flow, score_flow, storm_damage_pipeline, train_flow

IMAGE_WORKDIR = "/opt/mlwf"  # WORKDIR of workflows/Dockerfile
ENTRYPOINT_FILE = "workflows/flows.py"
SMOKE_DEPLOYMENT = "storm-ingest"


@dataclass(frozen=True)
class FlowDeployment:
    flow: Flow[Any, Any]
    cron: str | None = None  # UTC
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.flow.name)

    @property
    def entrypoint(self) -> str:
        return f"{ENTRYPOINT_FILE}:{self.flow.fn.__name__}"


DEPLOYMENTS = (
    FlowDeployment(storm_damage_pipeline, cron="0 6 * * 1"),  # weekly, Monday 06:00 UTC
    FlowDeployment(ingest_flow),
    FlowDeployment(prepare_flow),
    FlowDeployment(train_flow),
    FlowDeployment(score_flow),
)


@dataclass(frozen=True)
class Target:
    """Where deployments go: an environment's work pool, its type, image and job variables."""

    env: str
    work_pool: str
    pool_type: str
    working_dir: str
    job_variables: dict[str, Any] = field(default_factory=dict)


async def _ensure_pool(client: Any, target: Target) -> None:
    try:
        await client.read_work_pool(target.work_pool)
    except ObjectNotFound:
        await client.create_work_pool(WorkPoolCreate(name=target.work_pool, type=target.pool_type))


async def _deploy(target: Target) -> dict[str, str]:
    ids = {}
    async with get_client() as client:
        await _ensure_pool(client, target)
        for spec in DEPLOYMENTS:
            flow_id = await client.create_flow(spec.flow)
            schedules = (
                [DeploymentScheduleCreate(schedule=CronSchedule(cron=spec.cron, timezone="UTC"), active=True)]
                if spec.cron and target.env != "local"
                else []
            )
            deployment_id = await client.create_deployment(
                flow_id=flow_id,
                name=target.env,
                work_pool_name=target.work_pool,
                entrypoint=spec.entrypoint,
                path=target.working_dir,
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": target.working_dir}}],
                parameters={**spec.parameters, "env": target.env},
                parameter_openapi_schema=parameter_schema(spec.flow.fn).model_dump_for_openapi(),
                job_variables=target.job_variables,
                schedules=schedules,
                tags=["ml-workflows", target.env],
            )
            ids[f"{spec.name}/{target.env}"] = str(deployment_id)
    return ids


def deploy_flows(target: Target) -> dict[str, str]:
    """Create or update every deployment (same name, same ID on every run); returns the IDs."""
    return asyncio.run(_deploy(target))


async def _smoke(env: str, parameters: dict[str, Any], timeout: float) -> str:
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(f"{SMOKE_DEPLOYMENT}/{env}")
        run = await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        deadline = time.monotonic() + timeout
        while True:
            state = (await client.read_flow_run(run.id)).state
            if state is not None and state.is_final():
                return str(state.type.value)
            if time.monotonic() > deadline:
                raise UserError(f"smoke run {run.id} of {SMOKE_DEPLOYMENT}/{env} did not finish in {timeout:.0f} s")
            await asyncio.sleep(2)


def smoke(env: str, parameters: dict[str, Any], timeout: float = 1800) -> None:
    """Run the ingest deployment on the shipped sample and wait: a promotion gate."""
    final = asyncio.run(_smoke(env, parameters, timeout))
    if final != "COMPLETED":
        raise UserError(f"smoke run of {SMOKE_DEPLOYMENT}/{env} ended {final}")


def local_target(repo_root: Path) -> Target:
    return Target("local", "mlwf-local", "process", str(repo_root))


def aws_target(env: str, work_pool: str, image: str, runtime: Any) -> Target:
    """The ECS work pool's job variables for flow runs: the pinned image and the compute
    stack's IDs (private subnets, the flow-run security group, the task roles, the log group)."""
    return Target(
        env,
        work_pool,
        "ecs",
        IMAGE_WORKDIR,
        {
            "image": image,
            "cluster": runtime.cluster_arn,
            "vpc_id": runtime.vpc_id,
            "network_configuration": {
                "subnets": list(runtime.private_subnets),
                "securityGroups": [runtime.flow_security_group],
                "assignPublicIp": "DISABLED",
            },
            "execution_role_arn": runtime.execution_role_arn,
            "task_role_arn": runtime.flow_task_role_arn,
            "configure_cloudwatch_logs": True,
            "cloudwatch_logs_options": {"awslogs-group": runtime.log_group, "awslogs-stream-prefix": "flow-run"},
        },
    )
