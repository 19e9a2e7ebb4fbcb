"""`mlwf rehearse`: what a merge does, on the emulated AWS. Deploy every workload's flows to the
environment's ECS work pool (`mlwf flows deploy`), start the Prefect worker as its service
would, make the smoke runs (`mlwf flows smoke`), then each workload's rehearsal runs (producers
before consumers: the storm pipeline on the shipped sample, then the search on its curated data)
with their data on the emulated S3; stop the worker and check what must hold afterwards
(`checks`)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwf.errors import UserError
from mlwf.rehearsal.checks import Check, check, unused_grants
from mlwf.rehearsal.cloud import Credentials
from mlwf.rehearsal.stage import Stage, stage

RUN_TIMEOUT_S = 900.0
# What a green rehearsal does not show (docs/rehearsal.md, "What it cannot show"): said with every result.
NOT_EMULATED = (
    "routes, NAT, VPC endpoints and the egress toward them (seeded, but tasks reach the emulated AWS and the "
    "Prefect API on loopback; connections between tasks are judged by their groups, from samples every second); "
    "IAM at request time (every request is judged as AWS judges it after the run, a task's start when it "
    "starts: a refused request ran as though allowed before the check failed); "
    "Fargate's capacity, start-up time and limits; the image as docker builds it (read from its Dockerfile)"
)


@dataclass(frozen=True)
class Run:
    name: str  # deployment, <flow>/<env>
    state: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  run {self.name}: {self.state}" + (
            f" ({self.message})" if self.message and not self.ok else ""
        )


@dataclass
class Rehearsal:
    env: str
    work: Path
    runs: list[Run] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    unused: dict[str, list[str]] = field(default_factory=dict)  # role -> granted actions no request used
    seconds: float = 0.0

    def notes(self) -> list[str]:
        """Information after the checks: per role, the grants no request of the run used."""
        return [f"granted, unused by this run: {role}: {', '.join(actions)}" for role, actions in self.unused.items()]

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "runs": [{"name": r.name, "state": r.state, "message": r.message} for r in self.runs],
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "unused_grants": self.unused,
        }

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs) and bool(self.checks) and all(c.ok for c in self.checks)


def deploy_role(current: Stage) -> Credentials:
    """The environment's GitHub deploy role (the bootstrap stack's), as the deploy job holds it."""
    from mlwf.delivery import deploy_role_name

    return current.world.identity(deploy_role_name(current.settings))


def deploy(current: Stage) -> None:
    """`mlwf flows deploy --env ENV`, as the deploy job runs it (with the deploy role's rights)."""
    result = current.mlwf("flows", "deploy", "--env", current.settings.name, credentials=deploy_role(current))
    if result.returncode != 0:
        raise UserError(f"mlwf flows deploy failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")


def smoke(current: Stage) -> Run:
    """`mlwf flows smoke --env ENV`, as the deploy job runs it before the next environment."""
    result = current.mlwf("flows", "smoke", "--env", current.settings.name, credentials=deploy_role(current))
    last = (result.stdout.strip().splitlines() or result.stderr.strip().splitlines() or ["?"])[-1]
    return Run("mlwf flows smoke", "COMPLETED" if result.returncode == 0 else "FAILED", last)


def rehearsal_runs(current: Stage) -> list[tuple[str, dict[str, Any]]]:
    """(deployment flow name, parameters) of every workload's rehearsal runs, producers first."""
    from mlwf.workloads import discover, in_order

    runs = []
    for workload in in_order(discover(current.repo)):
        for deployment in workload.rehearsal:
            flow = workload.load(deployment.flow)
            runs.append((str(flow.name), {**deployment.parameters, "env": current.settings.name}))
    return runs


def run_deployment(
    current: Stage, name: str, parameters: dict[str, Any], say: Callable[[str], None], timeout: float = RUN_TIMEOUT_S
) -> Run:
    """Start a run of ``name/<env>`` and wait for its final state."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def run() -> tuple[str, str]:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(f"{name}/{current.settings.name}")
            flow_run = await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
            say(f"flow run {flow_run.name} ({flow_run.id}) of {name}/{current.settings.name}")
            deadline, seen = time.monotonic() + timeout, ""
            while True:
                state = (await client.read_flow_run(flow_run.id)).state
                running = len(current.runner.running())
                label = f"{state.type.value if state else 'NONE'} ({running} tasks running)"
                if label != seen:
                    say(f"  {label}")
                    seen = label
                if state is not None and state.is_final():
                    return str(state.type.value), str(state.message or "")
                if time.monotonic() > deadline:
                    return "TIMED OUT", f"not final after {timeout:.0f} s"
                await asyncio.sleep(1)

    with temporary_settings({PREFECT_API_URL: current.prefect.url}):
        state, message = asyncio.run(run())
    return Run(f"{name}/{current.settings.name}", state, message)


def perform(current: Stage, say: Callable[[str], None]) -> tuple[list[Run], list[Check]]:
    """What a merge does, on a stage: deploy, start the worker, smoke, each workload's runs;
    then stop the worker and check."""
    deploy(current)
    say(f"deployed the flows to the {current.settings.prefect.work_pool} work pool")
    services = current.start_services()
    say(f"started the Prefect worker ({len(services)} service task)")
    runs = [smoke(current)]
    say(runs[-1].line())
    for name, parameters in rehearsal_runs(current):
        runs.append(run_deployment(current, name, parameters, say))
        current.wait_for_tasks(but=services)
        if not runs[-1].ok:
            break  # later runs may need its output
    current.stop_tasks(services)
    return runs, check(current)


def rehearse(env: str, repo: Path, keep: bool = False, say: Callable[[str], None] = print) -> Rehearsal:
    """The whole rehearsal on a stage of its own; its working folder (every task's output, the
    Prefect database) is removed afterwards unless ``keep``."""
    from mlwf.settings import load_environment

    started = time.monotonic()
    load_environment(env, repo / "environments")  # a bad name is one line, before anything is made
    work = Path(tempfile.mkdtemp(prefix=f"mlwf-rehearsal-{env}-"))
    result = Rehearsal(env, work)
    try:
        with stage(env, repo, work, say=say) as current:
            result.runs, result.checks = perform(current, say)
            result.unused = unused_grants(current)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result
