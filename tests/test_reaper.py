"""`mlwf reap` against a real moto server: a crashed run's tasks in the Dask cluster and its TLS
secret are removed; young runs, untagged or partly tagged resources, other environments, other
secrets and the platform's own cluster are untouched; --dry-run changes nothing."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from mlwf.cli import main
from mlwf.contract import dask_tls_secret_name, runtime_parameter_name
from mlwf.dask_cluster import RunInfo
from mlwf.reaper import find_leftovers, reap

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.reliability


def mlwf(*args: str) -> subprocess.CompletedProcess[str]:
    """`mlwf ARGS` in this process (so mutation testing sees the code it runs), as the CLI prints it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(REPO), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(["mlwf", *args], code, out.getvalue(), err.getvalue())


def aws_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


@pytest.fixture
def leaks(aws_env: str) -> dict[str, str]:
    """A world with leftovers of a crashed run next to things the reaper must not touch."""
    ec2, ecs, secrets, ssm = (boto3.client(s) for s in ("ec2", "ecs", "secretsmanager", "ssm"))
    ecs.put_account_setting(name="taskLongArnFormat", value="enabled")
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.128.0/18")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="dask", Description="dask", VpcId=vpc)["GroupId"]
    dask = ecs.create_cluster(clusterName="mlwf-dev-dask")["cluster"]["clusterArn"]
    platform = ecs.create_cluster(clusterName="mlwf-dev-platform")["cluster"]["clusterArn"]
    runtime = dict.fromkeys(
        (
            "vpc_id",
            "scheduler_security_group",
            "worker_security_group",
            "flow_security_group",
            "execution_role_arn",
            "task_role_arn",
            "flow_task_role_arn",
            "log_group",
            "image",
            "data_root",
            "scheduler_task_definition_arn",
            "worker_task_definition_arn",
        ),
        "x",
    )
    ssm.put_parameter(
        Name=runtime_parameter_name("mlwf-dev"),
        Type="String",
        Value=json.dumps({**runtime, "cluster_arn": dask, "private_subnets": [subnet]}),
    )
    now = datetime.now(UTC)
    crashed = RunInfo("dev", "crashed-run", now - timedelta(days=2)).tags()
    live = RunInfo("dev", "live-run", now - timedelta(minutes=5)).tags()
    other_env = RunInfo("staging", "staging-run", now - timedelta(days=2)).tags()
    partial = {k: v for k, v in crashed.items() if k != "mlwf:flow-run"}  # tags a service could carry
    foreign = {**crashed, "mlwf:platform": "someone-else"}  # another platform's run
    unplatformed = {k: v for k, v in crashed.items() if k != "mlwf:platform"}
    undated = {k: v for k, v in crashed.items() if k != "mlwf:created-at"}
    three_hours = RunInfo("dev", "older-run", now - timedelta(hours=3)).tags()
    definition = ecs.register_task_definition(
        family="mlwf-dev-dask-worker",
        containerDefinitions=[{"name": "dask-worker", "image": "repo/flows:py3.11-abc", "memory": 512}],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]

    def run(cluster: str, tags: dict[str, str] | None) -> str:
        kwargs = {"tags": aws_tags(tags)} if tags else {}
        return ecs.run_task(
            cluster=cluster,
            taskDefinition=definition,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}
            },
            **kwargs,
        )["tasks"][0]["taskArn"]

    def secret(name: str, tags: dict[str, str]) -> str:
        tags_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        return secrets.create_secret(Name=name, SecretString="{}", Tags=tags_list)["ARN"]

    return {
        "dask_cluster": dask,
        "platform_cluster": platform,
        "leaked_task": run(dask, crashed),
        "live_task": run(dask, live),
        "untagged_task": run(dask, None),
        "partly_tagged_task": run(dask, partial),
        "staging_task": run(dask, other_env),
        "foreign_task": run(dask, foreign),
        "unplatformed_task": run(dask, unplatformed),
        "undated_task": run(dask, undated),
        "three_hour_task": run(dask, three_hours),
        "platform_task": run(platform, crashed),
        "leaked_secret": secret(dask_tls_secret_name("mlwf-dev", "crashed-run-1"), crashed),
        "live_secret": secret(dask_tls_secret_name("mlwf-dev", "live-run-1"), live),
        "other_secret": secret("mlwf-dev/prefect-api-key", crashed),
        "unplatformed_secret": secret(dask_tls_secret_name("mlwf-dev", "crashed-run-2"), unplatformed),
    }


def state(leaks: dict[str, str]) -> dict[str, str]:
    ecs, secrets = boto3.client("ecs"), boto3.client("secretsmanager")
    out = {}
    for name, arn in leaks.items():
        if name.endswith("_task"):
            cluster = leaks["platform_cluster"] if name == "platform_task" else leaks["dask_cluster"]
            out[name] = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["desiredStatus"]
        elif name.endswith("_secret"):
            names = {s["ARN"] for s in secrets.list_secrets()["SecretList"]}
            out[name] = "PRESENT" if arn in names else "DELETED"
    return out


