"""ECS tasks as local processes, inside moto's process (moto draws each task's address at
random from 10.0.0.0/8 and no API call changes it, so the runner rewrites it in place).

When a task starts, its essential container's command runs here with what ECS would give it:
the task definition's environment under the RunTask overrides, its ``secrets`` resolved from
Secrets Manager (as the ECS agent does with the execution role), the task role's credentials
(its IAM user's keys, `seed`), and, as Fargate runs it (`mlwf.rehearsal.fargate`), inside the
image: its Python environment built from the image's requirements, its user, its ``ENV`` and
``WORKDIR``, a read-only root and the task definition's volumes owned as Fargate makes them.
StopTask's SIGTERM goes to the container's main process, as ``docker stop`` sends it. Each
task gets its own loopback address 127.0.0.N (N >= 2), written where DescribeTasks and
DescribeNetworkInterfaces read it; Dask commands are told to listen on it (``--host``: a
scheduler listens on 0.0.0.0 otherwise). SIGKILL follows 30 s later (ECS's stop timeout).
When the main process exits, the task's other processes are killed (a container ends with it),
the task is STOPPED with the container's exit code, its output goes to CloudWatch Logs as
awslogs would ship it, and an "ECS Task State Change" event goes to EventBridge (moto's ECS emits none).

Only loopback is ever handed out: every address is checked to be in 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlwf.rehearsal.cloud import Credentials, EmulatedAWS
from mlwf.rehearsal.fargate import Sandbox

log = logging.getLogger(__name__)

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
TASK_MARKER = "MLWF_REHEARSAL_TASK"  # in every process of a task: its container's boundary
STOP_TIMEOUT_S = 30.0
DASK_COMMANDS = {"dask-scheduler": "8787", "dask-worker": "0"}  # command -> dashboard port


@dataclass
class TaskProcess:
    arn: str
    cluster_arn: str
    definition_arn: str
    container: str
    address: str
    command: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path
    log_options: dict[str, str]
    security_groups: tuple[str, ...] = ()  # RunTask's awsvpcConfiguration
    stopping: bool = False
    exit_code: int | None = None

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def family(self) -> str:
        """The task definition's family (``<prefix>-dev-flow-run``)."""
        return self.definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


class SecretUnavailableError(RuntimeError):
    """A task definition's secret has no current value (or does not exist)."""


def resolve_secrets(aws: EmulatedAWS, container: dict[str, Any]) -> dict[str, str]:
    """The container's ``secrets`` as the ECS agent reads them at start (`SecretUnavailableError`
    when one has no value: ECS stops the task before it runs)."""
    from moto.secretsmanager.exceptions import ResourceNotFoundException, SecretNotFoundException

    secrets = aws.backend("secretsmanager")
    values = {}
    for secret in container.get("secrets") or []:
        try:
            values[secret["name"]] = secrets.get_secret_value(secret["valueFrom"], None, None)["SecretString"]
        except (ResourceNotFoundException, SecretNotFoundException) as exc:
            raise SecretUnavailableError(f"{secret['valueFrom']}: {exc.message}") from None
    return values


@dataclass(frozen=True)
class RunTaskRequest:
    """What a caller asked ECS for (kept to check that no secret travels in a request)."""

    task_arn: str
    definition_arn: str
    overrides: dict[str, Any]
    tags: list[dict[str, str]]
    container: str = ""
    capacity_provider: str = ""  # "" when the request named a launch type (FARGATE)


