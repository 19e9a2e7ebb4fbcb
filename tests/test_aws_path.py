"""What the first real flow run in AWS needs from the stacks, read from the offline plan: every
call dask-cloudprovider and prefect-aws make is granted to the role that makes it, every task
definition's execution role can start it, the work pool's job variables fit the pool's template
and keep the API key out of RunTask, and the observer's events reach its queue."""

from __future__ import annotations

import ast
import fnmatch
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlwf.contract import FLOW_RUN_CONTAINER, ClusterRuntime, task_events_queue_name
from mlwf.deployments import default_base_job_template, validate_job_variables
from mlwf.infra.plan import plan_environment
from mlwf.planned import PlannedResource, StackPlan
from mlwf.settings import Settings, load_environment
from mlwf.stacks.programs import ORDER

REPO = Path(__file__).resolve().parents[1]
ENVS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def settings() -> dict[str, Settings]:
    return {env: load_environment(env, REPO / "environments") for env in ENVS}


@pytest.fixture(scope="module")
def plans(settings: dict[str, Settings]) -> dict[str, list[StackPlan]]:
    return {env: plan_environment(settings[env], list(ORDER), REPO) for env in ENVS}


def every(plans: list[StackPlan], type_: str) -> list[PlannedResource]:
    return [r for p in plans for r in p.resources if r.type == type_]


def by_arn(plans: list[StackPlan], arn: str) -> PlannedResource:
    (found,) = [r for p in plans for r in p.resources if arn in (r.arn, r.id)]
    return found


def role_statements(plans: list[StackPlan], role_arn: str) -> list[dict[str, Any]]:
    """The Allow statements of the inline policies attached to a role (by ARN)."""
    role = by_arn(plans, role_arn)
    found = []
    for policy in every(plans, "aws:iam/rolePolicy:RolePolicy"):
        if policy.inputs["role"] == role.id:
            found.extend(s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow")
    assert found, f"no policy on {role_arn}"
    return found


def grants(statements: list[dict[str, Any]], action: str, resource: str = "*") -> bool:
    """Does some statement allow ``action`` on ``resource`` (IAM wildcards on both sides)?"""
    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if any(fnmatch.fnmatchcase(action, a) for a in actions) and any(
            fnmatch.fnmatchcase(resource, r) or r == resource for r in resources
        ):
            return True
    return False


def runtime_of(plans: list[StackPlan]) -> ClusterRuntime:
    (parameter,) = [r for r in every(plans, "aws:ssm/parameter:Parameter") if r.inputs["name"].endswith("/compute")]
    return ClusterRuntime(**json.loads(parameter.inputs["insecureValue"]))


def job_variables_of(plans: list[StackPlan]) -> dict[str, Any]:
    (parameter,) = [r for r in every(plans, "aws:ssm/parameter:Parameter") if r.inputs["name"].endswith("/work-pool")]
    return dict(json.loads(parameter.inputs["insecureValue"]))


def aws_calls(cls: type, *methods: str) -> set[str]:
    """The AWS API calls a library class makes, read from its source: every
    ``async with self._client("svc") as name`` binding, then every ``await name.op(...)``,
    as IAM actions (``ecs:ListAccountSettings``)."""
    calls: set[str] = set()
    source = inspect.getsource(cls)
    tree = ast.parse(source.replace("\n    ", "\n") if source.startswith("    ") else source)
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or (methods and node.name not in methods):
            continue
        services: dict[str, str] = {}
        for item in ast.walk(node):
            if isinstance(item, ast.withitem) and isinstance(item.optional_vars, ast.Name):
                call = item.context_expr
                if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant):
                    services[item.optional_vars.id] = str(call.args[0].value)
        for item in ast.walk(node):
            if (
                isinstance(item, ast.Call)
                and isinstance(item.func, ast.Attribute)
                and isinstance(item.func.value, ast.Name)
                and item.func.value.id in services
                and item.func.attr != "get_paginator"
            ):
                operation = "".join(part.capitalize() for part in item.func.attr.split("_"))
                calls.add(f"{services[item.func.value.id]}:{operation}")
    return calls


