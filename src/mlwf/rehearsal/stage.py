"""The stage a rehearsal runs on: the emulated AWS seeded from the environment's plan, ECS tasks
as local processes, a real Prefect server, the flows deployed to the ECS work pool by
`mlwf flows deploy`, and the Prefect worker running as the prefect-agent stack's service would.

`stage(...)` is what `mlwf rehearse` and the rehearsal tests both start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlwf.errors import UserError
from mlwf.image import DOCKERFILE, REQUIREMENTS
from mlwf.infra.plan import plan_delivery, plan_environment
from mlwf.planned import StackPlan
from mlwf.rehearsal import fargate
from mlwf.rehearsal.cloud import Credentials, EmulatedAWS, emulated_aws, require_moto
from mlwf.rehearsal.judge import documents_of, start_refusal
from mlwf.rehearsal.network import ConnectionWatch
from mlwf.rehearsal.seed import Seeder, World, user_for_role
from mlwf.rehearsal.tasks import TaskRunner
from mlwf.settings import Settings, load_environment
from mlwf.stacks.programs import IMAGE_STACKS, ORDER

API_KEY = "rehearsal-prefect-api-key-7f3c9a"  # stands in for the Prefect API key; must never leak
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrefectServer:
    """``prefect server start`` on 127.0.0.1, its SQLite database in ``home`` (the UI too, with
    ``ui``: at ``ui_url``)."""

    url: str
    process: subprocess.Popen[bytes]

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")

    @classmethod
    def start(cls, home: Path, timeout: float = 120.0, ui: bool = False) -> PrefectServer:
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "true" if ui else "false",
            "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",  # what the UI in a browser calls
        }
        with (home / "server.log").open("wb") as output:
            process = subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                return cls(url, process)
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise UserError(f"the Prefect server did not start (see {home / 'server.log'})") from None
                time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Stage:
    settings: Settings
    repo: Path
    work: Path
    plans: list[StackPlan]
    aws: EmulatedAWS
    world: World
    seeder: Seeder  # what seeded the world (and applies a deploy by another image to it)
    runner: TaskRunner
    prefect: PrefectServer
    connections: ConnectionWatch  # every TCP connection between tasks (security groups)

    def identity(self, role: str) -> Credentials:
        """The credentials of a role of this environment (``flow-run-task``, ``reaper-task``)."""
        return self.world.identity(f"{self.settings.name_prefix}-{role}")

    def identity_without(self, role: str, *actions: str) -> Credentials:
        """A new user holding ``role``'s policies less ``actions``: a role missing a permission."""
        name = f"{self.settings.name_prefix}-{role}"
        user = f"{name}-without-{len(self.world.identities)}"
        return user_for_role(self.aws, user, name, list(actions), self.world)

    def env_as(self, credentials: Credentials) -> dict[str, str]:
        """This process's environment, reaching the emulated AWS and the Prefect server."""
        return {
            **os.environ,
            **self.aws.client_env(credentials),
            "PREFECT_API_URL": self.prefect.url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def mlwf(
        self, *args: str, credentials: Credentials | None = None, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI as a user of this stage would (the admin by default: a deploy role)."""
        assert self.aws.admin is not None
        return subprocess.run(
            [str(BIN / "mlwf"), *args],
            cwd=self.repo,
            env=self.env_as(credentials or self.aws.admin),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def deploy_image(self, digest: str) -> list[str]:
        """What `mlwf deploy --env ENV --image-digest DIGEST` does to the image stacks, on the
        emulated AWS: planned again by that digest, and the difference applied as `pulumi up`
        would (the rehearsal seeds rather than run Pulumi: `Seeder.redeploy`). Returns what changed."""
        after = plan_environment(self.settings, list(IMAGE_STACKS), self.repo, image_digest=digest)
        changed = self.seeder.redeploy([p for p in self.plans if p.stack in IMAGE_STACKS], after)
        replanned = {p.stack: p for p in after}
        self.plans = [replanned.get(p.stack, p) for p in self.plans]
        return changed

    def start_services(self) -> list[str]:
        """Run each ECS service's task as ECS's service scheduler would (tags propagated from
        the service), pointed at the local Prefect server instead of the settings' API URL."""
        ecs = self.aws.client("ecs")
        started: list[str] = []
        for service in self.world.services:
            definition = ecs.describe_task_definition(taskDefinition=service.task_definition)["taskDefinition"]
            container = definition["containerDefinitions"][0]["name"]
            response = ecs.run_task(
                cluster=service.cluster,
                taskDefinition=service.task_definition,
                launchType="FARGATE",
                startedBy=f"ecs-svc/{service.name}"[:36],
                networkConfiguration={"awsvpcConfiguration": service.network},
                overrides={
                    "containerOverrides": [
                        {
                            "name": container,
                            "environment": [
                                {"name": "PREFECT_API_URL", "value": self.prefect.url},
                                {"name": "PREFECT_WORKER_QUERY_SECONDS", "value": "2"},
                            ],
                        }
                    ]
                },
                tags=[{"key": k, "value": v} for k, v in {**self.settings.tags, **service.tags}.items()],
            )
            started.extend(t["taskArn"] for t in response["tasks"])
        return started

    def wait_for_tasks(self, but: list[str], timeout: float = 120.0) -> None:
        """Wait until every task's process has exited, ``but`` these (the services')."""
        deadline = time.monotonic() + timeout
        while any(t.arn not in but for t in self.runner.running()) and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop_tasks(self, arns: list[str], timeout: float = 90.0) -> None:
        ecs = self.aws.client("ecs")
        for arn in arns:
            ecs.stop_task(cluster=self.runner.tasks[arn].cluster_arn, task=arn, reason="rehearsal: service stopped")
        deadline = time.monotonic() + timeout
        while any(self.runner.tasks[a].process.poll() is None for a in arns) and time.monotonic() < deadline:
            time.sleep(0.2)


@contextmanager
def stage(
    env: str,
    repo: Path,
    work: Path,
    *,
    withhold: dict[str, list[str]] | None = None,
    tweak: Callable[[Settings], Settings] | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Iterator[Stage]:
    """Everything up to a running Prefect worker; all of it stopped when the block exits.
    ``withhold`` takes actions away from roles' users; ``tweak`` changes the settings the
    stacks are planned with (both for the tests' scenarios)."""
    settings = load_environment(env, repo / "environments")
    require_moto()
    if tweak is not None:
        settings = tweak(settings)
    started = time.monotonic()
    plans = plan_environment(settings, list(ORDER), repo)
    (bootstrap,) = plan_delivery(["bootstrap"], [settings], repo)  # the account's, applied before
    say(
        f"planned {len(plans)} stacks of {env} ({sum(len(p.resources) for p in plans)} resources) "
        f"and its account's bootstrap stack ({len(bootstrap.resources)})"
    )
    (work / "tasks").mkdir(parents=True, exist_ok=True)
    prefect = PrefectServer.start(work / "prefect")
    say(f"Prefect server at {prefect.url}")
    try:
        with emulated_aws(settings.account_id, settings.region) as aws:
            seeder = Seeder(aws, withhold)
            world = seeder.seed([bootstrap, *plans])
            for line in world.not_seeded():
                say(line)
            sandbox = fargate.prepare(repo, work, repo / DOCKERFILE, repo / REQUIREMENTS)
            docs = documents_of(aws, world)
            runner = TaskRunner(aws, world.identities, work / "tasks", sandbox)
            runner.admit = lambda arn: start_refusal(docs.task_definitions(arn), docs)
            runner.install()
            aws.enforce_iam()
            say(
                f"emulated AWS at {aws.endpoint}: {world.seeded} planned resources seeded, "
                f"{len(world.task_definitions)} task definitions, {len(world.identities)} roles as IAM users, "
                "IAM enforced"
            )
            connections = ConnectionWatch(runner.addresses, runner.task_of)
            connections.start()
            current = Stage(settings, repo, work, plans, aws, world, seeder, runner, prefect, connections)
            try:
                put = current.mlwf("secrets", "set", "--env", settings.name, stdin=API_KEY)  # as an administrator
                if put.returncode != 0:
                    raise UserError(f"mlwf secrets set failed: {(put.stderr.strip().splitlines() or ['?'])[-1]}")
                say(put.stdout.strip())
                yield current
            finally:
                connections.stop()
                runner.shutdown()
        say(f"stage torn down after {time.monotonic() - started:.0f} s")
    finally:
        prefect.stop()
