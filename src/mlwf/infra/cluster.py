"""The compute stack: the ECS cluster with FARGATE and FARGATE_SPOT, the least-privilege roles
of Dask and flow-run tasks, the Dask scheduler and worker task definitions, the Dask log group,
and the runtime settings flows read at run time (the SSM parameter ``/<prefix>/compute``) so
nobody copies IDs by hand.

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

from mlwf.contract import DASK_LOG_STREAM_PREFIX, SMOKE_ROOT, runtime_parameter_name
from mlwf.infra.iam import ECR_PULL, ECS_TASKS, LOG_WRITE, document, ecs_task_role, statement, trust_policy
from mlwf.settings import Settings
from mlwf.workloads import DataAccess

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
        self.log_group = aws.cloudwatch.LogGroup(
            "dask",
            name=f"/mlwf/{settings.name}/dask",
            retention_in_days=settings.log_retention_days,
            opts=self._child,
        )
        self.execution_role = self._create_execution_role()
        self.dask_role = self._role("dask-task", [*self._data_statements()])
        self.runtime_parameter_name = runtime_parameter_name(settings.name_prefix)
        self.task_definitions = {role: self._create_dask_task_definition(role) for role in DASK_ROLES}
        self.flow_role = self._role("flow-run-task", [*self._data_statements(), *self._cluster_statements()])
        self.runtime_parameter = self._publish_runtime()
        self._schedule_reaper()
        self.register_outputs({"cluster_arn": self.cluster.arn, "runtime_parameter": self.runtime_parameter.name})

    def _role(self, name: str, statements: list[dict[str, Any]]) -> aws.iam.Role:
        return ecs_task_role(name, f"{self._args.settings.name_prefix}-{name}", statements, self._child)

    def _create_execution_role(self) -> aws.iam.Role:
        """Pulls the image and ships logs for every platform task; nothing else."""
        return self._role(
            "task-execution",
            [
                statement(ECR_PULL, [self._args.repository_arn]),
                statement(["ecr:GetAuthorizationToken"], ["*"]),  # the action has no resource-level form
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
            ],
        )

    def _data_statements(self) -> list[dict[str, Any]]:
        """Exactly the data prefixes the workloads declare (and, for what they write, the same
        prefixes under the smoke runs' root): read where they read, write where they write."""
        bucket_arn, data = self._args.data_bucket_arn, self._args.data
        writes = [*data.writes, *(f"{SMOKE_ROOT}/{p}" for p in data.writes)]
        readable = [*writes, *data.reads]

        def objects(prefixes: list[str]) -> list[pulumi.Output[str]]:
            # the prefix itself too: s3fs asks whether "<prefix>" is an object before listing it
            return [pulumi.Output.concat(bucket_arn, f"/{p}{tail}") for p in prefixes for tail in ("", "/*")]

        statements = [
            statement(
                ["s3:ListBucket"],
                [bucket_arn],
                {"StringLike": {"s3:prefix": [*readable, *(f"{p}/*" for p in readable)]}},
            ),
            # s3fs (under dask's to_parquet) asks whether the bucket exists before writing into
            # it, by HeadBucket (s3:ListBucket without a prefix: refused here) then
            # GetBucketLocation; if both fail it tries CreateBucket.
            statement(["s3:GetBucketLocation"], [bucket_arn]),
            statement(["s3:GetObject"], objects(readable)),
            statement(["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"], objects(writes)),
            statement(["kms:Decrypt", "kms:GenerateDataKey"], [self._args.kms_key_arn]),
            statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
        ]
        return statements

    def _create_dask_task_definition(self, role: str) -> aws.ecs.TaskDefinition:
        """The scheduler's or the workers' task definition. dask-cloudprovider overrides the
        command and environment per task (``dask-scheduler --idle-timeout ...``,
        ``dask-worker <scheduler> --name ...``); everything else is fixed here: the pinned
        image, the size from the settings (container-level memory too), logs to the Dask log
        group without ``awslogs-create-group`` (the group exists; the execution role may not
        create groups)."""
        settings, args = self._args.settings, self._args
        cpu, memory = (
            (settings.dask.scheduler_cpu, settings.dask.scheduler_memory_mib)
            if role == "scheduler"
            else (settings.dask.worker_cpu, settings.dask.worker_memory_mib)
        )
        containers = pulumi.Output.all(args.image, self.log_group.name).apply(
            lambda values: json.dumps(
                [
                    {
                        "name": f"dask-{role}",
                        "image": values[0],
                        "essential": True,
                        "cpu": cpu,
                        "memory": memory,
                        "command": [f"dask-{role}"],
                        "ulimits": [{"name": "nofile", "softLimit": 65535, "hardLimit": 65535}],
                        "privileged": False,
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": values[1],
                                "awslogs-region": settings.region,
                                "awslogs-stream-prefix": DASK_LOG_STREAM_PREFIX,
                            },
                        },
                    }
                ]
            )
        )
        return aws.ecs.TaskDefinition(
            f"dask-{role}",
            family=f"{settings.name_prefix}-dask-{role}",
            cpu=str(cpu),
            memory=str(memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture="X86_64"
            ),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.dask_role.arn,
            container_definitions=containers,
            opts=self._child,
        )

    def _cluster_statements(self) -> list[dict[str, Any]]:
        """What a flow run needs to start, watch and stop its own Dask cluster on this ECS
        cluster: exactly the calls dask-cloudprovider's FargateCluster makes when everything
        (cluster, task definitions, roles, log group, network) is pre-created."""
        settings = self._args.settings
        region, account = settings.region, settings.account_id
        cluster_arn = self.cluster.arn
        in_cluster = {"ArnEquals": {"ecs:cluster": cluster_arn}}
        tasks = pulumi.Output.concat(f"arn:aws:ecs:{region}:{account}:task/", self.cluster.name, "/*")
        families = [
            f"arn:aws:ecs:{region}:{account}:task-definition/{settings.name_prefix}-dask-{role}:*"
            for role in DASK_ROLES
        ]
        return [
            statement(["ecs:DescribeClusters"], [cluster_arn]),
            statement(["ecs:RunTask"], families, in_cluster),
            statement(["ecs:DescribeTasks", "ecs:StopTask"], [tasks], in_cluster),
            # RunTask with tags needs ecs:TagResource, allowed only while RunTask creates the task.
            statement(["ecs:TagResource"], [tasks], {"StringEquals": {"ecs:CreateAction": "RunTask"}}),
            # Neither call has a resource-level form in IAM (FargateCluster reads the account's
            # taskLongArnFormat setting before tagging, and each task's ENI for its address).
            statement(["ecs:ListAccountSettings", "ec2:DescribeNetworkInterfaces"], ["*"]),
            statement(
                ["iam:PassRole"],
                [self.execution_role.arn, self.dask_role.arn],
                {"StringEquals": {"iam:PassedToService": ECS_TASKS}},
            ),
            statement(["logs:GetLogEvents"], [self.log_group.arn.apply(lambda a: f"{a}:*")]),  # cluster.logs()
            statement(["ssm:GetParameter"], [f"arn:aws:ssm:{region}:{account}:parameter{self.runtime_parameter_name}"]),
        ]

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

    def _schedule_reaper(self) -> None:
        """Every hour, `mlwf reap` stops what crashed flow runs left behind (older than the
        environment's maximum cluster lifetime), as a Fargate task on this cluster."""
        settings, args = self._args.settings, self._args
        region, account = settings.region, settings.account_id
        reaper_role = self._role(
            "reaper-task",
            [
                statement(
                    [
                        "ecs:ListClusters",
                        "ecs:ListTaskDefinitions",
                        "ecs:DescribeTaskDefinition",
                        "ecs:DeregisterTaskDefinition",
                    ],
                    ["*"],  # these actions have no resource-level form in IAM
                ),
                statement(
                    ["ecs:DescribeClusters", "ecs:DeleteCluster", "ecs:ListTasks"],
                    [f"arn:aws:ecs:{region}:{account}:*"],
                ),
                statement(["ecs:DescribeTasks", "ecs:StopTask"], [f"arn:aws:ecs:{region}:{account}:task/*"]),
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
            ],
        )
        container = pulumi.Output.all(args.image, self.log_group.name).apply(
            lambda values: json.dumps(
                [
                    {
                        "name": "reaper",
                        "image": values[0],
                        "essential": True,
                        "memory": 512,
                        "command": ["mlwf", "reap", "--env", settings.name],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": values[1],
                                "awslogs-region": region,
                                "awslogs-stream-prefix": "reaper",
                            },
                        },
                    }
                ]
            )
        )
        task = aws.ecs.TaskDefinition(
            "reaper",
            family=f"{settings.name_prefix}-reaper",
            cpu="256",
            memory="512",
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=self.execution_role.arn,
            task_role_arn=reaper_role.arn,
            container_definitions=container,
            opts=self._child,
        )
        scheduler_role = aws.iam.Role(
            "reaper-schedule",
            name=f"{settings.name_prefix}-reaper-schedule",
            assume_role_policy=trust_policy("scheduler.amazonaws.com"),
            opts=self._child,
        )
        aws.iam.RolePolicy(
            "reaper-schedule",
            role=scheduler_role.id,
            policy=document(
                statement(["ecs:RunTask"], [task.arn], {"ArnEquals": {"ecs:cluster": self.cluster.arn}}),
                statement(
                    ["iam:PassRole"],
                    [self.execution_role.arn, reaper_role.arn],
                    {"StringEquals": {"iam:PassedToService": ECS_TASKS}},
                ),
            ),
            opts=self._child,
        )
        aws.scheduler.Schedule(
            "reaper",
            name=f"{settings.name_prefix}-reaper",
            schedule_expression="rate(1 hour)",
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=self.cluster.arn,
                role_arn=scheduler_role.arn,
                ecs_parameters=aws.scheduler.ScheduleTargetEcsParametersArgs(
                    task_definition_arn=task.arn,
                    launch_type="FARGATE",
                    network_configuration=aws.scheduler.ScheduleTargetEcsParametersNetworkConfigurationArgs(
                        subnets=args.private_subnet_ids,
                        security_groups=[args.flow_security_group_id],
                        assign_public_ip=False,
                    ),
                ),
            ),
            opts=self._child,
        )


