"""Every request of a rehearsal judged as AWS judges it, by an evaluator nobody here wrote.

moto enforces identity policies with no request context and compares most resources with the
literal "*" (`mlwf.rehearsal.cloud`). So every request it saw (`EmulatedAWS.requests`) is judged
again, after the run, by principalmapper's local policy simulation (AGPL-3.0, a development
dependency of the rehearsal, never in the image): the role's identity policies as planned (never
widened), its permissions boundary, and the target's resource policy from the plan (bucket, key,
queue), with AWS's logic (explicit deny first, conditions, same-account union, key policies that
must allow). Each request gets the real target ARN and the context AWS sets (`ecs:cluster`,
`ecs:CreateAction`, `iam:PassedToService`, `s3:prefix`, `kms:ViaService`, `kms:CallerAccount`,
the encryption context, `aws:SecureTransport`).

What AWS does on a principal's behalf is judged the same way: S3 calling KMS with the caller's
rights for SSE-KMS objects; RunTask's tagging at creation and its PassRole of the task and
execution roles; the ECS agent starting each task as its execution role (registry authorization
and image pull, the awslogs stream, each `secrets` entry and its key).

Each task's start is also judged when it starts (`start_refusal`): a task its execution role
cannot start STOPS with the ECS agent's reason, as on Fargate.

An action with no entry here fails the check (`Verdict.layer` "no judge"): never skipped in
silence. A denial the client is known to survive is listed in `TOLERATED` with why.
"""

from __future__ import annotations

import collections
import collections.abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mlwf.rehearsal.cloud import Request

# A request AWS would deny that the client survives: (action, why). Judged, shown, not failed.
HEAD_BUCKET = "HeadBucket, s3fs's bucket probe"
TOLERATED = {
    # (action, what made the call): why the client survives AWS refusing it (never an explicit deny)
    ("s3:ListBucket", HEAD_BUCKET): "it has no prefix; s3fs probes the bucket before writing and, "
    "refused, falls back to GetBucketLocation (granted)",
}


@dataclass(frozen=True)
class Call:
    """A request as AWS authorizes it: who, what, on which ARN, in which context; ``by`` says who
    made it when AWS made it on the principal's behalf."""

    role: str
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)
    by: str = ""

    def line(self) -> str:
        via = f" ({self.by})" if self.by else ""
        return f"{self.role} may not {self.action} on {self.resource}{via}"


@dataclass(frozen=True)
class Verdict:
    call: Call
    layer: str  # "" when allowed; else what refused it

    @property
    def allowed(self) -> bool:
        return not self.layer


@dataclass
class Documents:
    """What the judge reads: each role's planned identity policies and boundary, the resource
    policies of the plan by real ARN, each bucket's and secret's key."""

    account: str
    region: str
    roles: dict[str, str]  # role name -> ARN
    identity: dict[str, list[dict[str, Any]]]
    boundaries: dict[str, dict[str, Any]]
    resource_policies: dict[str, dict[str, Any]]
    bucket_keys: dict[str, str]  # bucket name -> key ARN
    secret_keys: dict[str, str]  # secret ARN -> key ARN
    task_definitions: Callable[[str], dict[str, Any]]  # ARN -> ECS's description
    log_group_keys: dict[str, str] = field(default_factory=dict)  # log group ARN -> key ARN
    event_targets: dict[str, str] = field(default_factory=dict)  # EventBridge rule ARN -> target ARN
    topic_keys: dict[str, str] = field(default_factory=dict)  # SNS topic ARN -> key ARN
    publishers: dict[str, list[str]] = field(default_factory=dict)  # budget/alarm ARN -> its topics


