"""IAM documents built as data: trust policies for service principals and least-privilege
statements. Pure functions, so the policy pack and tests can read what the stacks grant."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.delivery import boundary_arn


def trust_policy(service: str, account: str, source_arn: str) -> str:
    """A role that only ``service`` (e.g. ``ecs-tasks.amazonaws.com``) may assume, and only on
    behalf of this account's resources matching ``source_arn`` (the confused-deputy guard)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": source_arn},
                    },
                }
            ],
        }
    )


def statement(actions: list[str], resources: list[Any], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        body["Condition"] = condition
    return body


def document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    """A policy document whose resources may be Outputs (ARNs of other resources)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


ECR_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
LOG_WRITE = ["logs:CreateLogStream", "logs:PutLogEvents"]


ECS_TASKS = "ecs-tasks.amazonaws.com"


def ecs_task_role(
    name: str, physical_name: str, statements: list[dict[str, Any]], settings: Any, opts: pulumi.ResourceOptions
) -> aws.iam.Role:
    """A role only this account's ECS tasks can assume, with exactly these statements as its
    inline policy, under the environment's permissions boundary (the bootstrap stack's)."""
    region, account = settings.region, settings.account_id
    trust = trust_policy(ECS_TASKS, account, f"arn:aws:ecs:{region}:{account}:*")
    role = aws.iam.Role(
        name,
        name=physical_name,
        assume_role_policy=trust,
        permissions_boundary=boundary_arn(settings),
        opts=opts,
    )
    aws.iam.RolePolicy(name, role=role.id, policy=document(*statements), opts=opts)
    return role
