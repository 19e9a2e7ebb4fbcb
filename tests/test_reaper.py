"""`mlwf reap` against a real moto server: leaked tagged resources are removed; untagged,
young and other environments' ones are untouched; --dry-run changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from mlwf.compute import RunInfo

REPO = Path(__file__).resolve().parents[1]
MLWF = str(Path(sys.executable).parent / "mlwf")
pytestmark = pytest.mark.reliability


def mlwf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MLWF, *args], cwd=REPO, capture_output=True, text=True, env=dict(os.environ), timeout=120)


def aws_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


@pytest.fixture
def leaks(aws_env: str) -> dict[str, str]:
    """A world with leftovers of a crashed run next to things the reaper must not touch."""
    ec2, ecs = boto3.client("ec2"), boto3.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.128.0/18")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="dask", Description="dask", VpcId=vpc)["GroupId"]
    stack_cluster = ecs.create_cluster(clusterName="mlwf-dev-dask", tags=aws_tags({"Environment": "dev"}))["cluster"][
        "clusterArn"
    ]
    now = datetime.now(UTC)
    crashed = RunInfo("dev", "crashed-run", now - timedelta(days=2)).tags()
    live = RunInfo("dev", "live-run", now - timedelta(minutes=5)).tags()
    other_env = RunInfo("staging", "staging-run", now - timedelta(days=2)).tags()

    def task_definition(family: str, tags: dict[str, str] | None) -> str:
        container = {"name": "dask-worker", "image": "repo/flows:py3.11-abc", "memory": 512}
        kwargs = {"tags": aws_tags(tags)} if tags else {}
        return ecs.register_task_definition(
            family=family,
            containerDefinitions=[container],
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            **kwargs,
        )["taskDefinition"]["taskDefinitionArn"]

    def run(definition: str, tags: dict[str, str] | None) -> str:
        kwargs = {"tags": aws_tags(tags)} if tags else {}
        return ecs.run_task(
            cluster=stack_cluster,
            taskDefinition=definition,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}
            },
            **kwargs,
        )["tasks"][0]["taskArn"]

    leaked_definition = task_definition("dask-crashed-worker", crashed)
    live_definition = task_definition("dask-live-worker", live)
    untagged_definition = task_definition("someone-elses", None)
    staging_definition = task_definition("dask-staging-worker", other_env)
    return {
        "stack_cluster": stack_cluster,
        "leaked_cluster": ecs.create_cluster(clusterName="dask-crashed", tags=aws_tags(crashed))["cluster"][
            "clusterArn"
        ],
        "leaked_definition": leaked_definition,
        "leaked_task": run(leaked_definition, crashed),
        "live_definition": live_definition,
        "live_task": run(live_definition, live),
        "untagged_definition": untagged_definition,
        "untagged_task": run(untagged_definition, None),
        "staging_definition": staging_definition,
    }


def state(leaks: dict[str, str]) -> dict[str, str]:
    ecs = boto3.client("ecs")
    out = {}
    for name, arn in leaks.items():
        if name.endswith("_definition"):
            out[name] = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"]
        elif name.endswith("_task"):
            out[name] = ecs.describe_tasks(cluster=leaks["stack_cluster"], tasks=[arn])["tasks"][0]["desiredStatus"]
        else:
            clusters = ecs.describe_clusters(clusters=[arn])["clusters"]
            out[name] = clusters[0]["status"] if clusters else "MISSING"
    return out


def test_dry_run_lists_the_leftovers_and_changes_nothing(leaks: dict[str, str]) -> None:
    before = state(leaks)
    result = mlwf("reap", "--env", "dev", "--older-than", "6h", "--dry-run")
    assert result.returncode == 0, result.stderr
    listed = [line for line in result.stdout.splitlines() if line.startswith("would reap: ")]
    assert len(listed) == 3
    for key in ("leaked_task", "leaked_definition", "leaked_cluster"):
        assert any(leaks[key] in line for line in listed)
    assert "crashed-run" in listed[0]
    assert state(leaks) == before


def test_reap_removes_only_old_tagged_leftovers_of_this_environment(leaks: dict[str, str]) -> None:
    before = state(leaks)
    result = mlwf("reap", "--env", "dev", "--older-than", "6h")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("reaped 3 resource(s) in dev older than 6:00:00")
    after = state(leaks)
    assert after["leaked_task"] == "STOPPED"
    assert after["leaked_definition"] == "INACTIVE"
    assert after["leaked_cluster"] in ("INACTIVE", "MISSING")
    for untouched in (
        "stack_cluster",
        "live_definition",
        "live_task",
        "untagged_definition",
        "untagged_task",
        "staging_definition",
    ):
        assert after[untouched] == before[untouched], untouched


def test_a_young_threshold_reaps_the_live_run_too(leaks: dict[str, str]) -> None:
    """The threshold is what protects a live run: with 1 minute, its 5-minute-old task goes."""
    result = mlwf("reap", "--env", "dev", "--older-than", "1m", "--dry-run")
    assert leaks["live_task"] in result.stdout
    assert leaks["untagged_task"] not in result.stdout


@pytest.mark.parametrize(
    ("value", "words"), [("soon", "is not a duration"), ("40d", "outside 0s-30d"), ("31d", "outside")]
)
def test_bad_durations_are_one_line_errors(value: str, words: str) -> None:
    result = mlwf("reap", "--env", "dev", "--older-than", value)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert words in result.stderr