def _principalmapper() -> Any:
    """principalmapper 1.1.5 imports `collections.Mapping` (gone in Python 3.10): alias it first."""
    for name in ("Mapping", "MutableMapping"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    from principalmapper.common.nodes import Node
    from principalmapper.common.policies import Policy
    from principalmapper.querying import local_policy_simulation, query_interface
    from principalmapper.util.case_insensitive_dict import CaseInsensitiveDict

    return Node, Policy, query_interface, local_policy_simulation, CaseInsensitiveDict


def authorize(call: Call, docs: Documents) -> Verdict:
    """AWS's decision on ``call``, and the layer that refused it."""
    Node, Policy, query, local, Context = _principalmapper()
    if call.role.endswith(".amazonaws.com"):
        return _authorize_service(call, docs, local, Context)
    arn = docs.roles[call.role]
    policies = [Policy(f"{arn}/inline-{i}", f"inline-{i}", d) for i, d in enumerate(docs.identity.get(call.role, []))]
    boundary = docs.boundaries.get(call.role)
    node = Node(
        arn, "AROAREHEARSAL", policies, [], {"Version": "2012-10-17", "Statement": []}, None, 0, False, False,
        Policy(f"{arn}/boundary", "boundary", boundary) if boundary else None, False, {},
    )  # fmt: skip
    context = {"aws:SecureTransport": "true", "aws:RequestedRegion": docs.region, **call.context}
    resource_policy = docs.resource_policies.get(_policy_home(call.resource))
    allowed = query.local_check_authorization_full(
        node, call.action, call.resource, Context(context), resource_policy, docs.account if resource_policy else None
    )
    if (
        allowed
        and boundary
        and not local.policy_has_matching_statement(
            node.permissions_boundary, "Allow", call.action, call.resource, Context(context)
        )
    ):  # a resource policy naming the role grants only within its boundary (principalmapper skips it)
        return Verdict(call, "the permissions boundary")
    if allowed:
        return Verdict(call, "")
    return Verdict(call, _layer(call, node, context, resource_policy, docs, local, Context))


def _authorize_service(call: Call, docs: Documents, local: Any, context_of: Any) -> Verdict:
    """A service acting as itself (its service principal, no identity policy): only the target's
    resource policy can allow it. Its statements naming the service are evaluated by
    principalmapper's statement matching (action, resource, conditions)."""
    policy = docs.resource_policies.get(_policy_home(call.resource)) or {"Statement": []}

    def names_service(statement: dict[str, Any]) -> bool:  # the service, or anyone ("*")
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
            return True
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        return call.role in (services if isinstance(services, list) else [services])

    statements = [{k: v for k, v in st.items() if k != "Principal"} for st in policy["Statement"] if names_service(st)]
    keys = context_of({"aws:SecureTransport": "true", "aws:SourceAccount": docs.account, **call.context})

    def matches(effect: str) -> bool:
        document = {"Version": "2012-10-17", "Statement": statements}
        return bool(local.policy_has_matching_statement(document, effect, call.action, call.resource, keys))

    if matches("Deny"):
        return Verdict(call, "the resource policy (explicit deny)")
    return Verdict(call, "" if matches("Allow") else "the resource policy (the service is not allowed)")


def service_calls(docs: Documents) -> list[Call]:
    """What services do as themselves for the stacks: CloudWatch Logs encrypting each log group
    with its key; EventBridge delivering each rule's events to its queue; AWS Budgets and
    CloudWatch alarms publishing to their topic (and generating its key's data keys)."""
    calls = []
    logs = f"logs.{docs.region}.amazonaws.com"
    for group, key in docs.log_group_keys.items():
        context = {"kms:EncryptionContext:aws:logs:arn": group}
        for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"):
            calls.append(Call(logs, action, key, context, f"CloudWatch Logs for {group.rsplit(':', 1)[-1]}"))
    for rule, target in docs.event_targets.items():
        if target.startswith("arn:aws:sqs:"):
            calls.append(
                Call("events.amazonaws.com", "sqs:SendMessage", target, {"aws:SourceArn": rule}, "EventBridge")
            )
    for source, topics in docs.publishers.items():
        service = f"{source.split(':')[2]}.amazonaws.com"  # budgets, cloudwatch
        context, by = {"aws:SourceArn": source}, f"{source.rsplit(':', 1)[-1]} notifying"
        for topic in topics:
            calls.append(Call(service, "sns:Publish", topic, context, by))
            if topic in docs.topic_keys:
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    calls.append(Call(service, action, docs.topic_keys[topic], context, by))
    return calls


def _layer(
    call: Call, node: Any, context: dict[str, str], resource_policy: Any, docs: Documents, local: Any, context_of: Any
) -> str:
    """Which layer refused: the first of a resource policy's deny, the key policy, the boundary,
    the identity policies."""
    keys = context_of(context)

    def matches(policy: Any, effect: str) -> bool:
        return bool(local.policy_has_matching_statement(policy, effect, call.action, call.resource, keys))

    if resource_policy is not None:
        statements = local.resource_policy_matching_statements(node, resource_policy, call.action, call.resource, keys)
        if any(s["Effect"] == "Deny" for s in statements):
            return "the resource policy (explicit deny)"
        if call.resource.startswith("arn:aws:kms:") and not statements:
            return "the key policy"
    if any(matches(p, "Deny") for p in node.attached_policies):
        return "the identity policy (explicit deny)"
    if node.permissions_boundary is not None and not matches(node.permissions_boundary, "Allow"):
        return "the permissions boundary"
    return "the identity policy (no statement allows it with this context)"


def _policy_home(resource: str) -> str:
    """The ARN whose resource policy governs ``resource``: an object's bucket."""
    if resource.startswith("arn:aws:s3:::"):
        return resource.split("/", 1)[0]
    return resource


# -- requests -> calls ---------------------------------------------------------------------------


def calls_of(request: Request, docs: Documents) -> list[Call] | None:
    """The calls AWS authorizes for a recorded request (its own and those made on its behalf);
    None when no entry knows the action."""
    handler = HANDLERS.get(request.action)
    if handler is None and request.action.startswith("ec2:Describe"):  # EC2's Describe* have no resource form
        handler = _unscoped
    return None if handler is None else handler(request, docs)


def _ecs_arn(docs: Documents, kind: str, name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:ecs:{docs.region}:{docs.account}:{kind}/{name}"


def _cluster(request: Request, docs: Documents) -> str:
    return _ecs_arn(docs, "cluster", str(request.params.get("cluster", "default")))


def _task_calls(request: Request, docs: Documents) -> list[Call]:
    cluster = _cluster(request, docs)
    tasks = request.params.get("tasks") or [request.params.get("task")]
    name = cluster.rsplit("/", 1)[-1]
    return [
        Call(request.user, request.action, _ecs_arn(docs, f"task/{name}", str(t)), {"ecs:cluster": cluster})
        for t in tasks
        if t
    ]


def _run_task(request: Request, docs: Documents) -> list[Call]:
    cluster = _cluster(request, docs)
    definition = docs.task_definitions(_ecs_arn(docs, "task-definition", str(request.params["taskDefinition"])))
    calls = [Call(request.user, "ecs:RunTask", definition["taskDefinitionArn"], {"ecs:cluster": cluster})]
    if request.params.get("tags"):
        task = f"arn:aws:ecs:{docs.region}:{docs.account}:task/{cluster.rsplit('/', 1)[-1]}/{'0' * 32}"
        calls.append(
            Call(
                request.user,
                "ecs:TagResource",
                task,
                {"ecs:CreateAction": "RunTask", "ecs:cluster": cluster},
                "RunTask's tags",
            )
        )
    overrides = request.params.get("overrides") or {}
    roles = {definition.get("taskRoleArn"), definition.get("executionRoleArn")}
    roles |= {overrides.get("taskRoleArn"), overrides.get("executionRoleArn")}
    for role in roles:
        if role:
            passed = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
            calls.append(Call(request.user, "iam:PassRole", str(role), passed, "RunTask passing its roles"))
    return calls


def _s3_object(request: Request, docs: Documents) -> list[Call]:
    bucket = request.resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
    calls = [Call(request.user, request.action, request.resource)]
    key = docs.bucket_keys.get(bucket)
    if key:  # SSE-KMS with the bucket key: S3 calls KMS with the caller's rights
        context = {
            "kms:ViaService": f"s3.{docs.region}.amazonaws.com",
            "kms:CallerAccount": docs.account,
            "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket}",
        }
        needed = {"s3:GetObject": ["kms:Decrypt"], "s3:PutObject": ["kms:GenerateDataKey", "kms:Decrypt"]}
        for action in needed.get(request.action, []):
            calls.append(Call(request.user, action, key, context, f"S3 on its behalf ({request.action})"))
    return calls


def _s3_bucket(request: Request, docs: Documents) -> list[Call]:
    prefix = request.params.get("prefix")
    if prefix is None and "list-type" not in request.params and request.action == "s3:ListBucket":
        return [Call(request.user, request.action, request.resource, by=HEAD_BUCKET)]  # authorized as ListBucket
    context = {"s3:prefix": str(prefix)} if prefix is not None else {}
    return [Call(request.user, request.action, request.resource, context)]


def _as_is(request: Request, docs: Documents) -> list[Call]:
    """moto names the real ARN already (S3 objects, SQS queues)."""
    return [Call(request.user, request.action, request.resource)]


def _parameter(request: Request, docs: Documents) -> list[Call]:
    name = str(request.params["Name"]).lstrip("/")
    return [Call(request.user, request.action, f"arn:aws:ssm:{docs.region}:{docs.account}:parameter/{name}")]


def _repository(request: Request, docs: Documents) -> list[Call]:
    name = str(request.params["repositoryName"])
    return [Call(request.user, request.action, f"arn:aws:ecr:{docs.region}:{docs.account}:repository/{name}")]


def _clusters(request: Request, docs: Documents) -> list[Call]:
    names = request.params.get("clusters") or ["default"]
    return [Call(request.user, request.action, _ecs_arn(docs, "cluster", str(n))) for n in names]


def _list_tasks(request: Request, docs: Documents) -> list[Call]:
    cluster = _cluster(request, docs)
    instance = f"arn:aws:ecs:{docs.region}:{docs.account}:container-instance/{cluster.rsplit('/', 1)[-1]}/{'0' * 32}"
    return [Call(request.user, request.action, instance, {"ecs:cluster": cluster})]


def _secret(request: Request, docs: Documents) -> list[Call]:
    name = str(request.params.get("SecretId") or request.params.get("Name"))
    arn = (
        name if name.startswith("arn:") else f"arn:aws:secretsmanager:{docs.region}:{docs.account}:secret:{name}-AbCdEf"
    )
    calls = [Call(request.user, request.action, arn)]
    if request.action == "secretsmanager:CreateSecret" and request.params.get("Tags"):
        calls.append(Call(request.user, "secretsmanager:TagResource", arn, by="CreateSecret's tags"))
    return calls


def _log_stream(request: Request, docs: Documents) -> list[Call]:
    """A log stream's events (Prefect's observer forwards a crashed task's output to its run)."""
    group = str(request.params.get("logGroupName") or request.params.get("logGroupIdentifier"))
    group = group.split(":log-group:", 1)[-1] if group.startswith("arn:") else group
    stream = f"arn:aws:logs:{docs.region}:{docs.account}:log-group:{group}:log-stream:{request.params['logStreamName']}"
    return [Call(request.user, request.action, stream)]


HANDLERS: dict[str, Callable[[Request, Documents], list[Call]]] = {
    "logs:GetLogEvents": _log_stream,
    "ecs:RunTask": _run_task,
    "ecs:DescribeTasks": _task_calls,
    "ecs:StopTask": _task_calls,
    "ecs:ListTasks": _list_tasks,
    "ecs:DescribeClusters": _clusters,
    "s3:GetObject": _s3_object,
    "s3:PutObject": _s3_object,
    "s3:DeleteObject": _s3_object,
    "s3:AbortMultipartUpload": _as_is,
    "s3:ListBucket": _s3_bucket,
    "s3:GetBucketLocation": _as_is,
    "sqs:ReceiveMessage": _as_is,
    "sqs:DeleteMessage": _as_is,
    "sqs:ChangeMessageVisibility": _as_is,
    "sqs:GetQueueUrl": _as_is,
    "ssm:GetParameter": _parameter,
    "ssm:GetParameterHistory": _parameter,  # a rollback's deploy history
    "ecr:DescribeImages": _repository,  # a rollback's check that the image is still there
    "secretsmanager:CreateSecret": _secret,
    "secretsmanager:GetSecretValue": _secret,
    "secretsmanager:DeleteSecret": _secret,
    "secretsmanager:TagResource": _secret,
}
# Actions without a resource-level form (AWS's Service Authorization Reference): judged on "*".
UNSCOPED = {
    "ecs:DescribeTaskDefinition",
    "ecs:ListAccountSettings",
    "ecr:GetAuthorizationToken",
    "secretsmanager:ListSecrets",
}


def _unscoped(request: Request, docs: Documents) -> list[Call]:
    return [Call(request.user, request.action, "*")]


HANDLERS.update(dict.fromkeys(UNSCOPED, _unscoped))


def _metric_data(request: Request, docs: Documents) -> list[Call]:
    """PutMetricData has no resource form; its namespace is a condition key."""
    return [Call(request.user, request.action, "*", {"cloudwatch:namespace": str(request.params.get("Namespace"))})]


HANDLERS["cloudwatch:PutMetricData"] = _metric_data


def agent_calls(role: str, definition: dict[str, Any], docs: Documents) -> list[Call]:
    """What the ECS agent does, as the execution role ``role``, to start a task of ``definition``:
    authorize with the registry and pull the image, create the awslogs stream, read each secret
    (and decrypt it with its key, through Secrets Manager)."""
    calls = [Call(role, "ecr:GetAuthorizationToken", "*", by="the ECS agent")]
    for container in definition.get("containerDefinitions", []):
        image = str(container.get("image", ""))
        if ".dkr.ecr." in image:
            registry, _, path = image.partition("/")
            repository = path.split("@", 1)[0].rsplit(":", 1)[0]
            arn = f"arn:aws:ecr:{docs.region}:{registry.split('.', 1)[0]}:repository/{repository}"
            for action in ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"):
                calls.append(Call(role, action, arn, by="the ECS agent pulling the image"))
        options = (container.get("logConfiguration") or {}).get("options") or {}
        if options.get("awslogs-group"):
            group = f"arn:aws:logs:{docs.region}:{docs.account}:log-group:{options['awslogs-group']}"
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                calls.append(Call(role, action, f"{group}:log-stream:x", by="the ECS agent (awslogs)"))
        for secret in container.get("secrets") or []:
            arn = str(secret["valueFrom"])
            calls.append(Call(role, "secretsmanager:GetSecretValue", arn, by="the ECS agent reading secrets"))
            key = docs.secret_keys.get(arn)
            if key:
                context = {
                    "kms:ViaService": f"secretsmanager.{docs.region}.amazonaws.com",
                    "kms:CallerAccount": docs.account,
                    "kms:EncryptionContext:SecretARN": arn,
                }
                calls.append(Call(role, "kms:Decrypt", key, context, "Secrets Manager for the ECS agent"))
    return calls


# What the ECS agent reports when the execution role may not do what starting a task needs (the
# task STOPS with it): the first refused call's action, by prefix.
START_REASONS = (
    ("ecr:GetAuthorizationToken", "ResourceInitializationError: unable to pull secrets or registry auth"),
    ("ecr:", "CannotPullContainerError: pull image manifest has been retried"),
    ("logs:", "ResourceInitializationError: failed to validate logger args"),
    ("secretsmanager:", "ResourceInitializationError: unable to pull secrets or registry auth"),
    ("kms:", "ResourceInitializationError: unable to pull secrets or registry auth"),
)


def start_refusal(definition: dict[str, Any], docs: Documents) -> str | None:
    """Why ECS would stop a task of ``definition`` before it starts (its execution role may not
    pull the image, write its logs or read its secrets), as the agent says it; None if it starts."""
    execution = str(definition.get("executionRoleArn", "")).rsplit("/", 1)[-1]
    if not execution:
        return None  # nothing the agent does as a role (a public image, no awslogs, no secrets)
    if execution not in docs.roles:
        return f"CannotPullContainerError: no judge for the execution role {execution}: not seeded"
    for call in agent_calls(execution, definition, docs):
        verdict = authorize(call, docs)
        if not verdict.allowed:
            reason = next(r for prefix, r in START_REASONS if call.action.startswith(prefix))
            return (
                f"{reason}: AccessDenied: {execution} is not authorized to perform {call.action} on "
                f"{call.resource} (refused by {verdict.layer})"
            )
    return None


def documents_of(aws: Any, world: Any) -> Documents:
    """What the judge reads, from a seeded world (the plan's documents, by real ARNs)."""
    import functools

    ecs = aws.client("ecs")

    def described(arn: str) -> dict[str, Any]:
        return dict(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])

    return Documents(
        aws.account,
        aws.region,
        {name: arn for name, arn in world.roles.items() if name in world.policies},
        world.policies,
        world.boundaries,
        world.resource_policies,
        world.bucket_keys,
        world.secret_keys,
        functools.cache(described),
        world.log_group_keys,
        world.event_targets,
        world.topic_keys,
        world.publishers,
    )


@dataclass
class Judgement:
    verdicts: list[Verdict] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)  # actions no handler knows

    @property
    def refused(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.allowed and not _survived(v)]

    @property
    def tolerated(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.allowed and _survived(v)]


