"""Every workload's flows as Prefect deployments on an environment's work pool, created or
updated idempotently with the environment's alerts (`mlwf flows deploy --env ENV`; the alerts
are `mlwf.alerts`), and the smoke runs that gate a promotion (`mlwf flows smoke --env ENV`). The
workloads are discovered from ``workflows/*/workload.py`` (`mlwf.workloads`); their flows are
loaded by path and deployed with file entrypoints, run from the working directory (the image's,
or this checkout).

AWS environments deploy to their ECS work pool with the job variables the prefect-agent stack
publishes (`mlwf.stacks.flow_runs`: the pre-registered flow-run task definition, the cluster, the
private network, the Prefect API key's secret), checked against the pool's base job template
first (the Prefect server silently accepts unknown keys); ``local`` deploys to a process pool
that runs from this checkout (what the tests use against a real local server and worker).
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

from mlwf import alerts
from mlwf.contract import SMOKE_ROOT
from mlwf.errors import UserError
from mlwf.settings import AlertSettings
from mlwf.workloads import Deployment, Workload, discover


@dataclass(frozen=True)
class Target:
    """Where deployments go: an environment's work pool, its type, image and job variables."""

    env: str
    work_pool: str
    pool_type: str
    working_dir: str  # relative: against where the run starts (an ECS task starts in the image's WORKDIR)
    job_variables: dict[str, Any] = field(default_factory=dict)
    alerts: AlertSettings = field(default_factory=AlertSettings)  # deployed with the flows (`mlwf.alerts`)


@dataclass(frozen=True)
class Deployed:
    deployments: dict[str, str]  # "<flow>/<env>" -> deployment ID
    alerts: list[str]  # one line per automation created, updated or removed


def default_base_job_template(pool_type: str) -> dict[str, Any]:
    """The base job template a new pool of this type gets (prefect-aws's for ``ecs``)."""
    if pool_type == "ecs":
        from prefect_aws.workers.ecs_worker import ECSWorker

        return dict(ECSWorker.get_default_base_job_template())
    from prefect.workers.process import ProcessWorker

    return dict(ProcessWorker.get_default_base_job_template())


def validate_job_variables(variables: dict[str, Any], base_job_template: dict[str, Any], pool: str) -> None:
    """One line naming the first job variable the pool's template does not declare or whose
    value its schema refuses."""
    import jsonschema

    schema = base_job_template.get("variables", {})
    declared = schema.get("properties", {})
    unknown = sorted(set(variables) - set(declared))
    if unknown:
        raise UserError(f"work pool {pool}: unknown job variable(s) {', '.join(unknown)} (the pool declares none such)")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(variables), key=lambda e: list(e.path))
    if errors:
        where = ".".join(str(p) for p in errors[0].path) or "(job variables)"
        raise UserError(f"work pool {pool}: job variable {where}: {errors[0].message}")


async def _ensure_pool(client: Any, target: Target) -> None:
    """Create the pool if it is missing; check the job variables against its template first."""
    try:
        pool = await client.read_work_pool(target.work_pool)
    except ObjectNotFound:
        validate_job_variables(target.job_variables, default_base_job_template(target.pool_type), target.work_pool)
        await client.create_work_pool(WorkPoolCreate(name=target.work_pool, type=target.pool_type))
        return
    if pool.type != target.pool_type:
        raise UserError(f"work pool {target.work_pool} is of type {pool.type}, expected {target.pool_type}")
    validate_job_variables(target.job_variables, pool.base_job_template, target.work_pool)


def _flows(repo_root: Path) -> list[tuple[Workload, Deployment, Flow[Any, Any]]]:
    """Every declared deployment with its flow, loaded by path from its workload's folder."""
    found = []
    for workload in discover(repo_root):
        for deployment in workload.deployments:
            flow = workload.load(deployment.flow)
            if not isinstance(flow, Flow):
                raise UserError(f"{workload.folder / deployment.flow.split(':')[0]}: {deployment.flow} is not a flow")
            found.append((workload, deployment, flow))
    return found


