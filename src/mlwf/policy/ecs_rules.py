"""ECS guardrails on task definitions and services."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from mlwf.policy.helpers import as_list, config_value, loads

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def containers(args: ResourceValidationArgs) -> list[Mapping[str, Any]]:
    if args.resource_type != TASK_DEFINITION:
        return []
    parsed = loads(args.props.get("containerDefinitions"))
    return [c for c in as_list(parsed) if isinstance(c, Mapping)]


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None if it is (a digest or a non-latest tag)."""
    if DIGEST.search(image):
        return None
    name = image.split("/")[-1]  # a registry's port is in the first part, a tag in the last
    if "@" in name:
        return "has a malformed digest (expected @sha256: and 64 hex digits)"
    if ":" not in name:
        return "has no tag (it floats to latest)"
    if name.split(":")[-1] == "latest":
        return "uses the mutable tag 'latest'"
    return None


def _pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for container in containers(args):
        problem = image_problem(str(container.get("image", "")))
        if problem:
            report_violation(f"container '{container.get('name')}' image '{container.get('image')}' {problem}")


ecs_image_pinned = ResourceValidationPolicy(
    name="ecs-image-pinned",
    description="ECS container images must be pinned by digest or an immutable tag (never ':latest' or untagged).",
    validate=_pinned,
)


def _awslogs(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for container in containers(args):
        driver = (container.get("logConfiguration") or {}).get("logDriver")
        if driver != "awslogs":
            report_violation(f"container '{container.get('name')}' does not ship logs with awslogs")


ecs_awslogs = ResourceValidationPolicy(
    name="ecs-awslogs",
    description="ECS containers must send their logs to CloudWatch (awslogs driver).",
    validate=_awslogs,
)


def _not_privileged(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for container in containers(args):
        if container.get("privileged") is True:
            report_violation(f"container '{container.get('name')}' runs privileged")


ecs_not_privileged = ResourceValidationPolicy(
    name="ecs-not-privileged",
    description="ECS containers must not run privileged.",
    validate=_not_privileged,
)


def _secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for container in containers(args):
        for variable in as_list(container.get("environment")):
            name = str(variable.get("name", ""))
            if SECRET_NAME.search(name):
                report_violation(
                    f"container '{container.get('name')}' passes '{name}' as a plain environment value; use 'secrets'"
                )


ecs_secrets_not_in_environment = ResourceValidationPolicy(
    name="ecs-secrets-not-in-environment",
    description="Keys, tokens and passwords must reach ECS containers as 'secrets', never as plain environment values.",
    validate=_secrets,
)


def _no_public_ip(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "aws:ecs/service:Service":
        network = args.props.get("networkConfiguration") or {}
        if network.get("assignPublicIp") is True:
            report_violation(f"ECS service '{args.name}' assigns public IPs to its tasks")


ecs_no_public_ip = ResourceValidationPolicy(
    name="ecs-no-public-ip",
    description="ECS services must not assign public IPs to their tasks.",
    validate=_no_public_ip,
)


def _size_cap(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != TASK_DEFINITION:
        return
    config = args.get_config()
    for field, key in (("cpu", "maxCpu"), ("memory", "maxMemoryMib")):
        cap = config_value(config, key, None)
        value = args.props.get(field)
        if cap is not None and value is not None and float(value) > float(cap):
            # Config numbers reach the analyzer as JSON numbers (floats): print them as numbers.
            value, cap = f"{float(value):g}", f"{float(cap):g}"
            report_violation(
                f"task definition '{args.name}' asks for {field} {value}, above this environment's cap of {cap}"
            )


ecs_task_size_cap = ResourceValidationPolicy(
    name="ecs-task-size-cap",
    description="ECS task sizes (Dask workers included) must stay within the environment's CPU and memory caps.",
    validate=_size_cap,
    config_schema=PolicyConfigSchema(
        properties={"maxCpu": {"type": "integer", "minimum": 256}, "maxMemoryMib": {"type": "integer", "minimum": 512}}
    ),
)

POLICIES = [
    ecs_image_pinned,
    ecs_awslogs,
    ecs_not_privileged,
    ecs_secrets_not_in_environment,
    ecs_no_public_ip,
    ecs_task_size_cap,
]
