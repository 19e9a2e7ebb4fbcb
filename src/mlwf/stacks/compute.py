"""The compute stack: the ECS cluster of flow runs and their Dask clusters (FARGATE and
FARGATE_SPOT), a cluster of its own for the platform's services (the Prefect worker, the reaper:
run code, whose role may stop tasks in the first, cannot touch them), the least-privilege roles
of Dask and flow-run tasks (`mlwf.stacks.grants`), the Dask scheduler and worker task
definitions, the Dask log group, and the runtime settings flows read at run time (the SSM
parameter ``/<prefix>/compute``) so nobody copies IDs by hand.

The stack registers the Dask task definitions once per image, and flows pass their ARNs to
dask-cloudprovider: a run registers nothing (dask-cloudprovider never deregisters what it
registers, so every run leaked two task definitions), the flow-run role needs no
``ecs:RegisterTaskDefinition``, and the definitions are visible to the policy pack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.contract import DASK_LOG_STREAM_PREFIX, REAPER_METRICS_NAMESPACE, dask_tls_secrets_arn, runtime_parameter_name
from mlwf.delivery import boundary_arn
from mlwf.settings import Settings
from mlwf.stacks import grants
from mlwf.stacks.alarms import AlarmsArgs, EnvironmentAlarms
from mlwf.stacks.containers import container, fargate_task_definition
from mlwf.stacks.context import StackContext
from mlwf.stacks.iam import ECR_PULL, ECS_TASKS, LOG_WRITE, document, ecs_task_role, statement, trust_policy
from mlwf.workloads import DataAccess

REAPER_CPU, REAPER_MEMORY = 256, 512
DASK_ROLES = ("scheduler", "worker")  # container names dask-scheduler / dask-worker, as dask-cloudprovider expects


@dataclass(frozen=True)
class DaskComputeArgs:
    settings: Settings
    image: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    scheduler_security_group_id: pulumi.Input[str]
    worker_security_group_id: pulumi.Input[str]
    flow_security_group_id: pulumi.Input[str]
    data_bucket: pulumi.Input[str]
    data_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    logs_kms_key_arn: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    data: DataAccess  # what the workloads declare they read and write under the data root


class DaskCompute(pulumi.ComponentResource):
    def __init__(self, name: str, args: DaskComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlwf:compute:DaskCompute", name, None, opts)
        self._args = args
        settings = args.settings
        self._child = pulumi.ResourceOptions(parent=self)
        self.cluster = aws.ecs.Cluster(
            "dask",
            name=f"{settings.name_prefix}-dask",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            opts=self._child,
        )
        aws.ecs.ClusterCapacityProviders(
            "dask",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider="FARGATE", weight=1
                )
            ],
            opts=self._child,
        )
        self.platform_cluster = aws.ecs.Cluster(
            "platform",
            name=f"{settings.name_prefix}-platform",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            opts=self._child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            "dask",
            name=f"/mlwf/{settings.name}/dask",
            retention_in_days=settings.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            opts=self._child,
        )
        self.log_group_arn = self.log_group.arn
        self.runtime_parameter_name = runtime_parameter_name(settings.name_prefix)
        self.tls_secrets = dask_tls_secrets_arn(settings.region, settings.account_id, settings.name_prefix)
        self.execution_role = self._create_execution_role()
        self.dask_role = self.role(
            "dask-task",
            [
                *grants.data(args.data_bucket_arn, args.kms_key_arn, args.data, "dask"),
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
                statement(["secretsmanager:GetSecretValue"], [self.tls_secrets]),  # the run's certificates
            ],
        )
        self.task_definitions = {role: self._create_dask_task_definition(role) for role in DASK_ROLES}
        self.flow_role = self.role(
            "flow-run-task",
            [
                *grants.data(args.data_bucket_arn, args.kms_key_arn, args.data, "flow"),
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
                *grants.run_cluster(
                    settings.region,
                    settings.account_id,
                    self.cluster.arn,
                    self.cluster.name,
                    [f"{settings.name_prefix}-dask-{role}" for role in DASK_ROLES],
                    [self.execution_role.arn, self.dask_role.arn],
                    self.log_group.arn,
                    self.runtime_parameter_name,
                    self.tls_secrets,
                ),
            ],
        )
        self.runtime_parameter = self._publish_runtime()
        self.reaper_schedule = self._schedule_reaper()
        self.register_outputs({"cluster_arn": self.cluster.arn, "runtime_parameter": self.runtime_parameter.name})

    def role(self, name: str, statements: list[dict[str, Any]]) -> aws.iam.Role:
        """A task role of this stack named ``<prefix>-<name>``."""
        settings = self._args.settings
        return ecs_task_role(name, f"{settings.name_prefix}-{name}", statements, settings, self._child)

    def _schedule_reaper(self) -> aws.scheduler.Schedule:
        """Every hour, `mlwf reap` stops what crashed flow runs left behind (tasks older than the
        environment's maximum cluster lifetime, and their TLS secrets), as a Fargate task in the
        platform's own cluster, on the flow runs' private subnets and group."""
        settings, image = self._args.settings, self._args.image
        subnets, security_group = self._args.private_subnet_ids, self._args.flow_security_group_id
        region, account = settings.region, settings.account_id
        reaper_role = self.role(
            "reaper-task",
            [
                *grants.reap(
                    region,
                    account,
                    self.cluster.arn,
                    self.cluster.name,
                    self.runtime_parameter_name,
                    self.tls_secrets,
                ),
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
                # what it found, for the alarms (mlwf.stacks.alarms); PutMetricData has no resource form
                statement(
                    ["cloudwatch:PutMetricData"],
                    ["*"],
                    {"StringEquals": {"cloudwatch:namespace": REAPER_METRICS_NAMESPACE}},
                ),
            ],
        )
        containers = pulumi.Output.all(image, self.log_group.name).apply(
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
            execution_role_arn=self.execution_role.arn,
            task_role_arn=reaper_role.arn,
            opts=self._child,
        )
        schedule_name = f"{settings.name_prefix}-reaper"
        scheduler_role = aws.iam.Role(
            "reaper-schedule",
            name=f"{settings.name_prefix}-reaper-schedule",
            permissions_boundary=boundary_arn(settings),
            assume_role_policy=trust_policy(
                "scheduler.amazonaws.com",
                account,
                f"arn:aws:scheduler:{region}:{account}:schedule/default/{schedule_name}",
            ),
            opts=self._child,
        )
        aws.iam.RolePolicy(
            "reaper-schedule",
            role=scheduler_role.id,
            policy=document(
                statement(["ecs:RunTask"], [task.arn], {"ArnEquals": {"ecs:cluster": self.platform_cluster.arn}}),
                statement(
                    ["iam:PassRole"],
                    [self.execution_role.arn, reaper_role.arn],
                    {"StringEquals": {"iam:PassedToService": ECS_TASKS}},
                ),
            ),
            opts=self._child,
        )
        return aws.scheduler.Schedule(
            "reaper",
            name=schedule_name,
            schedule_expression="rate(1 hour)",
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=self.platform_cluster.arn,
                role_arn=scheduler_role.arn,
                ecs_parameters=aws.scheduler.ScheduleTargetEcsParametersArgs(
                    task_definition_arn=task.arn,
                    launch_type="FARGATE",
                    network_configuration=aws.scheduler.ScheduleTargetEcsParametersNetworkConfigurationArgs(
                        subnets=subnets, security_groups=[security_group], assign_public_ip=False
                    ),
                ),
            ),
            opts=self._child,
        )

    def _create_execution_role(self) -> aws.iam.Role:
        """Pulls the image and ships logs for every platform task of this stack; nothing else."""
        return self.role(
            "task-execution",
            [
                statement(ECR_PULL, [self._args.repository_arn]),
                statement(["ecr:GetAuthorizationToken"], ["*"]),  # the action has no resource-level form
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
            ],
        )

    def _create_dask_task_definition(self, role: str) -> aws.ecs.TaskDefinition:
        """The scheduler's or the workers' task definition. dask-cloudprovider overrides the
        command and environment per task (``dask-scheduler --idle-timeout ...``,
        ``dask-worker <scheduler> --name ...``); everything else is fixed here: the pinned
        image, the size from the settings (container-level memory too), the hardening of
        `mlwf.stacks.containers`."""
        settings, args = self._args.settings, self._args
        cpu, memory = (
            (settings.dask.scheduler_cpu, settings.dask.scheduler_memory_mib)
            if role == "scheduler"
            else (settings.dask.worker_cpu, settings.dask.worker_memory_mib)
        )
        containers = pulumi.Output.all(args.image, self.log_group.name).apply(
            lambda values: [
                container(
                    f"dask-{role}",
                    values[0],
                    values[1],
                    settings.region,
                    DASK_LOG_STREAM_PREFIX,
                    cpu=cpu,
                    memory=memory,
                    command=[f"dask-{role}"],
                    ulimits=[{"name": "nofile", "softLimit": 65535, "hardLimit": 65535}],
                )
            ]
        )
        return fargate_task_definition(
            f"dask-{role}",
            family=f"{settings.name_prefix}-dask-{role}",
            cpu=cpu,
            memory=memory,
            containers=containers,
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.dask_role.arn,
            opts=self._child,
        )

    def _publish_runtime(self) -> aws.ssm.Parameter:
        args = self._args
        value = pulumi.Output.all(
            cluster_arn=self.cluster.arn,
            vpc_id=args.vpc_id,
            private_subnets=args.private_subnet_ids,
            scheduler_security_group=args.scheduler_security_group_id,
            worker_security_group=args.worker_security_group_id,
            flow_security_group=args.flow_security_group_id,
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.dask_role.arn,
            flow_task_role_arn=self.flow_role.arn,
            log_group=self.log_group.name,
            image=args.image,
            data_root=pulumi.Output.concat("s3://", args.data_bucket),
            scheduler_task_definition_arn=self.task_definitions["scheduler"].arn,
            worker_task_definition_arn=self.task_definitions["worker"].arn,
        ).apply(lambda runtime: json.dumps(runtime, sort_keys=True))
        return aws.ssm.Parameter(
            "runtime",
            name=self.runtime_parameter_name,
            type="String",
            insecure_value=value,  # IDs only, no secret: readable in state and by reviewers
            description="Dask cluster runtime for flow runs (read by mlwf.runtime)",
            opts=self._child,
        )


def compute_program(ctx: StackContext) -> dict[str, Any]:
    """Stack program: ECS cluster, roles, log group and the published runtime."""
    compute = DaskCompute(
        "compute",
        DaskComputeArgs(
            settings=ctx.settings,
            image=ctx.image(),
            vpc_id=ctx.output("network", "vpc_id"),
            private_subnet_ids=ctx.output("network", "private_subnet_ids"),
            scheduler_security_group_id=ctx.output("network", "scheduler_security_group_id"),
            worker_security_group_id=ctx.output("network", "worker_security_group_id"),
            flow_security_group_id=ctx.output("network", "flow_security_group_id"),
            data_bucket=ctx.output("storage", "data_bucket"),
            data_bucket_arn=ctx.output("storage", "data_bucket_arn"),
            kms_key_arn=ctx.output("storage", "kms_key_arn"),
            logs_kms_key_arn=ctx.output("network", "logs_kms_key_arn"),
            repository_arn=ctx.output("storage", "repository_arn"),
            data=ctx.data,
        ),
        ctx.opts,
    )
    alarms = EnvironmentAlarms("alarms", AlarmsArgs(ctx.settings), ctx.opts)
    return {
        "alerts_topic_arn": alarms.topic.arn,
        "cluster_arn": compute.cluster.arn,
        "cluster_name": compute.cluster.name,
        "platform_cluster_arn": compute.platform_cluster.arn,
        "execution_role_arn": compute.execution_role.arn,
        "dask_task_role_arn": compute.dask_role.arn,
        "flow_task_role_arn": compute.flow_role.arn,
        "log_group_name": compute.log_group.name,
        "runtime_parameter": compute.runtime_parameter.name,
    }
