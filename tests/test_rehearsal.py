"""The AWS path end to end on the emulated AWS (what `mlwf rehearse` does, on one stage shared by
the module), and what must hold beyond the happy path: adaptive clusters grow and shrink as
worker tasks; a killed flow run is marked Crashed through the observer's queue and its leftovers
are reaped; a missing permission is a one-line error naming it. Everything runs with the real
libraries (dask-cloudprovider, prefect-aws, boto3, s3fs) against moto with IAM enforced, and
never leaves 127.0.0.0/8."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from registry import push_image

from mlwf.contract import ClusterRuntime, runtime_parameter_name
from mlwf.dask_cluster import ClusterStartError, RunInfo, cluster_spec, dask_client
from mlwf.rehearsal.checks import security_groups_allow_every_connection, task_endpoints
from mlwf.rehearsal.cloud import Credentials
from mlwf.rehearsal.network import dropped
from mlwf.rehearsal.rehearse import deploy, deploy_role, perform, rehearsal_runs
from mlwf.rehearsal.stage import Stage, stage
from mlwf.rehearsal.tasks import LOOPBACK
from mlwf.settings import Settings

REPO = Path(__file__).resolve().parents[1]
MLWF = str(Path(sys.executable).parent / "mlwf")
pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]
IDLE_S = 5  # workers given back after 5 s idle in these scenarios (settings: worker_idle_seconds)


def test_rehearse_is_one_line_when_moto_is_missing(tmp_path: Path) -> None:
    """moto is a dev dependency: without it the command says so in one line."""
    (tmp_path / "moto").mkdir()
    (tmp_path / "moto" / "__init__.py").write_text("raise ImportError('No module named moto')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([MLWF, "rehearse"], cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mlwf: error: the rehearsal needs the dev dependencies (moto): run `uv sync` first"
    ]


def test_rehearse_names_an_unknown_environment_in_one_line(tmp_path: Path) -> None:
    """...before it makes its working folder (with --keep, one would be left behind)."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    argv = [MLWF, "rehearse", "--env", "qa", "--keep"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unknown environment 'qa'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def scenario_settings(settings: Settings) -> Settings:
    """The scenarios' clusters (started here, not by a flow run) give workers back after 5 s
    idle and grow to 4 workers at most."""
    dask = settings.dask.model_copy(update={"worker_idle_seconds": IDLE_S, "max_workers": 4})
    return settings.model_copy(update={"dask": dask})


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """The staging stage (Dask over TLS, access logs: what dev, which `mlwf rehearse` rehearses
    by default, does not have): the emulated AWS seeded from its plan, a Prefect server."""
    with stage("staging", REPO, tmp_path_factory.mktemp("rehearsal"), tweak=scenario_settings) as current:
        yield current


@pytest.fixture(scope="module")
def rehearsed(dev: Stage) -> tuple[list[Any], list[Any]]:
    """What `mlwf rehearse` does on the stage: deploy, worker, smoke, every workload's runs, checks."""
    return perform(dev, say=print)


def test_what_a_merge_does_completes_and_every_check_holds(rehearsed: tuple[list[Any], list[Any]]) -> None:
    runs, checks = rehearsed
    names = [r.name for r in runs]
    assert sorted(names) == [
        "mlwf flows smoke",
        "starter/staging",
        "storm-damage-pipeline/staging",
        "storm-damage-search/staging",
    ]
    assert names[0] == "mlwf flows smoke"
    pipeline, search = names.index("storm-damage-pipeline/staging"), names.index("storm-damage-search/staging")
    assert pipeline < search, "the search reads what the pipeline writes: it runs after"
    assert all(r.ok for r in runs), [r.line() for r in runs]
    assert [c.name for c in checks] == [
        "scratch volumes writable by the image's user",
        "every import resolved in the image",
        "security groups admit every connection between tasks",
        "the reaper's metric reaches its alarms",
        "IAM denied nothing",
        "AWS's policy logic allows every request",
        "no secret in task definitions, requests or logs",
        "every task it started is STOPPED",
        "no task definition of ours left ACTIVE",
        "tags on every task",
        "the scheduler on Fargate, workers where the settings say",
        "lifetime limits on every Dask task",
        "nothing left to reap",
    ]
    assert all(c.ok for c in checks), [c.line() for c in checks]