@dataclass
class TaskRunner:
    aws: EmulatedAWS
    identities: dict[str, Credentials]  # role ARN -> the IAM user that plays it
    logs: Path
    sandbox: Sandbox  # tasks run inside the image, as Fargate runs them
    tasks: dict[str, TaskProcess] = field(default_factory=dict)
    requests: list[RunTaskRequest] = field(default_factory=list)
    # Why ECS would stop a task of this definition before it starts (its execution role's rights,
    # judged as AWS judges them: mlwf.rehearsal.judge.start_refusal); None when it starts.
    admit: Callable[[str], str | None] | None = None
    _next_host: int = 2
    _pids: dict[int, tuple[float, str | None]] = field(default_factory=dict)  # pid -> (start, task ID)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _restore: Callable[[], None] | None = None

    # -- installation -------------------------------------------------------------------------

    def install(self) -> None:
        """Hook RunTask and StopTask of moto's ECS (class-level: survives moto's resets)."""
        from moto.ecs.models import EC2ContainerServiceBackend

        run_task, stop_task = EC2ContainerServiceBackend.run_task, EC2ContainerServiceBackend.stop_task
        runner = self

        def hooked_run_task(backend: Any, *args: Any, **kwargs: Any) -> Any:
            started = run_task(backend, *args, **kwargs)
            for task in started:
                runner._start(backend, task)
            return started

        def hooked_stop_task(backend: Any, cluster: str, task: str, reason: str) -> Any:
            stopped = stop_task(backend, cluster, task, reason or "Task stopped by user")
            runner._stop(stopped)
            return stopped

        EC2ContainerServiceBackend.run_task = hooked_run_task  # type: ignore[method-assign,assignment]
        EC2ContainerServiceBackend.stop_task = hooked_stop_task  # type: ignore[method-assign,assignment]

        def restore() -> None:
            EC2ContainerServiceBackend.run_task = run_task  # type: ignore[method-assign]
            EC2ContainerServiceBackend.stop_task = stop_task  # type: ignore[method-assign]

        self._restore = restore

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop every process still running (as StopTask would), then unhook."""
        for task in list(self.tasks.values()):
            if task.process.poll() is None:
                self._terminate(task)
        deadline = time.monotonic() + timeout
        for task in list(self.tasks.values()):
            try:
                task.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal_all(task, signal.SIGKILL)
        if self._restore is not None:
            self._restore()
            self._restore = None

    # -- starting -----------------------------------------------------------------------------

    def _address(self) -> str:
        with self._lock:
            number = self._next_host
            self._next_host += 1
        address = ipaddress.ip_address(int(ipaddress.ip_address("127.0.0.0")) + number)
        if address not in LOOPBACK or number < 2:
            raise RuntimeError(f"refusing to hand out {address}: only 127.0.0.0/8 (from .2) may be used")
        return str(address)

    def _start(self, backend: Any, task: Any) -> None:
        definition = backend.describe_task_definition(task.task_definition_arn)
        container = definition.container_definitions[0]
        override: dict[str, Any] = next(
            (o for o in task.overrides.get("containerOverrides", []) if o.get("name") == container["name"]),
            {},
        )
        self.requests.append(
            RunTaskRequest(
                task.task_arn,
                task.task_definition_arn,
                copy.deepcopy(task.overrides),
                list(task.tags),
                container["name"],
                getattr(task, "capacity_provider_name", None) or "",
            )
        )
        address = self._address()
        self._place(backend, task, address)
        role = task.overrides.get("taskRoleArn") or definition.task_role_arn
        command = list(override.get("command") or container.get("command") or [])
        if command and command[0] in DASK_COMMANDS:
            command += ["--host", address, "--dashboard-address", f"{address}:{DASK_COMMANDS[command[0]]}"]
        refusal = self.admit(task.task_definition_arn) if self.admit is not None else None
        if refusal:  # what the ECS agent reports: the task never starts
            self._failed_to_start(task, refusal)
            return
        try:
            env = self._environment(container, override, self.identities.get(role or ""))
        except SecretUnavailableError as exc:  # what the ECS agent reports: the task never starts
            self._failed_to_start(task, f"ResourceInitializationError: unable to pull secrets: {exc}")
            return
        env[TASK_MARKER] = task.id
        log_path = self.logs / f"{task.id}.log"
        argv = self.sandbox.command(task.id, container, command)
        with log_path.open("wb") as output:
            try:
                process = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: StopTask reaches the whole task
                )
            except OSError as exc:  # what ECS reports when the image cannot run the command
                self._failed_to_start(task, f"CannotStartContainerError: {exc}")
                return
        running = TaskProcess(
            task.task_arn,
            task.cluster_arn,
            task.task_definition_arn,
            container["name"],
            address,
            command,
            process,
            log_path,
            dict((container.get("logConfiguration") or {}).get("options") or {}),
            tuple((task.network_configuration or {}).get("awsvpcConfiguration", {}).get("securityGroups") or ()),
        )
        with self._lock:
            self.tasks[task.task_arn] = running
            task.containers[0].last_status = "RUNNING"
        log.info("task %s (%s) at %s: %s", task.id, container["name"], address, " ".join(command[:3]))
        self._publish(task)
        threading.Thread(target=self._watch, args=(backend, task, running), daemon=True).start()

    def _place(self, backend: Any, task: Any, address: str) -> None:
        """Give the task's ENI this address, where clients read it."""
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[backend.account_id][task.region_name]
        for attachment in task.attachments:
            details = {d["name"]: d for d in attachment["details"]}
            eni_id = details["networkInterfaceId"]["value"]
            # moto's get_network_interface iterates its ENIs while a concurrent RunTask adds one
            # ("dictionary changed size during iteration"); list() copies them atomically.
            eni = next(e for e in list(ec2.enis.values()) if e.id == eni_id)
            dns = f"ip-{address.replace('.', '-')}.ec2.internal"
            eni.private_ip_address = address
            eni.private_ip_addresses = [{"Primary": True, "PrivateIpAddress": address, "PrivateDnsName": dns}]
            eni.private_dns_name = dns
            details["privateIPv4Address"]["value"] = address
            details["privateDnsName"]["value"] = dns

    def _environment(
        self, container: dict[str, Any], override: dict[str, Any], credentials: Credentials | None
    ) -> dict[str, str]:
        env = self.sandbox.environment()
        env.update({e["name"]: e["value"] for e in container.get("environment") or []})
        env.update({e["name"]: e["value"] for e in override.get("environment") or []})
        env.update(resolve_secrets(self.aws, container))
        client = self.aws.client_env(credentials or Credentials("", "", ""))
        if credentials is None:  # a task without a role has no AWS credentials
            del client["AWS_ACCESS_KEY_ID"], client["AWS_SECRET_ACCESS_KEY"]
        env.update(client)
        return env

    def _failed_to_start(self, task: Any, reason: str) -> None:
        with self._lock:
            task.last_status = task.desired_status = "STOPPED"
            task.stop_code, task.stopped_reason = "TaskFailedToStart", reason
            container = task.containers[0]
            container.last_status = "STOPPED"
            # a container that never ran has no exit code (moto's default is 0, which reads as a
            # success: Prefect's observer would then leave the flow run Pending for ever)
            container.exitCode = container.exit_code = None
        log.error("task %s failed to start: %s", task.id, reason)
        self._publish(task)

    # -- stopping -----------------------------------------------------------------------------

    def _stop(self, task: Any) -> None:
        with self._lock:
            running = self.tasks.get(task.task_arn)
            if running is None or running.process.poll() is not None:
                return
            running.stopping = True
            task.last_status = "DEACTIVATING"  # STOPPED once the process has exited
        self._terminate(running)

    def _terminate(self, running: TaskProcess) -> None:
        def stop() -> None:
            try:  # SIGTERM to the container's main process, as docker stop sends it
                self._main_process(running).send_signal(signal.SIGTERM)
                running.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._signal_all(running, signal.SIGKILL)
            except (ProcessLookupError, LookupError):
                pass

        threading.Thread(target=stop, daemon=True).start()

    @staticmethod
    def _main_process(running: TaskProcess) -> Any:
        """The container's main process: bubblewrap's child (setpriv has exec'd the command)."""
        import psutil

        children = psutil.Process(running.process.pid).children()
        if not children:
            raise LookupError(f"task {running.task_id} has no process inside its sandbox")
        return children[0]

    def kill(self, task_arn: str) -> None:
        """Every process of a task dies at once, as when its container or host is lost."""
        self._signal_all(self.tasks[task_arn], signal.SIGKILL)

    def _signal_all(self, running: TaskProcess, sig: int) -> None:
        """Signal every process of the task (found by its marker: some start their own session,
        as Prefect's flow-run command does for the flow itself)."""
        import psutil

        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if process.environ().get(TASK_MARKER) == running.task_id:
                    process.send_signal(sig)

    def _watch(self, backend: Any, task: Any, running: TaskProcess) -> None:
        code = running.process.wait()
        self._signal_all(running, signal.SIGKILL)  # a container ends with its main process
        exit_code = 128 - code if code < 0 else code  # a signal N shows as 128+N, as in Docker
        with self._lock:
            running.exit_code = exit_code
            container = task.containers[0]
            container.last_status = "STOPPED"
            container.exitCode = container.exit_code = exit_code
            task.last_status = "STOPPED"
            task.desired_status = "STOPPED"
            task.stopped_at = datetime.now(UTC)
            if running.stopping:
                task.stop_code = "UserInitiated"
            else:
                task.stop_code = "EssentialContainerExited"
                task.stopped_reason = "Essential container in task exited"
        self._ship_logs(running)
        self._publish(task)

    # -- what ECS reports ---------------------------------------------------------------------

    def _publish(self, task: Any) -> None:
        """An "ECS Task State Change" event, as ECS sends to EventBridge."""
        container = task.containers[0]
        detail = {
            "clusterArn": task.cluster_arn,
            "taskArn": task.task_arn,
            "taskDefinitionArn": task.task_definition_arn,
            "lastStatus": task.last_status,
            "desiredStatus": task.desired_status,
            "group": task.group,
            "launchType": task.launch_type or "FARGATE",
            "stopCode": getattr(task, "stop_code", None),
            "stoppedReason": task.stopped_reason or None,
            "containers": [
                {
                    "containerArn": container.container_arn,
                    "name": container.name,
                    "lastStatus": container.last_status,
                    "taskArn": task.task_arn,
                    **(
                        {"exitCode": container.exitCode}
                        if container.last_status == "STOPPED" and container.exitCode is not None
                        else {}
                    ),
                }
            ],
            "updatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        event = {
            "Source": "aws.ecs",
            "DetailType": "ECS Task State Change",
            "Detail": json.dumps({k: v for k, v in detail.items() if v is not None}),
            "Resources": [task.task_arn],
        }
        try:
            self.aws.backend("events").put_events([event])
        except Exception:  # an event that cannot be delivered must not stop the task
            log.exception("could not publish the state of %s", task.task_arn)

    def _ship_logs(self, running: TaskProcess) -> None:
        """The task's output in its awslogs group, stream ``<prefix>/<container>/<task id>``."""
        group, prefix = running.log_options.get("awslogs-group"), running.log_options.get("awslogs-stream-prefix")
        if not group or not prefix:
            return
        lines = running.log_path.read_text(errors="replace").splitlines() or ["(no output)"]
        stream = f"{prefix}/{running.container}/{running.task_id}"
        now = int(time.time() * 1000)
        try:
            logs = self.aws.client("logs")
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            for start in range(0, len(lines), 5000):
                batch = [{"timestamp": now, "message": line or " "} for line in lines[start : start + 5000]]
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        except Exception:
            log.exception("could not ship the logs of %s to %s", running.arn, group)

    def addresses(self) -> dict[str, str]:
        """The task ID at the address of each running task."""
        with self._lock:
            return {t.address: t.task_id for t in self.tasks.values() if t.process.poll() is None}

    def task_of(self, pid: int) -> str | None:
        """The ID of this runner's task a process belongs to (None outside every task of it:
        another rehearsal's tasks on the same machine carry the marker too)."""
        import psutil

        process = psutil.Process(pid)
        started = process.create_time()
        known = self._pids.get(pid)
        if known is None or known[0] != started:
            known = self._pids[pid] = (started, process.environ().get(TASK_MARKER))
        with self._lock:
            ours = {t.task_id for t in self.tasks.values()}
        return known[1] if known[1] in ours else None

    def running(self) -> list[TaskProcess]:
        with self._lock:
            return [t for t in self.tasks.values() if t.process.poll() is None]