def fargate_cluster_calls() -> set[str]:
    """What FargateCluster calls when every resource is pre-created: the tasks' lifecycle
    (start, watch, address, stop, logs) and the cluster lookup in ``_start``."""
    from dask_cloudprovider.aws.ecs import ECSCluster, Task

    return aws_calls(Task) | aws_calls(ECSCluster, "_start")


def test_the_call_list_is_read_from_dask_cloudprovider_itself() -> None:
    calls = fargate_cluster_calls()
    # The two calls that broke the first run, found without naming them here by hand first.
    assert {"ecs:ListAccountSettings", "ec2:DescribeNetworkInterfaces"} <= calls
    assert {"ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "ecs:DescribeClusters"} <= calls
    assert "ecs:RegisterTaskDefinition" not in calls, "only the _create_* paths register; the stack does"


@pytest.mark.parametrize("env", ENVS)
def test_the_flow_run_role_covers_every_call_fargate_cluster_makes(plans: dict[str, list[StackPlan]], env: str) -> None:
    runtime = runtime_of(plans[env])
    flow_role = role_statements(plans[env], runtime.flow_task_role_arn)
    missing = sorted(action for action in fargate_cluster_calls() if not _granted_somewhere(flow_role, action))
    assert not missing, f"the flow-run role lacks {missing}"
    for definition in (runtime.scheduler_task_definition_arn, runtime.worker_task_definition_arn):
        assert grants(flow_role, "ecs:RunTask", definition)
    for role in (runtime.execution_role_arn, runtime.task_role_arn):
        assert grants(flow_role, "iam:PassRole", role)
    assert not grants(flow_role, "ecs:RegisterTaskDefinition"), "runs register nothing"
    assert not _granted_somewhere(flow_role, "ecs:RegisterTaskDefinition")


def _granted_somewhere(statements: list[dict[str, Any]], action: str) -> bool:
    return any(
        any(
            fnmatch.fnmatchcase(action, a) for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        )
        for st in statements
    )


def execution_needs(container: dict[str, Any], secrets_keys: dict[str, str]) -> list[tuple[str, str]]:
    """(action, resource) an execution role needs to start a container: pull its image, write
    its logs (create the group if asked to), read its secrets and their keys."""
    needs = [("ecr:GetAuthorizationToken", "*")]
    repository = container["image"].split("/", 1)[1].split(":", 1)[0].split("@", 1)[0]
    needs += [(a, f"*:repository/{repository}") for a in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")]
    options = container["logConfiguration"]["options"]
    group = f"*:log-group:{options['awslogs-group']}:*"
    needs += [("logs:CreateLogStream", group), ("logs:PutLogEvents", group)]
    if options.get("awslogs-create-group") == "true":
        needs.append(("logs:CreateLogGroup", group))
    for secret in container.get("secrets", []):
        needs.append(("secretsmanager:GetSecretValue", secret["valueFrom"]))
        needs.append(("kms:Decrypt", secrets_keys[secret["valueFrom"]]))
    return needs


def grants_pattern(statements: list[dict[str, Any]], action: str, pattern: str) -> bool:
    """Like grants, for a resource known only by a pattern (an ECR repository's ARN)."""
    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if any(fnmatch.fnmatchcase(action, a) for a in actions) and any(
            r == "*" or fnmatch.fnmatchcase(r, pattern) for r in resources
        ):
            return True
    return False


@pytest.mark.parametrize("env", ENVS)
def test_every_execution_role_covers_what_its_task_definitions_need(
    plans: dict[str, list[StackPlan]], env: str
) -> None:
    keys = {s.arn: s.inputs["kmsKeyId"] for s in every(plans[env], "aws:secretsmanager/secret:Secret")}
    definitions = every(plans[env], "aws:ecs/taskDefinition:TaskDefinition")
    assert {d.inputs["family"].split("-", 2)[-1] for d in definitions} >= {
        "dask-scheduler",
        "dask-worker",
        "flow-run",
        "prefect-worker",
        "reaper",
    }
    for definition in definitions:
        role = role_statements(plans[env], definition.inputs["executionRoleArn"])
        for container in json.loads(definition.inputs["containerDefinitions"]):
            for action, resource in execution_needs(container, keys):
                assert grants_pattern(role, action, resource), f"{definition.name}: {action} on {resource}"


@pytest.mark.parametrize("env", ENVS)
def test_the_dask_task_definitions_fit_dask_cloudprovider(
    plans: dict[str, list[StackPlan]], settings: dict[str, Settings], env: str
) -> None:
    runtime = runtime_of(plans[env])
    dask = settings[env].dask
    for role, arn, cpu, memory in (
        ("scheduler", runtime.scheduler_task_definition_arn, dask.scheduler_cpu, dask.scheduler_memory_mib),
        ("worker", runtime.worker_task_definition_arn, dask.worker_cpu, dask.worker_memory_mib),
    ):
        definition = by_arn(plans[env], arn)
        (container,) = json.loads(definition.inputs["containerDefinitions"])
        assert container["name"] == f"dask-{role}", "dask-cloudprovider overrides the container by this name"
        assert container["image"] == runtime.image
        assert container["memory"] == memory, "container-level memory (ECS resource accounting)"
        assert (definition.inputs["cpu"], definition.inputs["memory"]) == (str(cpu), str(memory))
        assert "awslogs-create-group" not in container["logConfiguration"]["options"]
        assert definition.inputs["taskRoleArn"] == runtime.task_role_arn
        assert definition.inputs["executionRoleArn"] == runtime.execution_role_arn


@pytest.mark.parametrize("env", ENVS)
def test_the_job_variables_fit_the_ecs_pool_and_carry_the_secret(plans: dict[str, list[StackPlan]], env: str) -> None:
    variables = job_variables_of(plans[env])
    validate_job_variables(variables, default_base_job_template("ecs"), f"mlwf-{env}-ecs")
    (secret,) = every(plans[env], "aws:secretsmanager/secret:Secret")
    assert variables["prefect_api_key_secret_arn"] == secret.arn, "without it the worker copies its key into RunTask"
    definition = by_arn(plans[env], variables["task_definition_arn"])
    (container,) = json.loads(definition.inputs["containerDefinitions"])
    assert container["name"] == variables["container_name"] == FLOW_RUN_CONTAINER
    assert container["secrets"] == [{"name": "PREFECT_API_KEY", "valueFrom": secret.arn}]
    assert not any("KEY" in e["name"] for e in container["environment"])
    runtime = runtime_of(plans[env])
    assert variables["cluster"] == runtime.cluster_arn
    assert variables["task_role_arn"] == definition.inputs["taskRoleArn"] == runtime.flow_task_role_arn
    assert variables["network_configuration"] == {
        "subnets": runtime.private_subnets,
        "securityGroups": [runtime.flow_security_group],
        "assignPublicIp": "DISABLED",
    }


def test_unknown_or_mistyped_job_variables_are_refused() -> None:
    from mlwf.errors import UserError

    template = default_base_job_template("ecs")
    with pytest.raises(UserError, match=r"^work pool p: unknown job variable\(s\) prefect_api_key_arn "):
        validate_job_variables({"prefect_api_key_arn": "arn:x"}, template, "p")
    with pytest.raises(UserError, match=r"^work pool p: job variable network_configuration: "):
        validate_job_variables({"network_configuration": ["subnet-1"]}, template, "p")


@pytest.mark.parametrize("env", ENVS)
def test_the_worker_role_covers_submitting_cancelling_and_observing(
    plans: dict[str, list[StackPlan]], settings: dict[str, Settings], env: str
) -> None:
    variables = job_variables_of(plans[env])
    (service,) = every(plans[env], "aws:ecs/service:Service")
    worker_definition = by_arn(plans[env], service.inputs["taskDefinition"])
    worker = role_statements(plans[env], worker_definition.inputs["taskRoleArn"])
    flow_definition = by_arn(plans[env], variables["task_definition_arn"])
    task = f"arn:aws:ecs:{settings[env].region}:{settings[env].account_id}:task/{settings[env].name_prefix}-dask/abc"
    assert grants(worker, "ecs:DescribeTaskDefinition", variables["task_definition_arn"])
    assert grants(worker, "ecs:RunTask", variables["task_definition_arn"])
    for action in ("ecs:TagResource", "ecs:StopTask", "ecs:DescribeTasks"):
        assert grants(worker, action, task), action
    for role in (flow_definition.inputs["taskRoleArn"], flow_definition.inputs["executionRoleArn"]):
        assert grants(worker, "iam:PassRole", role)
    assert grants(worker, "ec2:DescribeVpcs")
    assert grants(worker, "ec2:DescribeSubnets")
    assert not _granted_somewhere(worker, "ecs:RegisterTaskDefinition"), "the flow-run definition is pre-registered"
    (queue,) = [q for q in every(plans[env], "aws:sqs/queue:Queue") if not q.inputs["name"].endswith("-dlq")]
    for action in ("sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert grants(worker, action, queue.arn), action
    (container,) = json.loads(worker_definition.inputs["containerDefinitions"])
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME"] == queue.inputs["name"]
    assert queue.inputs["name"] == task_events_queue_name(settings[env].name_prefix)


@pytest.mark.parametrize("env", ENVS)
def test_task_state_changes_of_the_cluster_reach_the_observers_queue(
    plans: dict[str, list[StackPlan]], env: str
) -> None:
    runtime = runtime_of(plans[env])
    (rule,) = every(plans[env], "aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {"clusterArn": [runtime.cluster_arn]},
    }
    (target,) = every(plans[env], "aws:cloudwatch/eventTarget:EventTarget")
    queue = by_arn(plans[env], target.inputs["arn"])
    assert target.inputs["rule"] == rule.inputs["name"]
    (policy,) = every(plans[env], "aws:sqs/queuePolicy:QueuePolicy")
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Resource"] == queue.arn
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule.arn}}
    assert re.search(r'"deadLetterTargetArn"', queue.inputs["redrivePolicy"])


@pytest.mark.parametrize("env", ENVS)
def test_every_role_keeps_what_it_is_granted_under_its_boundary(
    plans: dict[str, list[StackPlan]], settings: dict[str, Settings], env: str
) -> None:
    """A role can do only what both its policies and its permissions boundary allow: every
    action an environment's role is granted, on the resources it is granted on, is inside the
    boundary the bootstrap stack gives the environment (which every role carries, by ARN)."""
    from mlwf.delivery import boundary_arn
    from mlwf.stacks.bootstrap import boundary_document

    boundary = [s for s in json.loads(boundary_document(settings[env]))["Statement"] if s["Effect"] == "Allow"]
    roles = every(plans[env], "aws:iam/role:Role")
    assert len(roles) >= 8
    assert {r.inputs.get("permissionsBoundary") for r in roles} == {boundary_arn(settings[env])}
    for role in roles:
        for st in role_statements(plans[env], role.arn):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            for action in actions:
                for resource in resources:
                    # a grant on "*" is for an action without a resource-level form: the request's
                    # resource is "*", so the boundary must allow it on "*" too
                    assert grants(boundary, action, resource), (
                        f"{role.name}: {action} on {resource} is outside the boundary"
                    )


@pytest.mark.parametrize("env", ["prod"])
def test_the_deploy_role_may_create_every_resource_the_stacks_plan(
    plans: dict[str, list[StackPlan]], settings: dict[str, Settings], env: str
) -> None:
    from mlwf.stacks.bootstrap import DEPLOY_SERVICES, deploy_document, service_of

    types = {r.type for p in plans[env] for r in p.resources if r.custom and r.type.startswith("aws:")}
    services = {service_of(t) for t in types}
    assert services - {"iam", "budgets"} <= set(DEPLOY_SERVICES)
    assert {t for t in types if service_of(t) == "iam"} == {"aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"}
    statements = json.loads(deploy_document(settings[env]))["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    for budget in every(plans[env], "aws:budgets/budget:Budget"):  # global: no region condition
        arn = f"arn:aws:budgets::{settings[env].account_id}:budget/{budget.inputs['name']}"
        assert grants(allows, "budgets:ModifyBudget", arn)
    for role in every(plans[env], "aws:iam/role:Role"):
        for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:PassRole", "iam:DeleteRole"):
            assert grants(allows, action, role.arn), f"the deploy role may not {action} {role.name}"