def test_status_shows_what_runs_in_the_emulated_environment(dev: Stage, rehearsed: Any) -> None:
    """`mlwf status` read from the environment: one image digest in every task definition and
    deployment, each flow's deployment with its last run, the storm workload's current model."""
    result = dev.mlwf("status", "--env", "staging", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["unreadable"] == []
    assert dev.aws.admin is not None
    image = runtime_of(dev, dev.aws.admin).image  # the rehearsal deploys by tag (no registry digest here)
    assert status["images"] == dict.fromkeys(("flow runs", "Dask scheduler", "Dask workers"), image)
    by_name = {d["name"]: d for d in status["deployments"]}
    pipeline = by_name["storm-damage-pipeline/staging"]
    assert pipeline["last_runs"][0].startswith("Completed "), pipeline
    assert {d["image"] for d in status["deployments"]} == {image}
    assert status["models"]["storm"][0].startswith("current model ")
    assert " (promoted): ROC AUC 0." in status["models"]["storm"][0]
    assert status["alerts"] == [], "moto never evaluates an alarm; the budget has no spend"
    text = dev.mlwf("status", "--env", "staging")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[:2] == ["== staging", f"image        {image}"]
    assert "alerts       none open" in text.stdout.splitlines()
    cloudwatch = dev.aws.client("cloudwatch")  # as CloudWatch would, three hours without a report
    cloudwatch.set_alarm_state(AlarmName="mlwf-staging-reaper-silent", StateValue="ALARM", StateReason="no data")
    try:
        alarming = dev.mlwf("status", "--env", "staging")
    finally:
        cloudwatch.set_alarm_state(AlarmName="mlwf-staging-reaper-silent", StateValue="OK", StateReason="back")
    (line,) = [line for line in alarming.stdout.splitlines() if line.startswith("alert ")]
    assert line.startswith("alert        alarm mlwf-staging-reaper-silent since ")
    assert line.endswith("Z: the reaper has not reported for 3 hours: is it scheduled?")


def test_both_workloads_wrote_only_under_their_declared_prefixes(dev: Stage, rehearsed: Any) -> None:
    s3 = dev.aws.client("s3")
    bucket = f"{dev.settings.name_prefix}-data-{dev.settings.account_id}"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page["Contents"]]
    from mlwf.workloads import DataAccess, discover

    declared = DataAccess.of(discover(REPO)).writes
    outside = [k for k in keys if not any(k.startswith((f"{p}/", f"smoke/{p}/")) for p in declared)]
    assert keys
    assert not outside
    assert any(k.startswith("reports/damage_search/") and k.endswith("scores.png") for k in keys)
    assert any(k.startswith("smoke/raw/storm_events/") for k in keys), "the smoke run writes apart"


def test_dask_traffic_was_tls_and_every_runs_certificates_are_gone(dev: Stage, rehearsed: Any) -> None:
    schedulers = [t for t in dev.runner.tasks.values() if t.container == "dask-scheduler"]
    assert schedulers
    for scheduler in schedulers:
        assert re.search(r"Scheduler at:\s+tls://127\.0\.0\.\d+:8786", scheduler.log_path.read_text())
    left = dev.aws.client("secretsmanager").list_secrets()["SecretList"]
    assert not [s["Name"] for s in left if "/dask-tls/" in s["Name"]], "each run deletes its certificates"


def test_every_dask_connection_was_recorded_with_the_groups_runtask_gave(dev: Stage, rehearsed: Any) -> None:
    """Flow runs reach the scheduler, workers the scheduler, the scheduler its workers: each seen
    with the two sides' tasks, which carry the groups RunTask named."""
    tasks = {t.task_id: t for t in dev.runner.tasks.values()}
    seen = {(tasks[c.source].family, tasks[c.destination].family) for c in dev.connections.recorded()}
    prefix = dev.settings.name_prefix
    assert {
        (f"{prefix}-flow-run", f"{prefix}-dask-scheduler"),
        (f"{prefix}-dask-worker", f"{prefix}-dask-scheduler"),
        (f"{prefix}-dask-scheduler", f"{prefix}-dask-worker"),
    } <= seen
    assert all(t.security_groups for t in tasks.values())
    assert any(c.port == 8786 for c in dev.connections.recorded())