def _survived(verdict: Verdict) -> bool:
    return (verdict.call.action, verdict.call.by) in TOLERATED and "explicit deny" not in verdict.layer


def judge(requests: Iterable[Request], started: Iterable[str], docs: Documents) -> Judgement:
    """Judge every recorded request of a role (scenario users and the admin aside) and the
    start of every task (``started``: task definition ARNs), each distinct call once."""
    result = Judgement()
    calls: dict[str, Call] = {}  # each distinct call once, by its repr (its context is a dict)
    for request in requests:
        if request.user not in docs.roles:
            continue
        found = calls_of(request, docs)
        if found is None:
            result.unjudged.append(request.action)
            continue
        calls.update((repr(c), c) for c in found)
    calls.update((repr(c), c) for c in service_calls(docs))
    for definition_arn in dict.fromkeys(started):
        definition = docs.task_definitions(definition_arn)
        execution = str(definition.get("executionRoleArn", "")).rsplit("/", 1)[-1]
        if execution in docs.roles:
            calls.update((repr(c), c) for c in agent_calls(execution, definition, docs))
        else:  # never let a start through unjudged
            result.unjudged.append(f"the start of {definition_arn} (execution role {execution or 'none'} not seeded)")
    result.verdicts = [authorize(call, docs) for call in calls.values()]
    result.unjudged = sorted(set(result.unjudged))
    return result


