"""`mlwf rehearse`: what a merge does, on the emulated AWS. Deploy the flows to the
environment's ECS work pool, start the Prefect worker as its service would, run the pipeline
deployment on the shipped sample with its data on the emulated S3, wait, stop the worker, and
check what must hold afterwards (`checks`)."""

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
from mlwf.rehearsal.checks import Check, check
from mlwf.rehearsal.stage import Stage, stage

PIPELINE = "storm-damage-pipeline"
RUN_TIMEOUT_S = 900.0


@dataclass
class Rehearsal:
    env: str
    work: Path
    flow_run_state: str = ""
    flow_run_message: str = ""
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.flow_run_state == "COMPLETED" and bool(self.checks) and all(c.ok for c in self.checks)


def deploy(current: Stage) -> None:
    """`mlwf flows deploy --env ENV`, as the deploy job runs it (with a deploy role's rights)."""
    result = current.mlwf("flows", "deploy", "--env", current.settings.name)
    if result.returncode != 0:
        raise UserError(f"mlwf flows deploy failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")


def run_deployment(
    current: Stage, name: str, parameters: dict[str, Any], say: Callable[[str], None], timeout: float = RUN_TIMEOUT_S
) -> tuple[str, str]:
    """Start a run of ``name/<env>`` and wait for its final state: (state type, message)."""
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
        return asyncio.run(run())


def pipeline_parameters(current: Stage) -> dict[str, Any]:
    from workflows.deployments import SAMPLE_SOURCE

    return {"source": SAMPLE_SOURCE, "env": current.settings.name}


def rehearse(env: str, repo: Path, keep: bool = False, say: Callable[[str], None] = print) -> Rehearsal:
    """The whole rehearsal; its working folder (every task's output, the Prefect database) is
    removed afterwards unless ``keep``."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"mlwf-rehearsal-{env}-"))
    result = Rehearsal(env, work)
    try:
        with stage(env, repo, work, say=say) as current:
            deploy(current)
            say(f"deployed the flows to the {current.settings.prefect.work_pool} work pool")
            services = current.start_services()
            say(f"started the Prefect worker ({len(services)} service task)")
            result.flow_run_state, result.flow_run_message = run_deployment(
                current, PIPELINE, pipeline_parameters(current), say
            )
            current.wait_for_tasks(but=services)
            current.stop_tasks(services)
            result.checks = check(current)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result
