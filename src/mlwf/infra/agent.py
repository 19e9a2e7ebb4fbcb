"""The prefect-agent stack: a Prefect worker as an ECS Fargate service serving the
environment's ECS work pool, what it runs for each flow run (`mlwf.infra.flow_runs`), and the
task-state events its observer reads to notice crashed runs (`mlwf.infra.task_events`). The API
key lives in Secrets Manager, arrives as a Pulumi secret (`pulumi config set --secret
prefectApiKey`), and reaches the worker and every flow-run task only as an ECS ``secrets``
entry: never in plain text in code, state, task definitions, RunTask requests or logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.contract import task_events_queue_name
from mlwf.infra.flow_runs import FlowRuns, FlowRunsArgs
from mlwf.infra.iam import ECR_PULL, ECS_TASKS, LOG_WRITE, ecs_task_role, statement
from mlwf.infra.task_events import TaskEvents, TaskEventsArgs
from mlwf.settings import Settings

WORKER_CPU, WORKER_MEMORY = 512, 1024


@dataclass(frozen=True)
class PrefectWorkerArgs:
    settings: Settings
    api_key: pulumi.Output[str]  # a secret Output
    image: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    flow_task_role_arn: pulumi.Input[str]


class PrefectWorker(pulumi.ComponentResource):
    def __init__(self, name: str, args: PrefectWorkerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlwf:agent:PrefectWorker", name, None, opts)
        self._args = args
        settings = args.settings
        self._child = pulumi.ResourceOptions(parent=self)
        self.secret = aws.secretsmanager.Secret(
            "prefect-api-key",
            name=f"{settings.name_prefix}/prefect-api-key",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=30 if settings.deletion_protection else 7,
            opts=self._child,
        )
        aws.secretsmanager.SecretVersion(
            "prefect-api-key",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.secret(args.api_key),  # type: ignore[arg-type]
            opts=self._child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            "prefect-worker",
            name=f"/mlwf/{settings.name}/prefect-worker",
            retention_in_days=settings.log_retention_days,
            opts=self._child,
        )
        self.execution_role = self._role(
            "prefect-worker-execution",
            [
                statement(ECR_PULL, [args.repository_arn]),
                statement(["ecr:GetAuthorizationToken"], ["*"]),
                statement(LOG_WRITE, [self.log_group.arn.apply(lambda a: f"{a}:*")]),
                statement(["secretsmanager:GetSecretValue"], [self.secret.arn]),
                statement(["kms:Decrypt"], [args.kms_key_arn]),
            ],
        )
        self.events = TaskEvents("task-events", TaskEventsArgs(settings, args.cluster_arn), self._child)
        self.flow_runs = FlowRuns(
            "flow-runs",
            FlowRunsArgs(
                settings=settings,
                image=args.image,
                api_key_secret_arn=self.secret.arn,
                kms_key_arn=args.kms_key_arn,
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
        return ecs_task_role(name, f"{self._args.settings.name_prefix}-{name}", statements, self._child)

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

    def _container(self, image: str, log_group: str, secret_arn: str) -> str:
        settings = self._args.settings
        return json.dumps(
            [
                {
                    "name": "prefect-worker",
                    "image": image,
                    "essential": True,
                    "memory": WORKER_MEMORY,
                    "command": ["prefect", "worker", "start", "--pool", settings.prefect.work_pool, "--type", "ecs"],
                    "environment": [
                        {"name": "PREFECT_API_URL", "value": str(settings.prefect.api_url)},
                        {"name": "PREFECT_SERVER_ANALYTICS_ENABLED", "value": "false"},
                        {"name": "AWS_DEFAULT_REGION", "value": settings.region},
                        # The observer reads task state changes here (its default name is another).
                        {
                            "name": "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME",
                            "value": task_events_queue_name(settings.name_prefix),
                        },
                    ],
                    "secrets": [{"name": "PREFECT_API_KEY", "valueFrom": secret_arn}],
                    "privileged": False,
                    "readonlyRootFilesystem": False,
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": log_group,
                            "awslogs-region": settings.region,
                            "awslogs-stream-prefix": "prefect-worker",
                        },
                    },
                }
            ]
        )

    def _create_service(self) -> aws.ecs.Service:
        args = self._args
        definitions = pulumi.Output.all(args.image, self.log_group.name, self.secret.arn).apply(
            lambda values: self._container(*values)
        )
        task = aws.ecs.TaskDefinition(
            "prefect-worker",
            family=f"{args.settings.name_prefix}-prefect-worker",
            cpu=str(WORKER_CPU),
            memory=str(WORKER_MEMORY),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            container_definitions=definitions,
            opts=self._child,
        )
        return aws.ecs.Service(
            "prefect-worker",
            name=f"{args.settings.name_prefix}-prefect-worker",
            cluster=args.cluster_arn,
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


def agent_program(ctx: Any) -> dict[str, Any]:
    """Stack program: the Prefect worker service of one environment."""
    worker = PrefectWorker(
        "prefect-agent",
        PrefectWorkerArgs(
            settings=ctx.settings,
            api_key=ctx.secrets["prefectApiKey"],
            image=pulumi.Output.concat(ctx.output("storage", "repository_url"), ":", ctx.image_tag),
            cluster_arn=ctx.output("compute", "cluster_arn"),
            cluster_name=ctx.output("compute", "cluster_name"),
            vpc_id=ctx.output("network", "vpc_id"),
            private_subnet_ids=ctx.output("network", "private_subnet_ids"),
            security_group_id=ctx.output("network", "flow_security_group_id"),
            kms_key_arn=ctx.output("storage", "kms_key_arn"),
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
