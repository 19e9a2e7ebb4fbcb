"""`mlwf status --env E`: what runs where, read from the environment itself (never from this
checkout): the image each task definition runs, each flow's deployment and its last runs, each
workload's current model (its ``status`` hook), and what is alarming. A part that cannot be
read is one line under "unreadable"; the rest is still shown.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlwf.contract import work_pool_parameter_name
from mlwf.errors import UserError
from mlwf.settings import Settings
from mlwf.workloads import discover

LAST_RUNS = 3


@dataclass(frozen=True)
class DeploymentStatus:
    name: str  # <flow>/<deployment>
    updated: str
    image: str  # of the task definition its job variables name ("" for a process pool)
    last_runs: list[str]  # "<state> <start time>", newest first


@dataclass
class Status:
    env: str
    images: dict[str, str] = field(default_factory=dict)  # what runs it -> image reference
    deployments: list[DeploymentStatus] = field(default_factory=list)
    models: dict[str, list[str]] = field(default_factory=dict)  # workload -> its status lines
    alerts: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def digests(self) -> set[str]:
        """What identifies each image: its digest when pinned by one (as CI deploys), else the
        reference itself (a tag)."""
        return {image.rpartition("@")[2] if "@" in image else image for image in self.images.values()}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"== {self.env}"]
        digests = self.digests
        out.append(
            "image        "
            + (next(iter(digests)) if len(digests) == 1 else f"{len(digests)} different images: {sorted(digests)}")
        )
        out += [f"   {what:<28} {image}" for what, image in sorted(self.images.items())]
        out.append("deployments" + ("" if self.deployments else "  none"))
        for d in self.deployments:
            runs = "; ".join(d.last_runs) or "no runs yet"
            out.append(f"   {d.name:<36} updated {d.updated}   last runs: {runs}")
        for workload, lines in sorted(self.models.items()):
            out += [f"model        {workload}: {lines[0]}", *(f"   {line}" for line in lines[1:])]
        out += [f"alert        {a}" for a in self.alerts] or ["alerts       none open"]
        out += [f"unreadable   {u}" for u in self.unreadable]
        return out


def _client_error() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, UserError)


def images(settings: Settings, ecs: Any, ssm: Any, runtime: Any) -> dict[str, str]:
    """The image each of the environment's task definitions runs (flow runs, Dask)."""
    variables = json.loads(ssm.get_parameter(Name=work_pool_parameter_name(settings.name_prefix))["Parameter"]["Value"])
    definitions = {
        "flow runs": variables["task_definition_arn"],
        "Dask scheduler": runtime.scheduler_task_definition_arn,
        "Dask workers": runtime.worker_task_definition_arn,
    }
    return {what: _image(ecs, arn) for what, arn in definitions.items()}


def _image(ecs: Any, task_definition: str) -> str:
    definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    return str(definition["containerDefinitions"][0]["image"])


def alerts(settings: Settings, cloudwatch: Any, budgets: Any) -> list[str]:
    """Alarms of the environment in ALARM, and its budget's spend so far."""
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"{settings.name_prefix}-", StateValue="ALARM")
    found = [  # filtered here too: an emulator may apply only the name prefix
        f"alarm {a['AlarmName']} since {a['StateUpdatedTimestamp']:%Y-%m-%d %H:%M}Z: {a.get('AlarmDescription', '')}"
        for a in alarms["MetricAlarms"]
        if a["StateValue"] == "ALARM"
    ]
    if settings.cost.monthly_budget_usd is not None:
        name = f"{settings.name_prefix}-monthly"
        budget = budgets.describe_budget(AccountId=settings.account_id, BudgetName=name)["Budget"]
        spent = float(budget.get("CalculatedSpend", {}).get("ActualSpend", {}).get("Amount", 0))
        limit = float(budget["BudgetLimit"]["Amount"])
        if spent >= limit * 0.8:
            found.append(f"budget {name}: ${spent:,.2f} spent of ${limit:,.2f} this month")
    return found


async def deployments(env: str, ecs: Any | None) -> list[DeploymentStatus]:
    """The environment's deployments (named after it) and each one's last runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    begun = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=[StateType.SCHEDULED])))

    found = []
    async with get_client() as client:
        for deployment in await client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[env]))
        ):
            flow = await client.read_flow(deployment.flow_id)
            runs = await client.read_flow_runs(  # what ran or runs, not the schedule's future runs
                flow_run_filter=begun,
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=LAST_RUNS,
            )
            definition = (deployment.job_variables or {}).get("task_definition_arn")
            found.append(
                DeploymentStatus(
                    f"{flow.name}/{deployment.name}",
                    f"{deployment.updated:%Y-%m-%d %H:%M}Z" if deployment.updated else "",
                    _image(ecs, definition) if definition and ecs is not None else "",
                    [
                        f"{r.state.name if r.state else 'unknown'} "
                        + (f"{r.start_time:%Y-%m-%d %H:%M}Z" if r.start_time else "(not started)")
                        for r in runs
                    ],
                )
            )
    return sorted(found, key=lambda d: d.name)


def models(repo_root: Path, data_root: str) -> dict[str, list[str]]:
    """Each workload's own account of its current model (its ``status`` hook)."""
    return {w.name: list(w.load(w.status)(data_root)) for w in discover(repo_root) if w.status}


def collect(settings: Settings, repo_root: Path) -> Status:
    """Everything `mlwf status` shows, each part read on its own."""
    import boto3

    from mlwf.runtime import read_cluster_runtime

    status = Status(settings.name)
    ecs, ssm = boto3.client("ecs", region_name=settings.region), boto3.client("ssm", region_name=settings.region)
    errors = _client_error()
    runtime = None
    try:
        runtime = read_cluster_runtime(settings)
        status.images = images(settings, ecs, ssm, runtime)
    except errors as exc:
        status.unreadable.append(f"images: {exc}")
    try:
        status.deployments = asyncio.run(deployments(settings.name, ecs))
    except Exception as exc:  # the Prefect API: unreachable, refused, misconfigured
        status.unreadable.append(f"deployments: {type(exc).__name__}: {exc}")
    if runtime is not None:
        try:
            status.models = models(repo_root, runtime.data_root)
        except errors as exc:
            status.unreadable.append(f"models: {exc}")
        except OSError as exc:  # fsspec: a refused or missing object
            status.unreadable.append(f"models: {type(exc).__name__}: {exc}")
    try:
        cloudwatch = boto3.client("cloudwatch", region_name=settings.region)
        status.alerts = alerts(settings, cloudwatch, boto3.client("budgets", region_name="us-east-1"))
    except errors as exc:
        status.unreadable.append(f"alerts: {exc}")
    return status