async def _deploy(target: Target, repo_root: Path) -> Deployed:
    flows = _flows(repo_root)  # every flow loads before anything is written
    ids = {}
    async with get_client() as client:
        destinations = await alerts.resolve_destinations(client, target.alerts)  # before anything is written
        await _ensure_pool(client, target)
        for workload, spec, flow in flows:
            flow_id = await client.create_flow(flow)
            schedules = (
                [DeploymentScheduleCreate(schedule=CronSchedule(cron=spec.cron, timezone="UTC"), active=True)]
                if spec.cron and target.env != "local"
                else []
            )
            deployment_id = await client.create_deployment(
                flow_id=flow_id,
                name=target.env,
                work_pool_name=target.work_pool,
                entrypoint=workload.entrypoint(spec.flow, repo_root),
                path=target.working_dir,
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": target.working_dir}}],
                parameters={**spec.parameters, "env": target.env},
                parameter_openapi_schema=parameter_schema(flow.fn).model_dump_for_openapi(),
                job_variables=target.job_variables,
                schedules=schedules,
                tags=["ml-workflows", target.env, f"workload:{workload.name}"],
            )
            ids[f"{flow.name}/{target.env}"] = str(deployment_id)
        changes = await alerts.apply(client, target.env, target.alerts, destinations)
    return Deployed(ids, changes)


def deploy_flows(target: Target, repo_root: Path) -> Deployed:
    """Create or update every deployment (same name, same ID on every run) and the
    environment's alerts (one automation per alert, whatever ran before)."""
    return asyncio.run(_deploy(target, repo_root))


async def _run_and_wait(name: str, parameters: dict[str, Any], timeout: float) -> str:
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(name)
        run = await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        deadline = time.monotonic() + timeout
        while True:
            state = (await client.read_flow_run(run.id)).state
            if state is not None and state.is_final():
                return str(state.type.value)
            if time.monotonic() > deadline:
                raise UserError(f"smoke run {run.id} of {name} did not finish in {timeout:.0f} s")
            await asyncio.sleep(2)


def smoke_root(data_root: str) -> str:
    """Where smoke runs write: apart from the data, under the prefix the stacks grant for it."""
    return f"{data_root.rstrip('/')}/{SMOKE_ROOT}"


def smoke(env: str, data_root: str, repo_root: Path, timeout: float = 1800) -> list[str]:
    """Run every workload's smoke deployment and wait for each: a promotion gate. Returns the
    deployments run; one line naming the first that did not complete."""
    done = []
    for workload in discover(repo_root):
        if workload.smoke is None:
            continue
        flow = workload.load(workload.smoke.flow)
        name = f"{flow.name}/{env}"
        parameters = {**workload.smoke.parameters, "env": env, "data_root": data_root}
        final = asyncio.run(_run_and_wait(name, parameters, timeout))
        if final != "COMPLETED":
            raise UserError(f"smoke run of {name} ended {final}")
        done.append(name)
    return done


def local_target(repo_root: Path, alerting: AlertSettings | None = None) -> Target:
    return Target("local", "mlwf-local", "process", str(repo_root), alerts=alerting or AlertSettings())


def read_job_variables(settings: Any) -> dict[str, Any]:
    """The ECS work pool's job variables the prefect-agent stack published (SSM)."""
    import json

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from mlwf.contract import work_pool_parameter_name

    name = work_pool_parameter_name(settings.name_prefix)
    try:
        value = boto3.client("ssm", region_name=settings.region).get_parameter(Name=name)["Parameter"]["Value"]
        variables = json.loads(value)
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"cannot read the work pool's job variables {name}: {exc}") from None
    except ValueError as exc:
        raise UserError(f"the work pool's job variables {name} are not JSON: {exc}") from None
    if not isinstance(variables, dict):
        raise UserError(f"the work pool's job variables {name} are not a JSON object")
    return variables


def aws_target(
    env: str, work_pool: str, job_variables: dict[str, Any], alerting: AlertSettings | None = None
) -> Target:
    """An environment's ECS work pool. Flow-run tasks start in the image's working directory
    and stay there ("." is resolved against where the run starts): without a pull step
    Prefect would copy that whole directory into a temporary workspace first."""
    return Target(env, work_pool, "ecs", ".", job_variables, alerting or AlertSettings())
