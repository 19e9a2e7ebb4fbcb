"""The security rules (security_rules) and IAM rules (iam_rules) of the CrossGuard pack, case by
case: which statements, containers, egress rules, log groups, key policies, buckets and trust
policies each rule lets through or reports, the configuration each rule reads, and the exact
violation text that a pull request shows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_cases import check_resource, check_stack

from mlwf.policy.security_rules import scopable_to

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
SG = "aws:ec2/securityGroup:SecurityGroup"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
VPC = "aws:ec2/vpc:Vpc"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INTERNET_V4 = "0.0.0.0/0"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def policy(*statements: dict[str, Any], **props: Any) -> dict[str, Any]:
    """Props of a role policy (or key) holding these statements."""
    return {"policy": document(*statements), **props}


def trust(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"assumeRolePolicy": document(*statements)}


def assume(principal: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


# ---------------------------------------------------------------- iam-no-star-where-scopable

STOP_TASK_ARN = "arn:${Partition}:ecs:${Region}:${Account}:task/${ClusterName}/${TaskId}"
PASS_ROLE_ARN = "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}"


@pytest.mark.parametrize(
    ("action", "arn"),
    [
        ("ecs:StopTask", STOP_TASK_ARN),
        ("iam:PassRole", PASS_ROLE_ARN),
        ("ecr:GetAuthorizationToken", None),  # IAM takes only '*'
        ("s3:Get*", None),  # a wildcard names no single action
        ("*", None),
        ("s3", None),  # no action name
        ("nosuchservice:DoThing", None),  # unknown to the IAM reference
    ],
)
def test_scopable_to_reads_the_iam_reference(action: str, arn: str | None) -> None:
    assert scopable_to(action) == arn


STAR_WHERE_SCOPABLE = [
    (
        {"Action": "ecs:StopTask", "Resource": "*"},
        [f"'r' allows ecs:StopTask on '*' though IAM scopes it to {STOP_TASK_ARN}"],
    ),
    ({"Effect": "Deny", "Action": "ecs:StopTask", "Resource": "*"}, []),
    ({"Effect": "Allow", "Action": "ecs:StopTask", "Resource": "arn:aws:ecs:us-east-1:1:task/c/*"}, []),
    (
        {
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken", "iam:PassRole", "ecs:StopTask"],
            "Resource": ["arn:aws:iam::1:role/x", "*"],
        },
        [
            f"'r' allows iam:PassRole on '*' though IAM scopes it to {PASS_ROLE_ARN}",
            f"'r' allows ecs:StopTask on '*' though IAM scopes it to {STOP_TASK_ARN}",
        ],
    ),
    ({"Effect": "Allow", "Action": ["s3:Get*", "logs:*"], "Resource": "*"}, []),
]


@pytest.mark.parametrize(("statement", "expected"), STAR_WHERE_SCOPABLE)
def test_star_resource_is_reported_only_for_allowed_scopable_actions(
    statement: dict[str, Any], expected: list[str]
) -> None:
    assert check_resource("iam-no-star-where-scopable", ROLE_POLICY, policy(statement)) == expected


def test_star_where_scopable_reads_a_roles_inline_policies() -> None:
    props = {"inlinePolicies": [{"name": "ops", "policy": document({"Action": "ecs:StopTask", "Resource": "*"})}]}
    assert check_resource("iam-no-star-where-scopable", ROLE, props, name="ops-role") == [
        f"'ops-role' allows ecs:StopTask on '*' though IAM scopes it to {STOP_TASK_ARN}"
    ]


# ---------------------------------------------------------------- iam-trust-source-condition

ECS_TASKS = {"Service": "ecs-tasks.amazonaws.com"}
NO_SOURCE = "role 'r' trusts ecs-tasks.amazonaws.com without aws:SourceAccount or aws:SourceArn"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (assume(ECS_TASKS, Condition={"StringEquals": {"aws:SourceAccount": "111111111111"}}), []),
        (assume(ECS_TASKS, Condition={"ArnLike": {"aws:SourceArn": "arn:aws:ecs:us-east-1:1:*"}}), []),
        (assume(ECS_TASKS, Condition={"StringEquals": {"aws:PrincipalOrgID": "o-1"}}), [NO_SOURCE]),
        (assume(ECS_TASKS, Condition=None), [NO_SOURCE]),
        ({"Principal": ECS_TASKS, "Action": "sts:AssumeRole"}, [NO_SOURCE]),  # Effect defaults to Allow
        ({**assume(ECS_TASKS), "Effect": "Deny"}, []),
        (assume({"AWS": "arn:aws:iam::1:root"}), []),  # not a service: iam-trusted-principals judges it
        (assume("*"), []),
    ],
)
def test_a_service_trust_needs_a_source_condition(statement: dict[str, Any], expected: list[str]) -> None:
    assert check_resource("iam-trust-source-condition", ROLE, trust(statement)) == expected


def test_a_source_condition_must_be_a_condition_block() -> None:
    """A condition operator whose value is not a key/value block guards nothing."""
    malformed = assume(ECS_TASKS, Condition={"StringEquals": ["aws:SourceAccount"]})
    assert check_resource("iam-trust-source-condition", ROLE, trust(malformed)) == [NO_SOURCE]


def test_trust_source_condition_looks_only_at_roles() -> None:
    assert check_resource("iam-trust-source-condition", ROLE_POLICY, trust(assume(ECS_TASKS))) == []


# ---------------------------------------------------------------- ecs-read-only-root-filesystem


def test_every_container_without_a_read_only_root_is_named() -> None:
    definitions = [
        {"name": "worker", "readonlyRootFilesystem": True},
        {"name": "sidecar"},
        {"name": "scheduler", "readonlyRootFilesystem": False},
        "not a container",
    ]
    assert check_resource(
        "ecs-read-only-root-filesystem", TASK, {"containerDefinitions": json.dumps(definitions)}, name="dask"
    ) == [
        "container 'sidecar' of 'dask' has a writable root filesystem",
        "container 'scheduler' of 'dask' has a writable root filesystem",
    ]


def test_read_only_root_looks_only_at_task_definitions() -> None:
    props = {"containerDefinitions": json.dumps([{"name": "app"}])}
    assert check_resource("ecs-read-only-root-filesystem", "aws:ecs/service:Service", props) == []


# ---------------------------------------------------------------- vpc-default-sg-closed


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"ingress": [], "egress": []}, []),
        (
            {"egress": [{"protocol": "-1", "cidrBlocks": [INTERNET_V4]}]},
            ["the default security group 'default' has rules"],
        ),
        ({"ingress": [{"protocol": "-1", "self": True}]}, ["the default security group 'default' has rules"]),
    ],
)
def test_the_default_security_group_must_have_no_rules(rules: dict[str, Any], expected: list[str]) -> None:
    resources = [(VPC, "v", {}, []), (DEFAULT_SG, "default", rules, ["v"])]
    assert check_stack("vpc-default-sg-closed", resources) == expected


def test_each_vpc_needs_its_own_managed_default_security_group() -> None:
    resources = [
        (VPC, "main", {}, []),
        (VPC, "spare", {}, []),
        (DEFAULT_SG, "main-default", {}, ["main"]),
    ]
    assert check_stack("vpc-default-sg-closed", resources) == [
        "VPC 'spare' leaves its default security group unmanaged"
    ]


# ---------------------------------------------------------------- no-open-egress


def egress(protocol: str, cidrs: list[str], **ports: int) -> dict[str, Any]:
    v6 = [c for c in cidrs if ":" in c]
    return {
        "egress": [
            {"protocol": protocol, **ports, "cidrBlocks": [c for c in cidrs if ":" not in c], "ipv6CidrBlocks": v6}
        ]
    }


def opened(text: str, allowed: str = "[443]") -> list[str]:
    return [f"'r' allows egress to the internet on {text} (only {allowed} may go out)"]


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (egress("tcp", [INTERNET_V4], fromPort=443, toPort=443), []),
        (egress("tcp", ["::/0"], fromPort=443, toPort=443), []),
        (egress("-1", ["10.0.0.0/8", "fd00::/8"], fromPort=0, toPort=0), []),
        (egress("tcp", [INTERNET_V4], fromPort=80, toPort=80), opened("tcp 80-80")),
        (egress("tcp", ["::/0"], fromPort=443, toPort=444), opened("tcp 443-444")),
        (egress("tcp", [INTERNET_V4], fromPort=442, toPort=443), opened("tcp 442-443")),
        (egress("-1", ["10.0.0.0/8", INTERNET_V4], fromPort=443, toPort=443), opened("-1 443-443")),
        (egress("all", [INTERNET_V4], fromPort=443, toPort=443), opened("all 443-443")),
        (egress("-1", [INTERNET_V4]), opened("-1 0-0")),  # ports left out
        (  # every rule is judged, not only up to the first one inside the VPC
            {
                "egress": egress("-1", ["10.0.0.0/8"])["egress"]
                + egress("tcp", ["::/0"], fromPort=22, toPort=22)["egress"]
            },
            opened("tcp 22-22"),
        ),
    ],
)
def test_security_group_egress_to_the_internet_only_on_allowed_ports(
    props: dict[str, Any], expected: list[str]
) -> None:
    assert check_resource("no-open-egress", SG, props) == expected


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": INTERNET_V4}, []),
        ({"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv6": "::/0"}, []),
        ({"ipProtocol": "-1", "cidrIpv4": INTERNET_V4}, opened("-1 0-65535")),
        ({"ipProtocol": "-1", "fromPort": None, "toPort": None, "cidrIpv6": "::/0"}, opened("-1 0-65535")),
        ({"ipProtocol": "udp", "fromPort": 53, "toPort": 53, "cidrIpv4": "10.0.0.2/32"}, []),
    ],
)
def test_standalone_egress_rules_to_the_internet(props: dict[str, Any], expected: list[str]) -> None:
    assert check_resource("no-open-egress", EGRESS_RULE, props) == expected


def test_the_internet_ports_come_from_the_configuration() -> None:
    config = {"internetPorts": [80, 443]}
    assert check_resource("no-open-egress", SG, egress("tcp", [INTERNET_V4], fromPort=80, toPort=80), config) == []
    assert check_resource("no-open-egress", SG, egress("tcp", [INTERNET_V4], fromPort=22, toPort=22), config) == opened(
        "tcp 22-22", "[80, 443]"
    )


def test_open_egress_looks_only_at_egress() -> None:
    ingress = {"ingress": egress("-1", [INTERNET_V4])["egress"]}
    assert check_resource("no-open-egress", SG, ingress) == []
    rule = {"ipProtocol": "-1", "cidrIpv4": INTERNET_V4}
    assert check_resource("no-open-egress", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", rule) == []


# ---------------------------------------------------------------- log groups


def test_log_group_without_a_customer_key_is_reported() -> None:
    assert check_resource("log-group-encrypted", LOG_GROUP, {"kmsKeyId": ""}, name="flows") == [
        "log group 'flows' is not encrypted with a customer-managed KMS key"
    ]
    assert check_resource("log-group-encrypted", "aws:s3/bucket:Bucket", {}) == []


@pytest.mark.parametrize(
    ("days", "config", "expected"),
    [
        (1, None, []),  # the default minimum is one day
        (None, {"minimumDays": 90}, []),  # left out: never expires
        (0, {"minimumDays": 90}, []),  # 0: never expires
        (90, {"minimumDays": 90}, []),
        (89, {"minimumDays": 90}, ["log group 'r' keeps logs 89 days, below this tier's 90"]),
        (30.0, {"minimumDays": 365}, ["log group 'r' keeps logs 30 days, below this tier's 365"]),
    ],
)
def test_log_retention_meets_the_tier_minimum(
    days: float | None, config: dict[str, Any] | None, expected: list[str]
) -> None:
    assert check_resource("log-group-retention-minimum", LOG_GROUP, {"retentionInDays": days}, config) == expected


def test_retention_minimum_looks_only_at_log_groups() -> None:
    props = {"retentionInDays": 1}
    assert check_resource("log-group-retention-minimum", "aws:s3/bucket:Bucket", props, {"minimumDays": 90}) == []


# ---------------------------------------------------------------- kms-key-policy

USE = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
ADMIN = ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:Delete*", "kms:Put*"]
MIXED = "KMS key 'r' lets the same principals administer and use it (Mixed)"


@pytest.mark.parametrize(
    "actions", [[use, "kms:PutKeyPolicy"] for use in USE] + [["kms:Decrypt", admin] for admin in ADMIN]
)
def test_one_statement_may_not_both_administer_and_use_a_key(actions: list[str]) -> None:
    mixed = {"Sid": "Mixed", "Effect": "Allow", "Action": actions}
    assert check_resource("kms-key-policy", KEY, policy(mixed)) == [MIXED]
    apart = [{"Sid": "Use", "Effect": "Allow", "Action": actions[0]}, {"Sid": "Admin", "Action": actions[1]}]
    assert check_resource("kms-key-policy", KEY, policy(*apart)) == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Sid": "Mixed", "Action": "kms:*"}, [MIXED]),  # Effect defaults to Allow
        ({"Sid": "Mixed", "Effect": "Deny", "Action": "kms:*", "Principal": "*"}, []),
        (
            {"Sid": "Open", "Principal": "*", "Action": "kms:Decrypt"},
            ["KMS key 'r' may be used by anyone (Open, FSBP KMS.5)"],
        ),
        ({"Sid": "Open", "Principal": {"AWS": "*"}}, ["KMS key 'r' may be used by anyone (Open, FSBP KMS.5)"]),
        (
            {"Sid": "Open", "Principal": {"AWS": ["arn:aws:iam::1:root", "*"]}},
            ["KMS key 'r' may be used by anyone (Open, FSBP KMS.5)"],
        ),
        ({"Sid": "Org", "Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}, []),
        ({"Sid": "Root", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:Decrypt"}, []),
        ({"Sid": "Svc", "Principal": {"Service": "*"}, "Action": "kms:Decrypt"}, []),
        (
            {"Sid": "Mixed", "Principal": "*", "Action": ["kms:*"]},
            [MIXED, "KMS key 'r' may be used by anyone (Mixed, FSBP KMS.5)"],
        ),
    ],
)
def test_key_policy_statements(statement: dict[str, Any], expected: list[str]) -> None:
    assert check_resource("kms-key-policy", KEY, policy(statement)) == expected


@pytest.mark.parametrize("props", [{}, {"policy": ""}])
def test_a_key_needs_its_own_policy(props: dict[str, Any]) -> None:
    assert check_resource("kms-key-policy", KEY, props, name="data") == [
        "KMS key 'data' has no key policy of its own (the account default lets IAM decide)"
    ]


def test_key_policy_looks_only_at_keys() -> None:
    assert check_resource("kms-key-policy", "aws:kms/alias:Alias", {}) == []


# ---------------------------------------------------------------- s3-access-logging


def test_every_bucket_but_the_log_target_must_log() -> None:
    resources = [
        (BUCKET, "data", {}, []),
        (BUCKET, "scratch", {}, []),
        (BUCKET, "logs", {}, []),
        (VPC, "v", {}, []),
        (LOGGING, "data-logging", {"targetBucket": "logs-id"}, ["data", "logs", "v"]),
    ]
    assert check_stack("s3-access-logging", resources) == ["bucket 'scratch' has no server access logging"]
    assert check_stack("s3-access-logging", resources, {"required": None}) == [
        "bucket 'scratch' has no server access logging"
    ]
    assert check_stack("s3-access-logging", resources, {"required": False}) == []


# ---------------------------------------------------------------- s3-delete-scoped

DATASET = "arn:aws:s3:::b/raw/storm/*"


def deleting(
    role: str | None, *resources: str, action: Any = "s3:DeleteObject", effect: str = "Allow"
) -> dict[str, Any]:
    props = policy({"Effect": effect, "Action": action, "Resource": list(resources)})
    return props if role is None else {**props, "role": role}


ONLY = "only ['*flow-run-task'] delete (the stage table)"


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (deleting("flow-run-task-id", DATASET), []),
        (deleting("prod-flow-run-task", "arn:aws:s3:::b/raw/*"), []),  # two slashes: a dataset's prefix
        (deleting("dask-task-id", DATASET), [f"role 'dask-task' may delete objects; {ONLY}"]),
        (deleting(None, DATASET), [f"role 'r' may delete objects; {ONLY}"]),  # no role: the policy's name
        (
            deleting("dask-task-id", DATASET, action=["s3:GetObject", "s3:*"]),
            [f"role 'dask-task' may delete objects; {ONLY}"],
        ),
        (deleting("dask-task-id", DATASET, action="*"), [f"role 'dask-task' may delete objects; {ONLY}"]),
        (deleting("dask-task-id", "*", action="s3:GetObject"), []),
        (deleting("dask-task-id", "*", effect="Deny"), []),
        (
            deleting("flow-run-task-id", "arn:aws:s3:::b/*", DATASET, "*"),
            [
                "'flow-run-task' may delete under arn:aws:s3:::b/*, wider than a dataset's prefix",
                "'flow-run-task' may delete under *, wider than a dataset's prefix",
            ],
        ),
        (
            deleting("dask-task", "arn:aws:s3:::*"),
            [
                f"role 'dask-task' may delete objects; {ONLY}",
                "'dask-task' may delete under arn:aws:s3:::*, wider than a dataset's prefix",
            ],
        ),
    ],
)
def test_deletion_only_by_the_stage_roles_under_dataset_prefixes(props: dict[str, Any], expected: list[str]) -> None:
    assert check_resource("s3-delete-scoped", ROLE_POLICY, props) == expected


def test_the_deleting_roles_come_from_the_configuration() -> None:
    config = {"deleters": ["*ingest-task", "*compact-task"]}
    assert check_resource("s3-delete-scoped", ROLE_POLICY, deleting("dev-compact-task-id", DATASET), config) == []
    assert check_resource("s3-delete-scoped", ROLE_POLICY, deleting("flow-run-task-id", DATASET), config) == [
        "role 'flow-run-task' may delete objects; only ['*ingest-task', '*compact-task'] delete (the stage table)"
    ]


def test_delete_scope_looks_only_at_role_policies() -> None:
    assert check_resource("s3-delete-scoped", "aws:iam/policy:Policy", deleting("dask-task-id", "*")) == []


# ---------------------------------------------------------------- iam_rules

EVERYTHING = "'r' allows every action on every resource ('*' on '*')"
PASS_ANY = "'r' allows iam:PassRole on every role ('*')"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Action": "*:*", "Resource": "*"}, [EVERYTHING]),  # Effect defaults to Allow
        ({"Effect": "Allow", "Action": ["s3:GetObject", "*"], "Resource": ["arn:aws:s3:::b/*", "*"]}, [EVERYTHING]),
        ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}, []),
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, []),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, []),
    ],
)
def test_no_star_action_on_star_resource(statement: dict[str, Any], expected: list[str]) -> None:
    assert check_resource("iam-no-star-action-on-star-resource", ROLE_POLICY, policy(statement)) == expected


def test_no_star_on_star_reads_a_roles_inline_policies() -> None:
    props = {"inlinePolicies": [{"name": "admin", "policy": document({"Action": "*", "Resource": "*"})}]}
    assert check_resource("iam-no-star-action-on-star-resource", ROLE, props, name="admin") == [
        "'admin' allows every action on every resource ('*' on '*')"
    ]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Action": "iam:PassRole", "Resource": "*"}, [PASS_ANY]),
        ({"Effect": "Allow", "Action": ["s3:GetObject", "*"], "Resource": ["*"]}, [PASS_ANY]),
        ({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/x"}, []),
        ({"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}, []),
        ({"Effect": "Deny", "Action": "iam:PassRole", "Resource": "*"}, []),
    ],
)
def test_no_pass_role_on_every_role(statement: dict[str, Any], expected: list[str]) -> None:
    assert check_resource("iam-no-passrole-on-star", ROLE_POLICY, policy(statement)) == expected


@pytest.mark.parametrize(
    "service",
    ["ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com", "events.amazonaws.com", "scheduler.amazonaws.com"],
)
def test_the_platform_services_may_assume_roles(service: str) -> None:
    assert check_resource("iam-trusted-principals", ROLE, trust(assume({"Service": service}))) == []


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        ([assume("*")], ["role 'r' may be assumed by any principal ('*')"]),
        (
            [assume("*"), assume({"AWS": ["arn:aws:iam::1:root", "arn:aws:iam::2:root"]})],
            [
                "role 'r' may be assumed by any principal ('*')",
                "role 'r' trusts the AWS principal 'arn:aws:iam::1:root', not a platform service",
                "role 'r' trusts the AWS principal 'arn:aws:iam::2:root', not a platform service",
            ],
        ),
        (
            [{"Principal": {"Federated": "cognito-identity.amazonaws.com"}, "Action": "sts:AssumeRoleWithWebIdentity"}],
            ["role 'r' trusts the Federated principal 'cognito-identity.amazonaws.com', not a platform service"],
        ),
        (
            [assume({"Service": ["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]})],
            ["role 'r' trusts the unexpected service 'lambda.amazonaws.com'"],
        ),
        (
            [{**assume("*"), "Effect": "Deny"}, assume({"Service": "lambda.amazonaws.com"})],
            ["role 'r' trusts the unexpected service 'lambda.amazonaws.com'"],
        ),
    ],
)
def test_roles_trust_only_platform_services(statements: list[dict[str, Any]], expected: list[str]) -> None:
    assert check_resource("iam-trusted-principals", ROLE, trust(*statements)) == expected


def test_the_trusted_services_come_from_the_configuration() -> None:
    config = {"allowedServices": ["lambda.amazonaws.com"]}
    assert (
        check_resource("iam-trusted-principals", ROLE, trust(assume({"Service": "lambda.amazonaws.com"})), config) == []
    )
    assert check_resource("iam-trusted-principals", ROLE, trust(assume(ECS_TASKS)), config) == [
        "role 'r' trusts the unexpected service 'ecs-tasks.amazonaws.com'"
    ]


def test_trusted_principals_looks_only_at_roles() -> None:
    assert check_resource("iam-trusted-principals", ROLE_POLICY, trust(assume("*"))) == []


# ---------------------------------------------------------------- statements each rule skips

DENY_ALL = {"Effect": "Deny", "Action": "*", "Resource": "*", "Principal": "*"}
SKIPPED_THEN_VIOLATING = [
    (
        "iam-no-star-where-scopable",
        ROLE_POLICY,
        policy(DENY_ALL, {"Action": "ecs:StopTask", "Resource": "*"}),
        f"'r' allows ecs:StopTask on '*' though IAM scopes it to {STOP_TASK_ARN}",
    ),
    (
        "iam-trust-source-condition",
        ROLE,
        trust(DENY_ALL, assume({"AWS": "arn:aws:iam::1:root"}), assume(ECS_TASKS)),
        NO_SOURCE,
    ),
    ("kms-key-policy", KEY, policy(DENY_ALL, {"Sid": "Mixed", "Action": "kms:*"}), MIXED),
    (
        "s3-delete-scoped",
        ROLE_POLICY,
        policy(DENY_ALL, {"Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}, role="flow-run-task-id"),
        "'flow-run-task' may delete under arn:aws:s3:::b/*, wider than a dataset's prefix",
    ),
    (
        "s3-delete-scoped",
        ROLE_POLICY,
        policy({"Action": "s3:GetObject", "Resource": "*"}, {"Action": "s3:*", "Resource": "*"}, role="x-id"),
        "'x' may delete under *, wider than a dataset's prefix",
    ),
    ("iam-trusted-principals", ROLE, trust(DENY_ALL, assume("*")), "role 'r' may be assumed by any principal ('*')"),
]


@pytest.mark.parametrize(("policy_name", "type_", "props", "message"), SKIPPED_THEN_VIOLATING)
def test_a_statement_a_rule_skips_does_not_hide_the_next(
    policy_name: str, type_: str, props: dict[str, Any], message: str
) -> None:
    assert message in check_resource(policy_name, type_, props)


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        (SG, {"egress": [{"protocol": -1.0, "fromPort": 443.0, "toPort": 443.0, "cidrBlocks": ["0.0.0.0/0"]}]}),
        (EGRESS_RULE, {"ipProtocol": -1.0, "fromPort": 443.0, "toPort": 443.0, "cidrIpv4": "0.0.0.0/0"}),
    ],
)
def test_all_traffic_egress_written_as_a_number_is_open_egress(type_: str, props: dict[str, Any]) -> None:
    """The engine sends numbers as floats: protocol -1 arrives as -1.0 and still means all traffic."""
    assert check_resource("no-open-egress", type_, props) == [
        "'r' allows egress to the internet on -1 443-443 (only [443] may go out)"
    ]