def test_a_missing_security_group_rule_fails_the_rehearsal_naming_source_destination_and_port(
    dev: Stage, rehearsed: Any
) -> None:
    """The same run, judged by the plan without the flow-run group's way in to the Dask tasks (a
    scheduler and its workers each carry both Dask groups, so both rules must go)."""
    missing = {"scheduler-from-flows", "worker-from-flows"}
    world = dataclasses.replace(dev.world, group_rules=[r for r in dev.world.group_rules if r.name not in missing])
    result = security_groups_allow_every_connection(dataclasses.replace(dev, world=world))
    assert not result.ok
    assert "\n" not in result.line()
    for problem in result.detail.split("; "):
        assert re.fullmatch(
            r"mlwf-staging-flow-run 127\.0\.0\.\d+ -> mlwf-staging-dask-(scheduler|worker) 127\.0\.0\.\d+ "
            r"port \d+: "
            r"no ingress rule of sg-\w+, sg-\w+ admits it",
            problem,
        ), problem
    every = dropped(dev.connections.recorded(), task_endpoints(dev), world.group_rules, world.vpc_cidr)
    assert any(re.search(r"-> mlwf-staging-dask-scheduler \S+ port 8786:", line) for line in every)
    assert security_groups_allow_every_connection(dev).ok


@pytest.fixture(scope="module")
def worker(dev: Stage, rehearsed: Any) -> Iterator[list[str]]:
    """The Prefect worker running again for the scenarios (the rehearsal stopped it)."""
    services = dev.start_services()
    yield services
    dev.stop_tasks(services)


@contextmanager
def acting_as(current: Stage, credentials: Credentials) -> Iterator[None]:
    """This test process reaches the emulated AWS as ``credentials`` (as a flow run would)."""
    import boto3
    import fsspec

    saved = dict(os.environ)
    os.environ.update(current.aws.client_env(credentials))
    fsspec.filesystem("s3").clear_instance_cache()
    boto3.DEFAULT_SESSION = None  # its credentials were resolved once, by whatever ran before here
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        boto3.DEFAULT_SESSION = None