def test_dry_run_lists_the_leftovers_and_changes_nothing(leaks: dict[str, str]) -> None:
    before = state(leaks)
    result = mlwf("reap", "--env", "dev", "--older-than", "6h", "--dry-run")
    assert result.returncode == 0, result.stderr
    listed = [line for line in result.stdout.splitlines() if line.startswith("would reap: ")]
    assert listed == [  # tasks first, then their certificates
        f"would reap: task            {leaks['leaked_task']} (flow run crashed-run, 48.0 h old)",
        f"would reap: secret          {leaks['leaked_secret']} (flow run crashed-run, 48.0 h old)",
    ]
    assert result.stdout.strip().endswith("would reap 2 resource(s) in dev older than 6:00:00")
    assert state(leaks) == before
    assert boto3.client("cloudwatch").list_metrics(Namespace="mlwf/reaper")["Metrics"] == [], "a person's look"


def test_reap_removes_only_old_fully_tagged_leftovers_of_this_environment(
    leaks: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mlwf.reaper")
    before = state(leaks)
    result = mlwf("reap", "--env", "dev", "--older-than", "6h")
    assert result.returncode == 0, result.stderr
    assert "reaped 2 resource(s) in dev older than 6:00:00\n" in result.stdout
    assert result.stdout.strip().endswith("published 1 task(s) past 2:00:00 (dask.max_lifetime_minutes) for the alarms")
    (datapoint,) = boto3.client("cloudwatch").get_metric_statistics(
        Namespace="mlwf/reaper",
        MetricName="LeftoverTasks",
        Dimensions=[{"Name": "Environment", "Value": "dev"}],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(minutes=5),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert datapoint["Maximum"] == 1.0, "the 48-hour task (the secret is not a task)"
    after = state(leaks)
    assert after["leaked_task"] == "STOPPED"
    assert after["leaked_secret"] == "DELETED"
    (stopped,) = boto3.client("ecs").describe_tasks(cluster=leaks["dask_cluster"], tasks=[leaks["leaked_task"]])[
        "tasks"
    ]
    assert stopped["stoppedReason"] == "mlwf reap: left behind by a crashed flow run"
    with pytest.raises(ClientError, match="ResourceNotFoundException"):  # gone now, not in 7 days
        boto3.client("secretsmanager").describe_secret(SecretId=leaks["leaked_secret"])
    assert [r.getMessage() for r in caplog.records if r.name == "mlwf.reaper"] == [
        f"reaped task {leaks['leaked_task']}",
        f"reaped secret {leaks['leaked_secret']}",
    ]
    for untouched in (
        "live_task",
        "untagged_task",
        "partly_tagged_task",  # every run tag is required, the flow run's included
        "staging_task",
        "foreign_task",  # every tag must be right, the platform's included
        "unplatformed_task",
        "undated_task",
        "three_hour_task",  # younger than the threshold
        "unplatformed_secret",
        "platform_task",  # the platform's services run in a cluster the reaper never looks at
        "live_secret",
        "other_secret",  # only the run certificates' names
    ):
        assert after[untouched] == before[untouched], untouched


def test_a_young_threshold_reaps_the_live_run_too(leaks: dict[str, str]) -> None:
    """The threshold is what protects a live run: with 1 minute, its 5-minute-old task goes."""
    result = mlwf("reap", "--env", "dev", "--older-than", "1m", "--dry-run")
    assert leaks["live_task"] in result.stdout
    assert leaks["live_secret"] in result.stdout
    assert leaks["untagged_task"] not in result.stdout


def test_the_default_threshold_is_the_environments_maximum_cluster_lifetime(leaks: dict[str, str]) -> None:
    result = mlwf("reap", "--env", "dev", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("older than 2:00:00"), "dev: dask.max_lifetime_minutes 120"
    listed = {name for name, arn in leaks.items() if arn in result.stdout}
    assert listed == {"leaked_task", "three_hour_task", "leaked_secret"}, "3 h is past the 2 h default, 5 min is not"


@pytest.mark.parametrize(
    ("value", "words"), [("soon", "is not a duration"), ("40d", "outside 0s-30d"), ("31d", "outside")]
)
def test_bad_durations_are_one_line_errors(value: str, words: str) -> None:
    result = mlwf("reap", "--env", "dev", "--older-than", value)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert words in result.stderr


def test_a_leftover_exactly_as_old_as_the_threshold_is_reaped_and_each_is_listed_once(leaks: dict[str, str]) -> None:
    ecs, secrets = boto3.client("ecs"), boto3.client("secretsmanager")
    (task,) = ecs.describe_tasks(cluster=leaks["dask_cluster"], tasks=[leaks["leaked_task"]], include=["TAGS"])["tasks"]
    stamp = next(t["value"] for t in task["tags"] if t["key"] == "mlwf:created-at")
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(days=2)

    def leftovers(older_than: timedelta) -> list[tuple[str, str]]:
        found = find_leftovers(ecs, secrets, "dev", leaks["dask_cluster"], "mlwf-dev", older_than, then)
        return [(item.arn, item.flow_run) for item in found]

    crashed = [(leaks["leaked_task"], "crashed-run"), (leaks["leaked_secret"], "crashed-run")]
    assert leftovers(timedelta(days=2)) == crashed, "exactly as old as the threshold"
    assert leftovers(timedelta(days=2, seconds=1)) == []
    tasks = sorted([(leaks["leaked_task"], "crashed-run"), (leaks["three_hour_task"], "older-run")])
    assert leftovers(timedelta(hours=1)) == [*tasks, crashed[1]], "each leftover once, tasks first"
    found = find_leftovers(ecs, secrets, "dev", leaks["dask_cluster"], "mlwf-dev", timedelta(days=2), then)
    assert reap(ecs, secrets, found, dry_run=True) == []
    assert state(leaks)["leaked_task"] == "RUNNING"
    assert reap(ecs, secrets, found, dry_run=False) == found