def unused(result: Judgement, docs: Documents) -> dict[str, list[str]]:
    """Per role, the actions its policies name that no allowed call of the run used (a grant
    that may shrink, or one this run did not exercise: information, not a failure)."""
    used: dict[str, set[str]] = {}
    for verdict in result.verdicts:
        if verdict.allowed:
            used.setdefault(verdict.call.role, set()).add(verdict.call.action)
    found = {}
    for role, documents in docs.identity.items():
        granted = {
            str(a)
            for d in documents
            for st in d["Statement"]
            if st["Effect"] == "Allow"
            for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        }
        idle = sorted(a for a in granted if "*" not in a and a not in used.get(role, set()))
        if idle and role in used:
            found[role] = idle
    return found


def summary(result: Judgement) -> str:
    """One line: what was judged and what AWS would refuse (the first few, with the layer)."""
    if result.unjudged:
        return f"no judge for {', '.join(result.unjudged)}: add one to mlwf.rehearsal.judge"
    refused = result.refused
    if refused:
        shown = "; ".join(f"{v.call.line()}: refused by {v.layer}" for v in refused[:3])
        return f"{len(refused)} of {len(result.verdicts)} calls refused: {shown}"
    tolerated = sorted({v.call.action for v in result.tolerated})
    survived = f" ({len(result.tolerated)} refused that the client survives: {', '.join(tolerated)})"
    return f"{len(result.verdicts)} distinct calls allowed" + (survived if tolerated else "")