def runtime_of(current: Stage, credentials: Credentials) -> ClusterRuntime:
    ssm = current.aws.client("ssm", credentials)
    name = runtime_parameter_name(current.settings.name_prefix)
    return ClusterRuntime(**json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"]))


def workers(current: Stage) -> int:
    return sum(1 for t in current.runner.running() if t.container == "dask-worker")


def test_every_address_handed_out_is_loopback(dev: Stage) -> None:
    addresses = {t.address for t in dev.runner.tasks.values()}
    assert addresses, "the worker service runs as a task"
    assert all(__import__("ipaddress").ip_address(a) in LOOPBACK for a in addresses)


def test_an_adaptive_cluster_grows_with_work_and_shrinks_when_idle(dev: Stage) -> None:
    dask = dev.settings.dask
    flow_run = dev.identity("flow-run-task")
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(workers(dev))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    with acting_as(dev, flow_run):
        spec = cluster_spec(dev.settings, runtime_of(dev, flow_run), RunInfo("staging", "adaptive-scenario"))
        watcher.start()
        with dask_client(spec) as client:
            assert workers(dev) == dask.n_workers
            client.gather(client.map(time.sleep, [2.0] * 4, pure=False))  # durations the scheduler learns
            client.gather(client.map(time.sleep, [2.0 + i / 1000 for i in range(40)], pure=False))
            grown = max(seen)
            deadline = time.monotonic() + 90
            while workers(dev) > dask.n_workers and time.monotonic() < deadline:
                time.sleep(0.5)
            shrunk = workers(dev)
        stop.set()
    watcher.join()
    assert dask.n_workers < grown <= dask.max_workers, f"workers over time: {sorted(set(seen))}"
    assert shrunk == dask.n_workers, "idle workers are given back"
    assert max(seen) <= dask.max_workers


def test_a_role_missing_one_permission_fails_in_one_line_naming_it(dev: Stage) -> None:
    lacking = dev.identity_without("flow-run-task", "ecs:DescribeClusters")
    with acting_as(dev, lacking):
        spec = cluster_spec(dev.settings, runtime_of(dev, lacking), RunInfo("staging", "denied-scenario"))
        with pytest.raises(ClusterStartError) as failure, dask_client(spec):
            pass
    message = str(failure.value)
    assert "\n" not in message
    assert message == (
        f"the Dask cluster could not start: {lacking.user} is not allowed ecs:DescribeClusters (AccessDenied)"
    )
    assert any(d.action == "ecs:DescribeClusters" and d.user == lacking.user for d in dev.aws.denials)


def run_pipeline(current: Stage) -> str:
    """A run of the storm pipeline, as the rehearsal makes it."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    name, parameters = next((n, p) for n, p in rehearsal_runs(current) if n == "storm-damage-pipeline")

    async def create() -> str:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(f"{name}/{current.settings.name}")
            run = await client.create_flow_run_from_deployment(
                deployment.id, parameters={**parameters, "years": [1995]}
            )
            return str(run.id)

    with temporary_settings({PREFECT_API_URL: current.prefect.url}):
        return asyncio.run(create())


def flow_run_state(current: Stage, flow_run_id: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> Any:
        async with get_client() as client:
            return (await client.read_flow_run(flow_run_id)).state  # type: ignore[arg-type]

    with temporary_settings({PREFECT_API_URL: current.prefect.url}):
        return asyncio.run(read())


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def killed_run(dev: Stage, worker: list[str]) -> dict[str, Any]:
    """A pipeline run whose flow-run task dies (SIGKILL to every process of it, as when its
    container is lost) once its Dask cluster is up."""
    before = set(dev.runner.tasks)
    flow_run_id = run_pipeline(dev)

    def cluster_up() -> bool:
        new = [t for t in dev.runner.running() if t.arn not in before]
        return sum(t.container == "dask-worker" for t in new) >= dev.settings.dask.n_workers

    wait_for(cluster_up, 240, "the run's Dask cluster")
    (flow,) = [t for t in dev.runner.running() if t.arn not in before and t.container == "prefect"]
    dask_tasks = [t.arn for t in dev.runner.running() if t.arn not in before and t.container.startswith("dask-")]
    dev.runner.kill(flow.arn)
    flow.process.wait(timeout=30)
    return {"flow_run_id": flow_run_id, "flow_task": flow, "dask_tasks": dask_tasks}


def test_a_killed_flow_run_is_marked_crashed_through_the_observer_queue(dev: Stage, killed_run: dict[str, Any]) -> None:
    wait_for(lambda: flow_run_state(dev, killed_run["flow_run_id"]).type.value == "CRASHED", 120, "Crashed")
    state = flow_run_state(dev, killed_run["flow_run_id"])
    assert "non-zero exit code" in (state.message or ""), state.message
    assert killed_run["flow_task"].exit_code == 128 + signal.SIGKILL


def test_a_killed_runs_leftovers_are_reaped(dev: Stage, killed_run: dict[str, Any]) -> None:
    left = [t for t in dev.runner.running() if t.arn in killed_run["dask_tasks"]]
    assert left, "the scheduler and workers outlive their client"
    result = dev.mlwf("reap", "--env", "staging", "--older-than", "0s", credentials=dev.identity("reaper-task"))
    assert result.returncode == 0, result.stderr
    reaped = [line for line in result.stdout.splitlines() if line.startswith("reaping: ")]
    assert {line.split()[2] for line in reaped} >= set(killed_run["dask_tasks"]), result.stdout
    wait_for(lambda: not any(t.arn in killed_run["dask_tasks"] for t in dev.runner.running()), 60, "reaped tasks")
    again = dev.mlwf(
        "reap", "--env", "staging", "--older-than", "0s", "--dry-run", credentials=dev.identity("reaper-task")
    )
    assert not [line for line in again.stdout.splitlines() if line.startswith("would reap: ")]


def flow_run_logs(current: Stage, flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            return [entry.message for entry in logs]

    with temporary_settings({PREFECT_API_URL: current.prefect.url}):
        return asyncio.run(read())


def test_a_flow_run_its_execution_role_cannot_start_ends_crashed_with_the_agents_line(
    dev: Stage, worker: list[str]
) -> None:
    """The whole chain as on Fargate: the worker's RunTask succeeds, the ECS agent is refused the API
    key's secret, the task STOPS with TaskFailedToStart, and Prefect's observer (through the
    EventBridge queue) marks the run Crashed and logs the agent's reason on it."""
    from prefect.client.schemas.objects import StateType

    from mlwf.rehearsal.checks import documents
    from mlwf.rehearsal.judge import start_refusal

    mutated = _without(documents(dev), ("flow-run-execution",), {"secretsmanager:GetSecretValue"})
    previous, before = dev.runner.admit, set(dev.runner.tasks)
    dev.runner.admit = lambda arn: start_refusal(mutated.task_definitions(arn), mutated)
    try:
        flow_run_id = run_pipeline(dev)
        wait_for(lambda: flow_run_state(dev, flow_run_id).type == StateType.CRASHED, 180, "Crashed")
    finally:
        dev.runner.admit = previous
    assert set(dev.runner.tasks) == before, "no process was started for it"
    state = flow_run_state(dev, flow_run_id)
    assert state.message == "The following containers stopped with a non-zero exit code: ['prefect']"

    def agent_lines() -> list[str]:  # the observer's logs reach the API in batches
        return [m for m in flow_run_logs(dev, flow_run_id) if m.startswith("ECS task failed to start: ")]

    wait_for(agent_lines, 60, "the observer's log of the agent's reason on the run")
    agent = agent_lines()
    assert "ResourceInitializationError: unable to pull secrets or registry auth: AccessDenied: " in agent[0]
    assert "mlwf-staging-flow-run-execution is not authorized to perform secretsmanager:GetSecretValue" in agent[0]


# -- the judge's corpus: fatal mistakes, one per layer, judged on the recorded requests of the run --


def _without(docs: Any, roles: tuple[str, ...], actions: set[str]) -> Any:
    """The documents with ``actions`` taken out of the Allow statements of ``roles`` (by suffix)."""
    identity = copy.deepcopy(docs.identity)
    for name, documents in identity.items():
        if name.endswith(roles):
            for document in documents:
                for st in document["Statement"]:
                    if st["Effect"] == "Allow":
                        listed = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                        st["Action"] = [a for a in listed if a not in actions] or ["none:None"]
    return dataclasses.replace(docs, identity=identity)


def _edited(docs: Any, role: str, old: str, new: str) -> Any:
    """The documents with ``old`` replaced by ``new`` in ``role``'s identity policies (as text)."""
    identity = copy.deepcopy(docs.identity)
    name = next(n for n in identity if n.endswith(role))
    text = json.dumps(identity[name])
    assert old in text
    identity[name] = json.loads(text.replace(old, new))
    return dataclasses.replace(docs, identity=identity)


def _resource_policy(docs: Any, arn: str, document: dict[str, Any]) -> Any:
    return dataclasses.replace(docs, resource_policies={**docs.resource_policies, arn: document})


def _data_key(docs: Any) -> str:
    return next(iter(docs.bucket_keys.values()))


def _bucket(docs: Any) -> str:
    return f"arn:aws:s3:::{next(iter(docs.bucket_keys))}"


CORPUS = {
    "S3 -> KMS: the data roles lose kms:GenerateDataKey and kms:Decrypt": (
        lambda d: _without(d, ("dask-task", "flow-run-task"), {"kms:Decrypt", "kms:GenerateDataKey"}),
        "kms:",
        "S3 on its behalf",
    ),
    "the execution role's start path: no secretsmanager:GetSecretValue": (
        lambda d: _without(d, ("flow-run-execution",), {"secretsmanager:GetSecretValue"}),
        "secretsmanager:GetSecretValue",
        "the ECS agent reading secrets",
    ),
    "a resource ARN outside S3/SQS: the worker's RunTask names another family": (
        lambda d: _edited(d, "prefect-worker", "task-definition/mlwf-staging-flow-run:*", "task-definition/other:*"),
        "ecs:RunTask",
        "",
    ),
    "a condition: the flow run's ecs:cluster names another cluster": (
        lambda d: _edited(d, "flow-run-task", '"ecs:cluster": "arn:', '"ecs:cluster": "arn:x'),
        "ecs:",
        "",
    ),
    "PassRole: the worker may not pass the flow-run roles": (
        lambda d: _without(d, ("prefect-worker",), {"iam:PassRole"}),
        "iam:PassRole",
        "RunTask passing its roles",
    ),
    "a key policy that does not let the account's IAM policies count": (
        lambda d: _resource_policy(
            d,
            _data_key(d),
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ]
            },
        ),
        "kms:",
        "S3 on its behalf",
    ),
    "a bucket policy that denies the data roles": (
        lambda d: _resource_policy(
            d,
            _bucket(d),
            {
                "Statement": [
                    {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": _bucket(d) + "/*"}
                ]
            },
        ),
        "s3:GetObject",
        "",
    ),
    "a permissions boundary without s3:PutObject": (
        lambda d: dataclasses.replace(
            d,
            boundaries={
                name: json.loads(json.dumps(b).replace('"s3:PutObject", ', "")) for name, b in d.boundaries.items()
            },
        ),
        "s3:PutObject",
        "",
    ),
}
LAYERS = {
    "S3 -> KMS": "the identity policy",
    "the execution role's": "the identity policy",
    "a resource ARN": "the identity policy",
    "a condition": "the identity policy",
    "PassRole": "the identity policy",
    "a key policy": "the key policy",
    "a bucket policy": "the resource policy (explicit deny)",
    "a permissions boundary": "the permissions boundary",
}


@pytest.mark.parametrize("mistake", list(CORPUS))
def test_a_fatal_mistake_fails_the_judgement_in_one_line_naming_the_layer(
    dev: Stage, rehearsed: Any, mistake: str
) -> None:
    """Each mistake would fail a first real run; judged on the recorded requests of the run
    (not a rerun), it is refused naming the principal, action, resource and layer."""
    from mlwf.rehearsal.checks import documents
    from mlwf.rehearsal.judge import judge, summary

    mutate, action, by = CORPUS[mistake]
    started = [task.definition_arn for task in dev.runner.tasks.values()]
    clean = judge(list(dev.aws.requests), started, documents(dev))
    assert not clean.refused, summary(clean)
    assert not clean.unjudged, summary(clean)
    result = judge(list(dev.aws.requests), started, mutate(documents(dev)))
    layer = next(v for k, v in LAYERS.items() if mistake.startswith(k))
    matching = [v for v in result.refused if v.call.action.startswith(action) and by in v.call.by]
    assert matching, summary(result)
    assert all(v.layer.startswith(layer) for v in matching), [v.layer for v in matching]
    line = summary(result)
    assert "\n" not in line
    assert line.startswith(f"{len(result.refused)} of ")
    first = result.refused[0]
    assert f"{first.call.role} may not {first.call.action} on {first.call.resource}" in line
    assert f"refused by {first.layer}" in line


def test_flows_are_deployed_and_smoked_with_the_deploy_roles_rights(dev: Stage, rehearsed: Any) -> None:
    """As the deploy job holds it: the bootstrap stack's deploy role, judged like every role."""
    deployer = "mlwf-github-deploy-staging"
    actions = {r.action for r in dev.aws.requests if r.user == deployer}
    assert "ssm:GetParameter" in actions, "the work pool's job variables, read by mlwf flows deploy"
    assert not [d for d in dev.aws.denials if d.user == deployer]


def test_a_task_its_execution_role_cannot_start_stops_with_the_agents_reason(dev: Stage, rehearsed: Any) -> None:
    """Judged when it starts, as the ECS agent is refused: a flow-run task whose execution role
    may not read the API key's secret never runs; it STOPS with ResourceInitializationError."""
    from mlwf.rehearsal.checks import documents
    from mlwf.rehearsal.judge import start_refusal

    assert dev.aws.admin is not None
    runtime = runtime_of(dev, dev.aws.admin)
    (definition,) = [arn for arn in dev.world.task_definitions if "task-definition/mlwf-staging-flow-run:" in arn]
    mutated = _without(documents(dev), ("flow-run-execution",), {"secretsmanager:GetSecretValue"})
    previous, before = dev.runner.admit, set(dev.runner.tasks)
    dev.runner.admit = lambda arn: start_refusal(mutated.task_definitions(arn), mutated)
    try:
        ecs = dev.aws.client("ecs")
        network = {"subnets": runtime.private_subnets, "securityGroups": [runtime.flow_security_group]}
        (task,) = ecs.run_task(
            cluster=runtime.cluster_arn,
            taskDefinition=definition,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": network},
        )["tasks"]
        (stopped,) = ecs.describe_tasks(cluster=runtime.cluster_arn, tasks=[task["taskArn"]])["tasks"]
    finally:
        dev.runner.admit = previous
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stoppedReason"].startswith(
        "ResourceInitializationError: unable to pull secrets or registry auth: AccessDenied: "
        "mlwf-staging-flow-run-execution is not authorized to perform secretsmanager:GetSecretValue on "
    )
    assert set(dev.runner.tasks) == before, "no process was started for it"


def test_least_privilege_from_evidence_lists_each_roles_unused_grants(dev: Stage, rehearsed: Any) -> None:
    from mlwf.rehearsal.checks import unused_grants
    from mlwf.rehearsal.rehearse import Rehearsal

    unused = unused_grants(dev)
    flow_run = unused["mlwf-staging-flow-run-task"]
    assert "ecs:RunTask" not in flow_run, "used: it starts the Dask cluster"
    assert "s3:DeleteObject" in flow_run, "granted for workloads that delete; this run deleted nothing"
    result = Rehearsal("staging", Path("/nonexistent"), unused=unused)
    document = json.loads(json.dumps(result.to_json()))
    assert document["unused_grants"]["mlwf-staging-flow-run-task"] == flow_run
    assert f"granted, unused by this run: mlwf-staging-flow-run-task: {', '.join(flow_run)}" in result.notes()


def test_rehearse_refuses_a_json_file_in_a_missing_folder_before_any_work(tmp_path: Path) -> None:
    argv = [MLWF, "rehearse", "--json", str(tmp_path / "missing" / "result.json")]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mlwf: error: --json {tmp_path}/missing/result.json: its folder does not exist"
    ]


def deployed_images(current: Stage) -> tuple[set[str], set[str]]:
    """The images of the environment's task definitions (the work pool's flow runs, Dask's),
    and those the flow deployments' task definitions run."""
    status = json.loads(current.mlwf("status", "--env", current.settings.name, "--json").stdout)
    return set(status["images"].values()), {d["image"] for d in status["deployments"]}


# Last in the module: it leaves the environment running an image by digest.
def test_a_rollback_restores_the_previous_digest_and_refuses_one_gone_from_the_registry(
    dev: Stage, rehearsed: Any
) -> None:
    """Two releases deployed by digest, as main's deploy job deploys them (the image stacks,
    then the flows: deployed once, after the second, which is what they name); `mlwf rollback`'s
    steps, with the deploy role's rights, bring the first back in every task definition and every
    deployment's job variables, recorded like a deploy; a digest gone from the registry is refused
    in one line, with nothing changed."""
    from mlwf.rollback import deployed_images as history
    from mlwf.rollback import rollback

    repository = (
        f"{dev.settings.account_id}.dkr.ecr.{dev.settings.region}.amazonaws.com/{dev.settings.image.repository}"
    )
    first, second = (push_image(dev.aws.client("ecr"), dev.settings.image.repository, f"release-{n}") for n in (1, 2))
    for digest in (first, second):
        changed = dev.deploy_image(digest)
        assert {"TaskDefinition flow-run", "Parameter runtime", "Parameter work-pool"} <= set(changed), changed
    deploy(dev)

    deployer = deploy_role(dev)
    clients = (dev.aws.client("ssm", deployer), dev.aws.client("ecr", deployer))
    said: list[str] = []
    step = rollback(dev.settings, None, lambda s: dev.deploy_image(s.target), lambda: deploy(dev), said.append, clients)
    assert (step.current, step.target, step.tags) == (second, first, ("release-1",))
    assert said[0] == f"rolling {dev.settings.name} back from {second} to {first} (release-1)"
    assert deployed_images(dev) == ({f"{repository}@{first}"}, {f"{repository}@{first}"})
    recorded = history(dev.settings, clients[0])
    assert [image.rpartition("@")[2] for image in recorded[-3:]] == [first, second, first]
    assert not [d for d in dev.aws.denials if d.user == deployer.user]
    from mlwf.rehearsal.checks import documents
    from mlwf.rehearsal.judge import judge

    judged = judge([r for r in dev.aws.requests if r.user == deployer.user], [], documents(dev))
    assert (judged.unjudged, judged.refused) == ([], []), "as AWS judges the deploy role's requests"
    assert {"ssm:GetParameterHistory", "ecr:DescribeImages"} <= {v.call.action for v in judged.verdicts}

    dev.aws.client("ecr").batch_delete_image(
        repositoryName=dev.settings.image.repository, imageIds=[{"imageDigest": second}]
    )
    refused = dev.mlwf("rollback", "--env", dev.settings.name, credentials=deployer)  # the previous one: `second`
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"mlwf: error: image {second} is gone from {dev.settings.image.repository} (its lifecycle policy keeps "
        "the newest images): cannot roll back to it"
    ]
    assert refused.stdout == ""
    assert history(dev.settings, clients[0]) == recorded, "nothing deployed"
