"""What the Prefect worker runs for each flow run, registered once by the prefect-agent stack:
the flow-run task definition (the pinned image, the Prefect API key only as an ECS ``secrets``
entry, logs without ``awslogs-create-group``), its execution role and log group, and the ECS
work pool's job variables published for `mlwf flows deploy` (SSM ``/<prefix>/work-pool``).

Why here: the API key's secret lives in this stack, and only the execution role that starts
flow-run tasks may read it. The compute stack is upstream (its cluster, flow-run task role and
network are inputs here); granting the read from compute would need this stack's secret there,
a cycle. With a pre-registered task definition the worker registers nothing (no task
definition per run to leak, no ``ecs:RegisterTaskDefinition`` on ``*`` for the worker role), and
the policy pack sees the flow-run task definition like any other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.contract import (
    ENVIRONMENT_TAG,
    FLOW_RUN_CONTAINER,
    FLOW_RUN_LOG_STREAM_PREFIX,
    PLATFORM,
    PLATFORM_TAG,
    work_pool_parameter_name,
)
from mlwf.settings import Settings
from mlwf.stacks.containers import container, fargate_task_definition
from mlwf.stacks.iam import ECR_PULL, LOG_WRITE, ecs_task_role, statement

FLOW_RUN_COMMAND = ["prefect", "flow-run", "execute"]


@dataclass(frozen=True)
class FlowRunsArgs:
    settings: Settings
    image: pulumi.Input[str]
    api_key_secret_arn: pulumi.Input[str]
    secrets_key_arn: pulumi.Input[str]
    logs_kms_key_arn: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    flow_task_role_arn: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    security_group_id: pulumi.Input[str]


class FlowRuns(pulumi.ComponentResource):
    def __init__(self, name: str, args: FlowRunsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlwf:agent:FlowRuns", name, None, opts)
        self._args = args
        settings = args.settings
        self._child = pulumi.ResourceOptions(parent=self)
        self.log_group = aws.cloudwatch.LogGroup(
            "flow-runs",
            name=f"/mlwf/{settings.name}/flow-runs",
            retention_in_days=settings.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            opts=self._child,
        )
        self.execution_role = ecs_task_role(
            "flow-run-execution",
            f"{settings.name_prefix}-flow-run-execution",
            [
                statement(ECR_PULL, [args.repository_arn]),
                statement(["ecr:GetAuthorizationToken"], ["*"]),  # the action has no resource-level form
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
                statement(["secretsmanager:GetSecretValue"], [args.api_key_secret_arn]),
                statement(["kms:Decrypt"], [args.secrets_key_arn]),
            ],
            settings,
            self._child,
        )
        self.task_definition = self._create_task_definition()
        self.job_variables = self._job_variables()
        self.parameter = aws.ssm.Parameter(
            "work-pool",
            name=work_pool_parameter_name(settings.name_prefix),
            type="String",
            insecure_value=self.job_variables.apply(lambda v: json.dumps(v, sort_keys=True)),  # IDs only
            description="ECS work pool job variables for flow runs (read by mlwf flows deploy)",
            opts=self._child,
        )
        self.register_outputs({"task_definition": self.task_definition.arn, "parameter": self.parameter.name})

    def _create_task_definition(self) -> aws.ecs.TaskDefinition:
        args = self._args
        settings = args.settings
        prefect = settings.prefect
        containers = pulumi.Output.all(args.image, self.log_group.name, args.api_key_secret_arn).apply(
            lambda values: [
                container(
                    FLOW_RUN_CONTAINER,
                    values[0],
                    values[1],
                    settings.region,
                    FLOW_RUN_LOG_STREAM_PREFIX,
                    cpu=prefect.flow_run_cpu,
                    memory=prefect.flow_run_memory_mib,
                    command=FLOW_RUN_COMMAND,
                    environment={"PREFECT_API_URL": str(prefect.api_url), "AWS_DEFAULT_REGION": settings.region},
                    secrets={"PREFECT_API_KEY": values[2]},
                )
            ]
        )
        return fargate_task_definition(
            "flow-run",
            family=f"{settings.name_prefix}-flow-run",
            cpu=prefect.flow_run_cpu,
            memory=prefect.flow_run_memory_mib,
            containers=containers,
            execution_role_arn=self.execution_role.arn,
            task_role_arn=args.flow_task_role_arn,
            opts=self._child,
        )

    def _job_variables(self) -> pulumi.Output[dict[str, Any]]:
        """The ECS work pool's job variables (prefect-aws's names). With ``task_definition_arn``
        the worker only describes the definition; ``prefect_api_key_secret_arn`` makes it drop
        its own key from the task's environment overrides (the task reads it from the secret)."""
        args = self._args
        settings = args.settings
        return pulumi.Output.all(
            cluster=args.cluster_arn,
            task_definition_arn=self.task_definition.arn,
            vpc_id=args.vpc_id,
            subnets=args.private_subnet_ids,
            security_group=args.security_group_id,
            task_role_arn=args.flow_task_role_arn,
            secret_arn=args.api_key_secret_arn,
        ).apply(
            lambda v: {
                "cluster": v["cluster"],
                "task_definition_arn": v["task_definition_arn"],
                "container_name": FLOW_RUN_CONTAINER,
                "launch_type": "FARGATE",
                "vpc_id": v["vpc_id"],
                "network_configuration": {
                    "subnets": list(v["subnets"]),
                    "securityGroups": [v["security_group"]],
                    "assignPublicIp": "DISABLED",
                },
                "task_role_arn": v["task_role_arn"],
                "prefect_api_key_secret_arn": v["secret_arn"],
                "labels": {PLATFORM_TAG: PLATFORM, ENVIRONMENT_TAG: settings.name},
            }
        )
