"""The S3 guardrails (storage_rules) and the further FSBP controls (fsbp_rules) beyond one
compliant and one violating case: every accepted value and every way to fail, which resources
a rule ignores, how stack rules pair buckets, VPCs and repositories with their companions, and
the exact violation text (and the resource it is reported on) shown in a pull request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_cases import Resource, check_resource, stack_reports, urn
from policy_cases import check_stack as messages_of

BUCKET_TYPE = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
VPC_TYPE = "aws:ec2/vpc:Vpc"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
REPOSITORY = "aws:ecr/repository:Repository"
ECR_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
CLUSTER = "aws:ecs/cluster:Cluster"
QUEUE = "aws:sqs/queue:Queue"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALL_ENDPOINTS = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "sts", "s3"]
ALL_BLOCKED = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)


def bucket(name: str = "b", **props: Any) -> Resource:
    return (BUCKET_TYPE, name, props, [])


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def sse(algorithm: str | None, name: str = "sse", on: str = "b") -> Resource:
    rule = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm}} if algorithm else {}
    return (SSE, name, {"rules": [rule]}, [on])


def tls_policy(secure: Any, effect: str = "Deny", name: str = "p", on: str = "b", principal: Any = "*") -> Resource:
    statement = {
        "Effect": effect,
        "Principal": principal,
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": secure}},
    }
    return (BUCKET_POLICY, name, {"policy": document(statement)}, [on])


# ---------------------------------------------------------------- storage_rules: stack rules


@pytest.mark.parametrize("algorithm", ["aws:kms", "aws:kms:dsse", "AES256"])
def test_every_at_rest_algorithm_counts_as_encrypted(algorithm: str) -> None:
    assert stack_reports("s3-bucket-encrypted", [bucket(), sse(algorithm)]) == []


@pytest.mark.parametrize(
    "companions",
    [
        pytest.param([], id="none"),
        pytest.param([sse("none")], id="unknown-algorithm"),
        pytest.param([sse(None)], id="rule-without-default"),
        pytest.param([(SSE, "sse", {}, ["b"])], id="no-rules"),
        pytest.param(
            [(PAB, "pab", {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}, ["b"])],
            id="wrong-type",
        ),
    ],
)
def test_a_bucket_without_a_real_encryption_rule_is_reported_on_the_bucket(companions: list[Resource]) -> None:
    assert stack_reports("s3-bucket-encrypted", [bucket(), *companions]) == [
        ("S3 bucket 'b' has no server-side encryption configuration", urn(BUCKET_TYPE, "b"))
    ]


def test_any_one_good_encryption_rule_among_several_is_enough() -> None:
    config = {"rules": [{}, {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}
    assert stack_reports("s3-bucket-encrypted", [bucket(), (SSE, "sse", config, ["b"])]) == []
    assert stack_reports("s3-bucket-encrypted", [bucket(), sse("none", "bad"), sse("AES256", "good")]) == []


def test_inline_encryption_on_the_bucket_satisfies_only_the_encryption_rule() -> None:
    inline = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
    stack = [bucket("inline", serverSideEncryptionConfiguration=inline), bucket("plain")]
    assert messages_of("s3-bucket-encrypted", stack) == [
        "S3 bucket 'plain' has no server-side encryption configuration"
    ]
    assert messages_of("s3-public-access-blocked", stack) == [
        "S3 bucket 'inline' does not block all public access",
        "S3 bucket 'plain' does not block all public access",
    ]


@pytest.mark.parametrize(
    ("inline", "encrypted"),
    [
        ({"rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}}, True),  # aws.s3.Bucket's shape
        ({"rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "none"}}}, False),
        ({"rule": {}}, False),
    ],
)
def test_a_buckets_own_encryption_counts_only_with_a_real_algorithm(inline: dict[str, Any], encrypted: bool) -> None:
    stack = [bucket("b", serverSideEncryptionConfiguration=inline)]
    expected = [] if encrypted else ["S3 bucket 'b' has no server-side encryption configuration"]
    assert messages_of("s3-bucket-encrypted", stack) == expected


def test_companions_pair_with_the_bucket_they_depend_on() -> None:
    stack = [bucket("a"), bucket("c"), sse("AES256", on="a"), ("aws:kms/key:Key", "key", {}, [])]
    stack.append(
        (SSE, "sse-c", {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}, ["key"])
    )
    assert stack_reports("s3-bucket-encrypted", stack) == [
        ("S3 bucket 'c' has no server-side encryption configuration", urn(BUCKET_TYPE, "c"))
    ]


@pytest.mark.parametrize("field", list(ALL_BLOCKED))
def test_each_public_access_block_setting_is_required(field: str) -> None:
    for value in (False, None, "true"):
        props = {**ALL_BLOCKED, field: value}
        assert stack_reports("s3-public-access-blocked", [bucket(), (PAB, "pab", props, ["b"])]) == [
            ("S3 bucket 'b' does not block all public access", urn(BUCKET_TYPE, "b"))
        ], value


@pytest.mark.parametrize("secure", ["false", False, "False"])
def test_a_deny_on_insecure_transport_makes_a_bucket_tls_only(secure: Any) -> None:
    assert stack_reports("s3-tls-only", [bucket(), tls_policy(secure)]) == []
    assert stack_reports("s3-tls-only", [bucket(), tls_policy(secure, principal={"AWS": "*"})]) == []


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(tls_policy("true"), id="denies-secure-requests"),
        pytest.param(tls_policy("false", effect="Allow"), id="allows-instead-of-denying"),
        pytest.param(tls_policy("false", principal={"AWS": "arn:aws:iam::1:root"}), id="denies-one-principal-only"),
        pytest.param(tls_policy("false", principal=None), id="denies-no-principal"),
        pytest.param(
            (BUCKET_POLICY, "p", {"policy": document({"Effect": "Deny", "Principal": "*", "Action": "s3:*"})}, ["b"]),
            id="no-condition",
        ),
        pytest.param(
            (
                BUCKET_POLICY,
                "p",
                {"policy": document({"Effect": "Deny", "Principal": "*", "Condition": {"StringEquals": {"x": "y"}}})},
                ["b"],
            ),
            id="no-bool-condition",
        ),
    ],
)
def test_a_policy_that_does_not_deny_insecure_transport_is_reported(policy: Resource) -> None:
    assert stack_reports("s3-tls-only", [bucket(), policy]) == [
        ("S3 bucket 'b' has no policy denying non-TLS access", urn(BUCKET_TYPE, "b"))
    ]


def test_the_tls_deny_may_follow_other_statements() -> None:
    statements = [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]
    policy = (BUCKET_POLICY, "p", {"policy": document(*statements)}, ["b"])
    assert stack_reports("s3-tls-only", [bucket(), policy]) == []


@pytest.mark.parametrize(
    ("config", "props", "expected"),
    [
        pytest.param({"required": True}, {"versioningConfiguration": {"status": "Enabled"}}, [], id="enabled"),
        pytest.param({"required": True}, {"versioningConfiguration": {"status": "Suspended"}}, ["b"], id="suspended"),
        pytest.param({"required": True}, {}, ["b"], id="no-configuration"),
        pytest.param({"required": False}, {}, [], id="not-required"),
        pytest.param({"required": None}, {}, [], id="required-unset"),
        pytest.param({}, {}, [], id="no-config"),
    ],
)
def test_versioning_is_checked_only_where_the_environment_requires_it(
    config: dict[str, Any], props: dict[str, Any], expected: list[str]
) -> None:
    stack = [bucket(), (VERSIONING, "v", props, ["b"])]
    assert stack_reports("s3-versioning", stack, config) == [
        (f"S3 bucket '{name}' is not versioned", urn(BUCKET_TYPE, name)) for name in expected
    ]


# ---------------------------------------------------------------- storage_rules: public ACL or policy


@pytest.mark.parametrize("type_", [BUCKET_TYPE, "aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"])
@pytest.mark.parametrize("acl", ["public-read", "public-read-write", "authenticated-read"])
def test_every_public_canned_acl_is_refused(type_: str, acl: str) -> None:
    assert check_resource("s3-no-public-acl-or-policy", type_, {"acl": acl}, name="data") == [
        f"'data' grants the public ACL '{acl}'"
    ]


@pytest.mark.parametrize(
    ("type_", "acl"),
    [
        (BUCKET_TYPE, "private"),
        (BUCKET_TYPE, "bucket-owner-full-control"),
        ("aws:s3/bucketAclV2:BucketAclV2", "log-delivery-write"),
        ("aws:s3/bucketObject:BucketObject", "public-read"),
        (BUCKET_POLICY, "public-read"),
    ],
)
def test_private_acls_and_other_resources_with_an_acl_pass(type_: str, acl: str) -> None:
    assert check_resource("s3-no-public-acl-or-policy", type_, {"acl": acl}) == []


@pytest.mark.parametrize(
    "principal", ["*", {"AWS": "*"}, {"AWS": ["arn:aws:iam::1:root", "*"]}], ids=["star", "aws-star", "aws-list"]
)
def test_a_bucket_policy_allowing_everyone_is_refused(principal: Any) -> None:
    policy = {"policy": document({"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject"})}
    assert check_resource("s3-no-public-acl-or-policy", BUCKET_POLICY, policy, name="site") == [
        "bucket policy 'site' allows access to everyone ('Principal: *')"
    ]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param({"Effect": "Deny", "Principal": "*", "Action": "s3:*"}, id="deny"),
        pytest.param(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Condition": {"StringEquals": {"aws:SourceVpce": "v"}},
            },
            id="conditional",
        ),
        pytest.param(
            {"Effect": "Allow", "Principal": "arn:aws:iam::1:root", "Action": "s3:GetObject"}, id="string-principal"
        ),
        pytest.param({"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}}, id="service-principal"),
        pytest.param({"Principal": "*", "Action": "s3:GetObject"}, id="no-effect"),
    ],
)
def test_denies_conditional_grants_and_named_principals_pass(statement: dict[str, Any]) -> None:
    policy = {"policy": document(statement)}
    assert check_resource("s3-no-public-acl-or-policy", BUCKET_POLICY, policy) == []


def test_each_public_statement_of_a_bucket_policy_is_reported() -> None:
    public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    policy = {"policy": document({"Effect": "Deny", "Principal": "*", "Action": "s3:*"}, public, public)}
    assert (
        check_resource("s3-no-public-acl-or-policy", BUCKET_POLICY, policy)
        == ["bucket policy 'r' allows access to everyone ('Principal: *')"] * 2
    )


# ---------------------------------------------------------------- fsbp_rules: resource rules


@pytest.mark.parametrize(
    ("settings", "ok"),
    [
        ([{"name": "containerInsights", "value": "enabled"}], True),
        ([{"name": "containerInsights", "value": "enhanced"}], True),
        ([{"name": "other", "value": "x"}, {"name": "containerInsights", "value": "enhanced"}], True),
        ([{"name": "containerInsights", "value": "disabled"}], False),
        ([{"name": "somethingElse", "value": "enabled"}], False),
        (None, False),
    ],
)
def test_container_insights_enabled_or_enhanced(settings: Any, ok: bool) -> None:
    props = {} if settings is None else {"settings": settings}
    expected = [] if ok else ["ECS cluster 'jobs' does not have Container Insights enabled"]
    assert check_resource("ecs-container-insights", CLUSTER, props, name="jobs") == expected


@pytest.mark.parametrize(
    ("props", "shown"),
    [
        ({"networkMode": "awsvpc"}, None),
        ({"networkMode": "awsvpc", "pidMode": "task", "ipcMode": "task"}, None),
        ({"networkMode": "bridge"}, "'bridge'"),
        ({}, "None"),
    ],
)
def test_task_definitions_need_awsvpc_and_no_host_namespace(props: dict[str, Any], shown: str | None) -> None:
    expected = [] if shown is None else [f"task definition 'worker' does not isolate its network (networkMode {shown})"]
    assert check_resource("ecs-awsvpc-network-mode", TASK, props, name="worker") == expected


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        ({"networkMode": "awsvpc", "pidMode": "host"}, ["shares the host's namespace (pidMode 'host')"]),
        ({"networkMode": "awsvpc", "ipcMode": "host"}, ["shares the host's namespace (ipcMode 'host')"]),
        (
            {"networkMode": "host", "pidMode": "host", "ipcMode": "host"},
            [
                "does not isolate its network (networkMode 'host')",
                "shares the host's namespace (pidMode, ipcMode 'host')",
            ],
        ),
    ],
)
def test_a_shared_host_namespace_is_named_as_such(props: dict[str, Any], messages: list[str]) -> None:
    expected = [f"task definition 'worker' {m}" for m in messages]
    assert check_resource("ecs-awsvpc-network-mode", TASK, props, name="worker") == expected


@pytest.mark.parametrize(
    ("props", "ok"),
    [
        ({"sqsManagedSseEnabled": True}, True),
        ({"kmsMasterKeyId": "alias/aws/sqs"}, True),
        ({"sqsManagedSseEnabled": False, "kmsMasterKeyId": "arn:aws:kms:r:1:key/k"}, True),
        ({}, False),
        ({"sqsManagedSseEnabled": "true", "kmsMasterKeyId": ""}, False),
    ],
)
def test_queues_are_encrypted_by_sqs_or_by_kms(props: dict[str, Any], ok: bool) -> None:
    expected = [] if ok else ["queue 'tasks' is not encrypted at rest"]
    assert check_resource("sqs-encrypted", QUEUE, props, name="tasks") == expected


@pytest.mark.parametrize(
    ("policy", "type_"),
    [
        ("ecs-container-insights", TASK),
        ("ecs-awsvpc-network-mode", CLUSTER),
        ("sqs-encrypted", "aws:sns/topic:Topic"),
        ("iam-no-service-wildcard-actions", "aws:s3/bucketPolicy:BucketPolicy"),
    ],
)
def test_resource_rules_ignore_other_resource_types(policy: str, type_: str) -> None:
    """Empty props would violate each rule, were it to look at this type."""
    props = {"policy": document({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})}
    assert check_resource(policy, type_, props) == []


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        pytest.param([{"Action": "s3:*"}], ["s3:*"], id="effect-defaults-to-allow"),
        pytest.param([{"Effect": "Allow", "Action": ["s3:*", "sqs:*"]}], ["s3:*", "sqs:*"], id="each-action"),
        pytest.param(
            [{"Effect": "Deny", "Action": "s3:*"}, {"Effect": "Allow", "Action": "sqs:*"}], ["sqs:*"], id="after-deny"
        ),
        pytest.param([{"Effect": "Allow", "Action": ["*", "s3:Get*"]}], [], id="not-a-service-wildcard"),
    ],
)
def test_service_wildcards_allowed_by_a_policy(statements: list[dict[str, Any]], expected: list[str]) -> None:
    props = {"policy": document(*statements)}
    assert check_resource("iam-no-service-wildcard-actions", ROLE_POLICY, props, name="task") == [
        f"'task' allows every action of a service ({action})" for action in expected
    ]


def test_service_wildcards_in_a_roles_inline_policies() -> None:
    props = {"inlinePolicies": [{"name": "inline", "policy": document({"Effect": "Allow", "Action": "ecr:*"})}]}
    assert check_resource("iam-no-service-wildcard-actions", "aws:iam/role:Role", props, name="task") == [
        "'task' allows every action of a service (ecr:*)"
    ]


# ---------------------------------------------------------------- fsbp_rules: stack rules


def vpc(name: str = "v") -> Resource:
    return (VPC_TYPE, name, {"cidrBlock": "10.0.0.0/16"}, [])


def endpoints(services: list[str], on: str = "v") -> list[Resource]:
    return [(ENDPOINT, f"{on}-{s}", {"serviceName": f"com.amazonaws.us-east-1.{s}"}, [on]) for s in services]


def test_each_vpc_needs_its_own_endpoints() -> None:
    stack = [vpc("a"), vpc("c"), *endpoints(ALL_ENDPOINTS, on="a"), *endpoints(["s3"], on="c")]
    assert messages_of("vpc-interface-endpoints", stack) == [
        "VPC 'c' has no endpoint for ecr.api, ecr.dkr, logs, secretsmanager, ssm, sts"
    ]


def test_an_endpoint_without_a_service_name_serves_nothing() -> None:
    stack = [vpc(), *endpoints(ALL_ENDPOINTS[1:]), (ENDPOINT, "anon", {}, ["v"])]
    assert messages_of("vpc-interface-endpoints", stack) == ["VPC 'v' has no endpoint for ecr.api"]


@pytest.mark.parametrize(
    ("config", "services", "expected"),
    [
        ({"services": ["s3", "sts"]}, ["s3", "sts"], []),
        ({"services": ["s3", "sts"]}, ["s3"], ["VPC 'v' has no endpoint for sts"]),
        ({"services": None}, ["s3"], ["VPC 'v' has no endpoint for ecr.api, ecr.dkr, logs, secretsmanager, ssm, sts"]),
        ({"services": []}, [], []),
    ],
)
def test_the_environment_chooses_which_endpoints_are_needed(
    config: dict[str, Any], services: list[str], expected: list[str]
) -> None:
    assert messages_of("vpc-interface-endpoints", [vpc(), *endpoints(services)], config) == expected


def test_a_stack_without_a_vpc_needs_no_endpoints() -> None:
    assert stack_reports("vpc-interface-endpoints", [bucket()]) == []


def test_acls_are_checked_per_bucket_and_per_ownership_control() -> None:
    stack = [
        bucket("a"),
        bucket("c"),
        bucket("d"),
        (OWNERSHIP, "own-a", {"rule": {"objectOwnership": "BucketOwnerEnforced"}}, ["a"]),
        (OWNERSHIP, "own-c", {"rule": {"objectOwnership": "BucketOwnerPreferred"}}, ["c"]),
        (OWNERSHIP, "own-x", {}, []),
    ]
    assert messages_of("s3-acls-disabled", stack) == [
        "bucket 'd' does not disable ACLs (no BucketOwnerEnforced ownership)",
        "'own-c' keeps ACLs enabled",
        "'own-x' keeps ACLs enabled",
    ]


def test_lifecycles_are_checked_per_bucket() -> None:
    stack = [bucket("a"), bucket("c"), (LIFECYCLE, "lc-a", {}, ["a"]), (OWNERSHIP, "own-c", {}, ["c"])]
    assert messages_of("s3-lifecycle", stack) == ["bucket 'c' has no lifecycle configuration"]


@pytest.mark.parametrize(
    ("repository", "policy", "ok"),
    [
        pytest.param({"name": "app"}, ({"repository": "app"}, []), True, id="by-name"),
        pytest.param({}, ({}, ["repo"]), True, id="by-dependency"),
        pytest.param({"name": "app"}, ({"repository": "other"}, []), False, id="other-name"),
        pytest.param({}, ({}, []), False, id="unnamed-and-unrelated"),
        pytest.param({}, ({"repository": "app"}, []), False, id="unnamed"),
    ],
)
def test_ecr_lifecycle_policies_pair_by_dependency_or_repository_name(
    repository: dict[str, Any], policy: tuple[dict[str, Any], list[str]], ok: bool
) -> None:
    props, deps = policy
    stack = [(REPOSITORY, "repo", repository, []), (ECR_POLICY, "lp", props, deps)]
    expected = [] if ok else ["ECR repository 'repo' has no lifecycle policy"]
    assert messages_of("ecr-lifecycle-policy", stack) == expected


def test_a_lifecycle_policy_covers_only_its_own_repository() -> None:
    stack = [(REPOSITORY, "a", {}, []), (REPOSITORY, "c", {}, []), (ECR_POLICY, "lp", {}, ["a"])]
    assert messages_of("ecr-lifecycle-policy", stack) == ["ECR repository 'c' has no lifecycle policy"]
