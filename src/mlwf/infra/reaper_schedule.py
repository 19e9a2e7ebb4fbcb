"""Every hour, `mlwf reap` stops what crashed flow runs left behind (tasks older than the
environment's maximum cluster lifetime, and their TLS secrets), as a Fargate task in the
platform's own cluster. Its resources are children of the compute stack's component."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.contract import REAPER_METRICS_NAMESPACE
from mlwf.delivery import boundary_arn
from mlwf.infra import grants
from mlwf.infra.containers import container, fargate_task_definition
from mlwf.infra.iam import ECS_TASKS, LOG_WRITE, document, statement, trust_policy
from mlwf.settings import Settings

REAPER_CPU, REAPER_MEMORY = 256, 512


def schedule_reaper(
    compute: Any,
    settings: Settings,
    image: pulumi.Input[str],
    subnets: pulumi.Input[list[str]],
    security_group: pulumi.Input[str],
) -> aws.scheduler.Schedule:
    region, account = settings.region, settings.account_id
    child = pulumi.ResourceOptions(parent=compute)
    reaper_role = compute.role(
        "reaper-task",
        [
            *grants.reap(
                region,
                account,
                compute.cluster.arn,
                compute.cluster.name,
                compute.runtime_parameter_name,
                compute.tls_secrets,
            ),
            statement(LOG_WRITE, [compute.log_group.arn.apply(lambda a: f"{a}:*")]),
            # what it found, for the alarms (mlwf.infra.alarms); PutMetricData has no resource form
            statement(
                ["cloudwatch:PutMetricData"],
                ["*"],
                {"StringEquals": {"cloudwatch:namespace": REAPER_METRICS_NAMESPACE}},
            ),
        ],
    )
    containers = pulumi.Output.all(image, compute.log_group.name).apply(
        lambda values: [
            container(
                "reaper",
                values[0],
                values[1],
                region,
                "reaper",
                cpu=REAPER_CPU,
                memory=REAPER_MEMORY,
                command=["mlwf", "reap", "--env", settings.name],
                environment={"AWS_DEFAULT_REGION": region},
            )
        ]
    )
    task = fargate_task_definition(
        "reaper",
        family=f"{settings.name_prefix}-reaper",
        cpu=REAPER_CPU,
        memory=REAPER_MEMORY,
        containers=containers,
        execution_role_arn=compute.execution_role.arn,
        task_role_arn=reaper_role.arn,
        opts=child,
    )
    schedule_name = f"{settings.name_prefix}-reaper"
    scheduler_role = aws.iam.Role(
        "reaper-schedule",
        name=f"{settings.name_prefix}-reaper-schedule",
        permissions_boundary=boundary_arn(settings),
        assume_role_policy=trust_policy(
            "scheduler.amazonaws.com", account, f"arn:aws:scheduler:{region}:{account}:schedule/default/{schedule_name}"
        ),
        opts=child,
    )
    aws.iam.RolePolicy(
        "reaper-schedule",
        role=scheduler_role.id,
        policy=document(
            statement(["ecs:RunTask"], [task.arn], {"ArnEquals": {"ecs:cluster": compute.platform_cluster.arn}}),
            statement(
                ["iam:PassRole"],
                [compute.execution_role.arn, reaper_role.arn],
                {"StringEquals": {"iam:PassedToService": ECS_TASKS}},
            ),
        ),
        opts=child,
    )
    return aws.scheduler.Schedule(
        "reaper",
        name=schedule_name,
        schedule_expression="rate(1 hour)",
        flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
        target=aws.scheduler.ScheduleTargetArgs(
            arn=compute.platform_cluster.arn,
            role_arn=scheduler_role.arn,
            ecs_parameters=aws.scheduler.ScheduleTargetEcsParametersArgs(
                task_definition_arn=task.arn,
                launch_type="FARGATE",
                network_configuration=aws.scheduler.ScheduleTargetEcsParametersNetworkConfigurationArgs(
                    subnets=subnets, security_groups=[security_group], assign_public_ip=False
                ),
            ),
        ),
        opts=child,
    )
