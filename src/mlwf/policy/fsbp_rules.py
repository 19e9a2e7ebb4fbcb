"""More AWS Foundational Security Best Practices controls that apply to these stacks, one rule
each (the control's ID in the description): Container Insights (ECS.12), awsvpc networking
(ECS.1), interface endpoints for the AWS APIs tasks call (EC2.55-57), ACLs disabled (S3.12),
bucket lifecycles (S3.13), no service-wide wildcard actions (IAM.21), ECR lifecycle policies
(ECR.3), encrypted queues (SQS.1), rotated secrets (SecretsManager.1, or an exemption with its
reason in the tier's config). See docs/security.md for the whole table."""

from __future__ import annotations

import fnmatch

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlwf.policy.helpers import BUCKET, as_list, config_value, policy_documents, statements

DEFAULT_ENDPOINTS = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "sts", "s3"]


def _insights(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:ecs/cluster:Cluster":
        return
    values = {s.get("value") for s in as_list(args.props.get("settings")) if s.get("name") == "containerInsights"}
    if not values & {"enabled", "enhanced"}:
        report_violation(f"ECS cluster '{args.name}' does not have Container Insights enabled")


ecs_container_insights = ResourceValidationPolicy(
    name="ecs-container-insights",
    description="ECS clusters must have Container Insights enabled (FSBP ECS.12).",
    validate=_insights,
)


def _network_mode(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:ecs/taskDefinition:TaskDefinition":
        return
    mode = args.props.get("networkMode")
    if mode != "awsvpc":
        report_violation(f"task definition '{args.name}' does not isolate its network (networkMode {mode!r})")
    shared = [namespace for namespace in ("pidMode", "ipcMode") if args.props.get(namespace) == "host"]
    if shared:
        report_violation(f"task definition '{args.name}' shares the host's namespace ({', '.join(shared)} 'host')")


ecs_awsvpc_network_mode = ResourceValidationPolicy(
    name="ecs-awsvpc-network-mode",
    description="ECS task definitions must use awsvpc networking and share no host namespace (FSBP ECS.1/ECS.3).",
    validate=_network_mode,
)


def _endpoints(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    wanted = [str(s) for s in config_value(args.get_config(), "services", DEFAULT_ENDPOINTS)]
    endpoints = [r for r in args.resources if r.resource_type == "aws:ec2/vpcEndpoint:VpcEndpoint"]
    for vpc in (r for r in args.resources if r.resource_type == "aws:ec2/vpc:Vpc"):
        served = {str(e.props.get("serviceName", "")).split(".", 3)[-1] for e in endpoints if vpc in e.dependencies}
        missing = [s for s in wanted if s not in served]
        if missing:
            report_violation(f"VPC '{vpc.name}' has no endpoint for {', '.join(missing)}")


vpc_interface_endpoints = StackValidationPolicy(
    name="vpc-interface-endpoints",
    description="VPCs must reach the AWS APIs their tasks call through VPC endpoints (FSBP EC2.55-57).",
    validate=_endpoints,
    config_schema=PolicyConfigSchema(properties={"services": {"type": "array", "items": {"type": "string"}}}),
)


def _per_bucket(args: StackValidationArgs, type_: str) -> list[str]:
    """Names of buckets no resource of ``type_`` depends on."""
    attached = [r for r in args.resources if r.resource_type == type_]
    return [
        b.name for b in args.resources if b.resource_type == BUCKET and not any(b in r.dependencies for r in attached)
    ]


def _acls_disabled(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    controls = [
        r for r in args.resources if r.resource_type == "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
    ]
    for name in _per_bucket(args, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"):
        report_violation(f"bucket '{name}' does not disable ACLs (no BucketOwnerEnforced ownership)")
    for control in controls:
        if (control.props.get("rule") or {}).get("objectOwnership") != "BucketOwnerEnforced":
            report_violation(f"'{control.name}' keeps ACLs enabled")


s3_acls_disabled = StackValidationPolicy(
    name="s3-acls-disabled",
    description="S3 buckets must disable ACLs (object ownership BucketOwnerEnforced, FSBP S3.12).",
    validate=_acls_disabled,
)


def _lifecycle(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for name in _per_bucket(args, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        report_violation(f"bucket '{name}' has no lifecycle configuration")


s3_lifecycle = StackValidationPolicy(
    name="s3-lifecycle",
    description="S3 buckets must have a lifecycle configuration (FSBP S3.13).",
    validate=_lifecycle,
)


def _service_wildcards(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for document in policy_documents(args.resource_type, args.props):
        for st in statements(document):
            if st.get("Effect", "Allow") != "Allow":
                continue
            for action in as_list(st.get("Action")):
                if str(action).endswith(":*"):
                    report_violation(f"'{args.name}' allows every action of a service ({action})")


iam_no_service_wildcard_actions = ResourceValidationPolicy(
    name="iam-no-service-wildcard-actions",
    description="IAM policies must name their actions, never 'service:*' (FSBP IAM.21).",
    validate=_service_wildcards,
)


def _ecr_lifecycle(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    policies = [r for r in args.resources if r.resource_type == "aws:ecr/lifecyclePolicy:LifecyclePolicy"]
    for repository in (r for r in args.resources if r.resource_type == "aws:ecr/repository:Repository"):
        name = repository.props.get("name")
        if not any(repository in p.dependencies or (name and p.props.get("repository") == name) for p in policies):
            report_violation(f"ECR repository '{repository.name}' has no lifecycle policy")


ecr_lifecycle_policy = StackValidationPolicy(
    name="ecr-lifecycle-policy",
    description="ECR repositories must have a lifecycle policy (FSBP ECR.3).",
    validate=_ecr_lifecycle,
)


def _queue_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:sqs/queue:Queue":
        return
    if args.props.get("sqsManagedSseEnabled") is not True and not args.props.get("kmsMasterKeyId"):
        report_violation(f"queue '{args.name}' is not encrypted at rest")


sqs_encrypted = ResourceValidationPolicy(
    name="sqs-encrypted",
    description="SQS queues must be encrypted at rest (FSBP SQS.1).",
    validate=_queue_encrypted,
)


def _topic_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:sns/topic:Topic":
        return
    key = args.props.get("kmsMasterKeyId")
    if not key:
        report_violation(f"topic '{args.name}' is not encrypted at rest")
    elif isinstance(key, str) and key.endswith("alias/aws/sns"):
        report_violation(
            f"topic '{args.name}' is encrypted with the AWS-managed key alias/aws/sns: AWS Budgets, CloudWatch "
            "alarms and EventBridge cannot publish to it (use a customer key whose policy lets them)"
        )


sns_encrypted = ResourceValidationPolicy(
    name="sns-encrypted",
    description="SNS topics must be encrypted at rest with a customer key (FSBP SNS.1; AWS services cannot "
    "publish to one under alias/aws/sns).",
    validate=_topic_encrypted,
)

SECRET = "aws:secretsmanager/secret:Secret"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"


def _secrets_rotated(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Each secret has a rotation (a SecretRotation depends on it), or the tier's config exempts
    its name with a reason (``exempt``: name pattern -> why it cannot rotate in AWS)."""
    exempt = {str(k): str(v).strip() for k, v in dict(config_value(args.get_config(), "exempt", {})).items()}
    rotations = [r for r in args.resources if r.resource_type == ROTATION]
    for secret in (r for r in args.resources if r.resource_type == SECRET):
        if any(secret in r.dependencies for r in rotations):
            continue
        name = str(secret.props.get("name") or secret.name)
        reasons = [why for pattern, why in exempt.items() if fnmatch.fnmatchcase(name, pattern)]
        if not any(reasons):
            report_violation(f"secret '{name}' has no automatic rotation and no exemption with a reason")


secretsmanager_rotation = StackValidationPolicy(
    name="secretsmanager-rotation",
    description="Secrets Manager secrets must rotate automatically, or be exempted by name with a reason "
    "(FSBP SecretsManager.1).",
    validate=_secrets_rotated,
    config_schema=PolicyConfigSchema(
        properties={"exempt": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}}
    ),
)

POLICIES = [
    ecs_container_insights,
    ecs_awsvpc_network_mode,
    vpc_interface_endpoints,
    s3_acls_disabled,
    s3_lifecycle,
    iam_no_service_wildcard_actions,
    ecr_lifecycle_policy,
    sqs_encrypted,
    sns_encrypted,
    secretsmanager_rotation,
]
