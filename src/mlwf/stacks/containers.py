"""The platform's Fargate task definitions, hardened one way: a read-only root filesystem
(FSBP ECS.5) with two scratch volumes the image's processes write to (``/tmp``: Dask's spill and
temporary files; the image user's home: Prefect's and matplotlib's caches), never privileged,
logs to an existing awslogs group (never ``awslogs-create-group``), container-level memory (ECS
resource accounting), pinned image."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.contract import IMAGE_HOME

SCRATCH = {"tmp": "/tmp", "home": IMAGE_HOME}  # volume name -> where the image writes


def container(
    name: str,
    image: str,
    log_group: str,
    region: str,
    stream_prefix: str,
    *,
    cpu: int,
    memory: int,
    command: list[str],
    environment: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    ulimits: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "name": name,
        "image": image,
        "essential": True,
        "cpu": cpu,
        "memory": memory,
        "command": command,
        "privileged": False,
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": v, "containerPath": path, "readOnly": False} for v, path in SCRATCH.items()],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": stream_prefix},
        },
    }
    if environment:
        definition["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
    if secrets:
        definition["secrets"] = [{"name": k, "valueFrom": v} for k, v in secrets.items()]
    if ulimits:
        definition["ulimits"] = ulimits
    return definition


def fargate_task_definition(
    name: str,
    *,
    family: str,
    cpu: int,
    memory: int,
    containers: pulumi.Output[list[dict[str, Any]]],
    execution_role_arn: pulumi.Input[str],
    task_role_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.ecs.TaskDefinition:
    return aws.ecs.TaskDefinition(
        name,
        family=family,
        cpu=str(cpu),
        memory=str(memory),
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
            operating_system_family="LINUX", cpu_architecture="X86_64"
        ),
        volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=volume) for volume in SCRATCH],
        execution_role_arn=execution_role_arn,
        task_role_arn=task_role_arn,
        container_definitions=containers.apply(json.dumps),
        opts=opts,
    )