def compute_program(ctx: Any) -> dict[str, Any]:
    """Stack program: ECS cluster, roles, log group and the published runtime."""
    compute = DaskCompute(
        "compute",
        DaskComputeArgs(
            settings=ctx.settings,
            image=pulumi.Output.concat(ctx.output("storage", "repository_url"), ":", ctx.image_tag),
            vpc_id=ctx.output("network", "vpc_id"),
            private_subnet_ids=ctx.output("network", "private_subnet_ids"),
            scheduler_security_group_id=ctx.output("network", "scheduler_security_group_id"),
            worker_security_group_id=ctx.output("network", "worker_security_group_id"),
            flow_security_group_id=ctx.output("network", "flow_security_group_id"),
            data_bucket=ctx.output("storage", "data_bucket"),
            data_bucket_arn=ctx.output("storage", "data_bucket_arn"),
            kms_key_arn=ctx.output("storage", "kms_key_arn"),
            repository_arn=ctx.output("storage", "repository_arn"),
            data=ctx.data,
        ),
        ctx.opts,
    )
    return {
        "cluster_arn": compute.cluster.arn,
        "cluster_name": compute.cluster.name,
        "execution_role_arn": compute.execution_role.arn,
        "dask_task_role_arn": compute.dask_role.arn,
        "flow_task_role_arn": compute.flow_role.arn,
        "log_group_name": compute.log_group.name,
        "runtime_parameter": compute.runtime_parameter.name,
    }
