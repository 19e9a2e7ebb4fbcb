"""The prefect-agent stack: a Prefect worker as an ECS Fargate service serving the
environment's ECS work pool, what it runs for each flow run (`mlwf.stacks.flow_runs`), and the
task-state events its observer reads to notice crashed runs (`mlwf.stacks.task_events`). The API
key lives in a Secrets Manager secret this stack creates empty; an administrator puts its value
(`mlwf secrets set`, `mlwf.secrets`), so it is in no Pulumi config or state. It reaches the
worker and every flow-run task only as an ECS ``secrets`` entry: never in plain text in code,
state, task definitions, RunTask requests or logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.contract import api_key_secret_name, task_events_queue_name
from mlwf.settings import Settings
from mlwf.stacks.containers import container, fargate_task_definition
from mlwf.stacks.context import StackContext
from mlwf.stacks.flow_runs import FlowRuns, FlowRunsArgs
from mlwf.stacks.iam import ECR_PULL, ECS_TASKS, LOG_WRITE, ecs_task_role, statement
from mlwf.stacks.keys import customer_key, key_policy, use_through
from mlwf.stacks.task_events import TaskEvents, TaskEventsArgs

WORKER_CPU, WORKER_MEMORY = 512, 1024


@dataclass(frozen=True)
class PrefectWorkerArgs:
    settings: Settings
    image: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]  # where flow runs and their Dask clusters run
    cluster_name: pulumi.Input[str]
    platform_cluster_arn: pulumi.Input[str]  # where the worker runs, apart from run code
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    security_group_id: pulumi.Input[str]
    logs_kms_key_arn: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    flow_task_role_arn: pulumi.Input[str]


class PrefectWorker(pulumi.ComponentResource):
    def __init__(self, name: str, args: PrefectWorkerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlwf:agent:PrefectWorker", name, None, opts)
        self._args = args
        settings = args.settings
        self._child = pulumi.ResourceOptions(parent=self)
        # The API key's own key: used only through Secrets Manager, by this account's roles whose
        # IAM policies allow it (the worker's and the flow runs' execution roles).
        self.secrets_key = customer_key(
            "secrets",
            settings,
            "secrets",
            key_policy(settings, use_through(settings, "secretsmanager")),
            self._child,
        )
        self.secret = aws.secretsmanager.Secret(
            "prefect-api-key",
            name=api_key_secret_name(settings.name_prefix),  # its value: `mlwf secrets set`
            kms_key_id=self.secrets_key.arn,
            recovery_window_in_days=30 if settings.deletion_protection else 7,
            opts=self._child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            "prefect-worker",
            name=f"/mlwf/{settings.name}/prefect-worker",
            retention_in_days=settings.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            opts=self._child,
        )
        self.execution_role = self._role(
            "prefect-worker-execution",
            [
                statement(ECR_PULL, [args.repository_arn]),
                statement(["ecr:GetAuthorizationToken"], ["*"]),
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
                statement(["secretsmanager:GetSecretValue"], [self.secret.arn]),
                statement(["kms:Decrypt"], [self.secrets_key.arn]),
            ],
        )
        self.events = TaskEvents("task-events", TaskEventsArgs(settings, args.cluster_arn), self._child)
        self.flow_runs = FlowRuns(
            "flow-runs",
            FlowRunsArgs(
                settings=settings,
                image=args.image,
                api_key_secret_arn=self.secret.arn,
                secrets_key_arn=self.secrets_key.arn,
                logs_kms_key_arn=args.logs_kms_key_arn,
                repository_arn=args.repository_arn,
                flow_task_role_arn=args.flow_task_role_arn,
                cluster_arn=args.cluster_arn,
                vpc_id=args.vpc_id,
                private_subnet_ids=args.private_subnet_ids,
                security_group_id=args.security_group_id,
            ),
            self._child,
        )
        self.task_role = self._role("prefect-worker", self._worker_statements())
        self.service = self._create_service()
        self.register_outputs({"service": self.service.name, "secret_arn": self.secret.arn})

    def _role(self, name: str, statements: list[dict[str, Any]]) -> aws.iam.Role:
        settings = self._args.settings
        return ecs_task_role(name, f"{settings.name_prefix}-{name}", statements, settings, self._child)

    def _worker_statements(self) -> list[dict[str, Any]]:
        """What prefect-aws's ECS worker calls (submitting a run, cancelling it, its observer):
        run the pre-registered flow-run task definition on the platform's cluster, passing only
        the flow-run roles; read its own events queue; read flow-run logs for crash reports."""
        settings, args = self._args.settings, self._args
        region, account = settings.region, settings.account_id
        in_cluster = {"ArnEquals": {"ecs:cluster": args.cluster_arn}}
        tasks = pulumi.Output.concat(f"arn:aws:ecs:{region}:{account}:task/", args.cluster_name, "/*")
        family = f"arn:aws:ecs:{region}:{account}:task-definition/{settings.name_prefix}-flow-run:*"
        return [
            statement(["ecs:RunTask"], [family], in_cluster),
            statement(["ecs:DescribeTaskDefinition"], ["*"]),  # no resource-level form in IAM
            statement(["ecs:StopTask", "ecs:DescribeTasks"], [tasks], in_cluster),
            statement(["ecs:TagResource"], [tasks], {"StringEquals": {"ecs:CreateAction": "RunTask"}}),
            statement(
                ["iam:PassRole"],
                [args.flow_task_role_arn, self.flow_runs.execution_role.arn],
                {"StringEquals": {"iam:PassedToService": ECS_TASKS}},
            ),
            statement(
                ["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
                [self.events.queue.arn],
            ),
            statement(["logs:GetLogEvents"], [self.flow_runs.log_group.arn.apply(lambda a: f"{a}:*")]),
            # The worker checks that the work pool's subnets belong to its VPC; no resource-level form.
            statement(["ec2:DescribeSubnets", "ec2:DescribeVpcs"], ["*"]),
        ]

    def _create_service(self) -> aws.ecs.Service:
        args = self._args
        settings = args.settings
        containers = pulumi.Output.all(args.image, self.log_group.name, self.secret.arn).apply(
            lambda values: [
                container(
                    "prefect-worker",
                    values[0],
                    values[1],
                    settings.region,
                    "prefect-worker",
                    cpu=WORKER_CPU,
                    memory=WORKER_MEMORY,
                    command=["prefect", "worker", "start", "--pool", settings.prefect.work_pool, "--type", "ecs"],
                    environment={
                        "PREFECT_API_URL": str(settings.prefect.api_url),
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                        "AWS_DEFAULT_REGION": settings.region,
                        # The observer reads task state changes here (its default name is another).
                        "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME": task_events_queue_name(
                            settings.name_prefix
                        ),
                    },
                    secrets={"PREFECT_API_KEY": values[2]},
                )
            ]
        )
        task = fargate_task_definition(
            "prefect-worker",
            family=f"{settings.name_prefix}-prefect-worker",
            cpu=WORKER_CPU,
            memory=WORKER_MEMORY,
            containers=containers,
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            opts=self._child,
        )
        return aws.ecs.Service(
            "prefect-worker",
            name=f"{settings.name_prefix}-prefect-worker",
            cluster=args.platform_cluster_arn,
            task_definition=task.arn,
            desired_count=1,
            launch_type="FARGATE",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.private_subnet_ids, security_groups=[args.security_group_id], assign_public_ip=False
            ),
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            opts=self._child,
        )


def agent_program(ctx: StackContext) -> dict[str, Any]:
    """Stack program: the Prefect worker service of one environment."""
    worker = PrefectWorker(
        "prefect-agent",
        PrefectWorkerArgs(
            settings=ctx.settings,
            image=ctx.image(),
            cluster_arn=ctx.output("compute", "cluster_arn"),
            cluster_name=ctx.output("compute", "cluster_name"),
            platform_cluster_arn=ctx.output("compute", "platform_cluster_arn"),
            vpc_id=ctx.output("network", "vpc_id"),
            private_subnet_ids=ctx.output("network", "private_subnet_ids"),
            security_group_id=ctx.output("network", "flow_security_group_id"),
            logs_kms_key_arn=ctx.output("network", "logs_kms_key_arn"),
            repository_arn=ctx.output("storage", "repository_arn"),
            flow_task_role_arn=ctx.output("compute", "flow_task_role_arn"),
        ),
        ctx.opts,
    )
    return {
        "service_name": worker.service.name,
        "worker_role_arn": worker.task_role.arn,
        "api_key_secret_arn": worker.secret.arn,
        "work_pool_parameter": worker.flow_runs.parameter.name,
    }
