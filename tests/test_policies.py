"""The CrossGuard pack: each rule on a compliant and a violating case, the platform's stacks
with no mandatory violation anywhere, the insecure example caught by every rule, and the pack
as its own process over the analyzer gRPC protocol reporting exactly the offline result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from analyzer import policy_pack_process
from policy_cases import check_resource, check_stack
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from mlwf.errors import UserError
from mlwf.infra.plan import plan_environment, plan_program
from mlwf.policy.evaluate import evaluate
from mlwf.policy.pack import BY_NAME, FAMILIES, POLICIES, config_file, resolved_config
from mlwf.settings import load_environment
from mlwf.stacks.programs import ORDER

REPO = Path(__file__).resolve().parents[1]
INSECURE = Path(__file__).parent / "insecure_program"
ENVS = ("dev", "staging", "prod")
TAGS = {"CostCenter": "c", "Owner": "o", "Project": "p"}


def containers(*definitions: dict[str, Any]) -> dict[str, Any]:
    return {"containerDefinitions": json.dumps(list(definitions))}


GOOD_CONTAINER = {
    "name": "app",
    "image": "1.dkr.ecr.us-east-1.amazonaws.com/app:py3.11-abc",
    "logConfiguration": {"logDriver": "awslogs"},
    "environment": [{"name": "PREFECT_API_URL", "value": "https://x"}],
    "secrets": [{"name": "PREFECT_API_KEY", "valueFrom": "arn:aws:secretsmanager:x"}],
}
SG = "aws:ec2/securityGroup:SecurityGroup"
RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def iam(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


def trust(principal: Any) -> dict[str, Any]:
    return {
        "assumeRolePolicy": json.dumps(
            {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}
        )
    }


# policy, resource type, compliant props, violating props, config, words of the violation
RESOURCE_CASES = [
    (
        "s3-no-public-acl-or-policy",
        "aws:s3/bucket:Bucket",
        {"acl": "private"},
        {"acl": "public-read"},
        None,
        "public ACL 'public-read'",
    ),
    (
        "s3-no-public-acl-or-policy",
        "aws:s3/bucketPolicy:BucketPolicy",
        iam(
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject", "Resource": "*"}
        ),
        iam({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}),
        None,
        "allows access to everyone",
    ),
    (
        "no-ssh-rdp-from-internet",
        SG,
        {"ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/8"]}]},
        {"ingress": [{"protocol": "tcp", "fromPort": 20, "toPort": 25, "cidrBlocks": ["0.0.0.0/0"]}]},
        None,
        "opens SSH (port 22)",
    ),
    (
        "no-ssh-rdp-from-internet",
        RULE,
        {"ipProtocol": "tcp", "fromPort": 3389, "toPort": 3389, "cidrIpv4": "10.1.0.0/16"},
        {"ipProtocol": "tcp", "fromPort": 3389, "toPort": 3389, "cidrIpv6": "::/0"},
        None,
        "opens RDP (port 3389)",
    ),
    (
        "dask-ports-not-public",
        RULE,
        {"ipProtocol": "tcp", "fromPort": 8786, "toPort": 8787, "referencedSecurityGroupId": "sg-1"},
        {"ipProtocol": "tcp", "fromPort": 8786, "toPort": 8787, "cidrIpv4": "203.0.113.0/24"},
        None,
        "Dask port 8786",
    ),
    (
        "dask-ports-not-public",
        SG,
        {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/16"]}]},
        {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
        None,
        "Dask port 8786",
    ),
    (
        "no-public-ip-on-launch",
        "aws:ec2/subnet:Subnet",
        {"mapPublicIpOnLaunch": False},
        {"mapPublicIpOnLaunch": True},
        None,
        "public IP on launch",
    ),
    (
        "ecs-image-pinned",
        TASK,
        containers(GOOD_CONTAINER),
        containers({**GOOD_CONTAINER, "image": "nginx:latest"}),
        None,
        "mutable tag 'latest'",
    ),
    (
        "ecs-image-pinned",
        TASK,
        containers({**GOOD_CONTAINER, "image": "busybox@sha256:" + "a" * 64}),
        containers({**GOOD_CONTAINER, "image": "registry:5000/busybox"}),
        None,
        "has no tag",
    ),
    (
        "ecs-awslogs",
        TASK,
        containers(GOOD_CONTAINER),
        containers({**GOOD_CONTAINER, "logConfiguration": None}),
        None,
        "does not ship logs with awslogs",
    ),
    (
        "ecs-not-privileged",
        TASK,
        containers({**GOOD_CONTAINER, "privileged": False}),
        containers({**GOOD_CONTAINER, "privileged": True}),
        None,
        "runs privileged",
    ),
    (
        "ecs-secrets-not-in-environment",
        TASK,
        containers(GOOD_CONTAINER),
        containers({**GOOD_CONTAINER, "environment": [{"name": "GITHUB_TOKEN", "value": "x"}]}),
        None,
        "passes 'GITHUB_TOKEN' as a plain environment value",
    ),
    (
        "ecs-no-public-ip",
        "aws:ecs/service:Service",
        {"networkConfiguration": {"assignPublicIp": False}},
        {"networkConfiguration": {"assignPublicIp": True}},
        None,
        "assigns public IPs",
    ),
    (
        "ecs-task-size-cap",
        TASK,
        {"cpu": "1024", "memory": "4096"},
        {"cpu": "4096", "memory": "4096"},
        {"maxCpu": 1024, "maxMemoryMib": 4096},
        "asks for cpu 4096, above this environment's cap of 1024",
    ),
    (
        "iam-no-star-action-on-star-resource",
        ROLE_POLICY,
        iam({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
        iam({"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}),
        None,
        "every action on every resource",
    ),
    (
        "iam-no-passrole-on-star",
        ROLE_POLICY,
        iam({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/x"}),
        iam({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}),
        None,
        "iam:PassRole on every role",
    ),
    (
        "iam-trusted-principals",
        "aws:iam/role:Role",
        trust({"Service": "ecs-tasks.amazonaws.com"}),
        trust({"AWS": "arn:aws:iam::999999999999:root"}),
        None,
        "trusts the AWS principal",
    ),
    (
        "iam-trusted-principals",
        "aws:iam/role:Role",
        trust({"Service": "ecs-tasks.amazonaws.com"}),
        trust({"Service": "lambda.amazonaws.com"}),
        None,
        "unexpected service 'lambda.amazonaws.com'",
    ),
    (
        "log-group-retention",
        "aws:cloudwatch/logGroup:LogGroup",
        {"retentionInDays": 14},
        {},
        None,
        "keeps logs forever",
    ),
    (
        "kms-key-rotation",
        "aws:kms/key:Key",
        {"enableKeyRotation": True},
        {"enableKeyRotation": False},
        None,
        "does not rotate",
    ),
    (
        "ecr-immutable-tags",
        "aws:ecr/repository:Repository",
        {"imageTagMutability": "IMMUTABLE"},
        {"imageTagMutability": "MUTABLE"},
        None,
        "allows tags to be overwritten",
    ),
    (
        "ecr-scan-on-push",
        "aws:ecr/repository:Repository",
        {"imageScanningConfiguration": {"scanOnPush": True}},
        {},
        None,
        "does not scan images on push",
    ),
    (
        "required-cost-tags",
        "aws:s3/bucket:Bucket",
        {"tags": TAGS},
        {"tags": {"Owner": "o"}},
        None,
        "missing the cost tag(s) CostCenter, Project",
    ),
    ("ebs-encrypted", "aws:ebs/volume:Volume", {"encrypted": True}, {"encrypted": False}, None, "is not encrypted"),
    (
        "rds-storage-encrypted",
        "aws:rds/instance:Instance",
        {"storageEncrypted": True},
        {},
        None,
        "storage is not encrypted",
    ),
    (
        "rds-not-public",
        "aws:rds/instance:Instance",
        {"publiclyAccessible": False},
        {"publiclyAccessible": True},
        None,
        "publicly accessible",
    ),
    (
        "alb-http-redirects-to-https",
        "aws:lb/listener:Listener",
        {
            "protocol": "HTTP",
            "defaultActions": [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443"}}],
        },
        {"protocol": "HTTP", "defaultActions": [{"type": "forward"}]},
        None,
        "does not redirect to HTTPS",
    ),
    (
        "elb-deletion-protection",
        "aws:lb/loadBalancer:LoadBalancer",
        {"enableDeletionProtection": True},
        {},
        {"required": True},
        "no deletion protection",
    ),
    (
        "elb-access-logs",
        "aws:lb/loadBalancer:LoadBalancer",
        {"accessLogs": {"enabled": True, "bucket": "logs"}},
        {},
        None,
        "does not write access logs",
    ),
]


LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY = "aws:kms/key:Key"
SECURITY_RESOURCE_CASES = [
    (
        "iam-no-star-where-scopable",
        ROLE_POLICY,
        iam({"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecs:ListAccountSettings"], "Resource": "*"}),
        iam({"Effect": "Allow", "Action": ["ecs:StopTask"], "Resource": "*"}),
        None,
        "allows ecs:StopTask on '*' though IAM scopes it to arn:${Partition}:ecs:",
    ),
    (
        "iam-trust-source-condition",
        "aws:iam/role:Role",
        {
            "assumeRolePolicy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}},
                        }
                    ]
                }
            )
        },
        trust({"Service": "ecs-tasks.amazonaws.com"}),
        None,
        "trusts ecs-tasks.amazonaws.com without aws:SourceAccount or aws:SourceArn",
    ),
    (
        "ecs-read-only-root-filesystem",
        TASK,
        containers({**GOOD_CONTAINER, "readonlyRootFilesystem": True}),
        containers({**GOOD_CONTAINER, "readonlyRootFilesystem": False}),
        None,
        "container 'app' of 'r' has a writable root filesystem",
    ),
    (
        "no-open-egress",
        SG,
        {"egress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]},
        {"egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
        None,
        "allows egress to the internet on -1 0-0",
    ),
    (
        "no-open-egress",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        {"ipProtocol": "tcp", "fromPort": 8786, "toPort": 8787, "referencedSecurityGroupId": "sg-1"},
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv6": "::/0"},
        None,
        "allows egress to the internet on tcp 22-22",
    ),
    ("log-group-encrypted", LOG_GROUP, {"kmsKeyId": "arn:aws:kms:k"}, {}, None, "is not encrypted"),
    (
        "log-group-retention-minimum",
        LOG_GROUP,
        {"retentionInDays": 365.0},
        {"retentionInDays": 30.0},
        {"minimumDays": 90},
        "keeps logs 30 days, below this tier's 90",
    ),
    (
        "kms-key-policy",
        KEY,
        {
            "policy": json.dumps(
                {
                    "Statement": [
                        {"Sid": "Admin", "Effect": "Allow", "Action": ["kms:Put*", "kms:ScheduleKeyDeletion"]},
                        {"Sid": "Use", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"]},
                    ]
                }
            )
        },
        {},
        None,
        "has no key policy of its own",
    ),
    (
        "kms-key-policy",
        KEY,
        {"policy": json.dumps({"Statement": [{"Sid": "Use", "Effect": "Allow", "Action": ["kms:Decrypt"]}]})},
        {"policy": json.dumps({"Statement": [{"Sid": "Everything", "Effect": "Allow", "Action": "kms:*"}]})},
        None,
        "lets the same principals administer and use it (Everything)",
    ),
    (
        "s3-delete-scoped",
        ROLE_POLICY,
        {
            "role": "flow-run-task-id",
            **iam({"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::b/raw/x/*"]}),
        },
        {
            "role": "dask-task-id",
            **iam({"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::b/raw/x/*"]}),
        },
        None,
        "role 'dask-task' may delete objects",
    ),
    (
        "s3-delete-scoped",
        ROLE_POLICY,
        {
            "role": "flow-run-task-id",
            **iam({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}),
        },
        {
            "role": "flow-run-task-id",
            **iam({"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::b/*"]}),
        },
        None,
        "may delete under arn:aws:s3:::b/*, wider than a dataset's prefix",
    ),
]
RESOURCE_CASES += SECURITY_RESOURCE_CASES
RESOURCE_CASES += [
    (
        "iam-permissions-boundary",
        "aws:iam/role:Role",
        {"assumeRolePolicy": json.dumps({"Statement": []}), "permissionsBoundary": "arn:aws:iam::1:policy/b"},
        {"assumeRolePolicy": json.dumps({"Statement": []})},
        None,
        "role 'r' has no permissions boundary",
    ),
    (
        "kms-key-policy",
        KEY,
        {"policy": json.dumps({"Statement": [{"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": "arn:1"}}]})},
        {
            "policy": json.dumps(
                {"Statement": [{"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt"}]}
            )
        },
        None,
        "may be used by anyone (Anyone, FSBP KMS.5)",
    ),
    (
        "ecs-container-insights",
        "aws:ecs/cluster:Cluster",
        {"settings": [{"name": "containerInsights", "value": "enabled"}]},
        {"settings": [{"name": "containerInsights", "value": "disabled"}]},
        None,
        "does not have Container Insights enabled",
    ),
    (
        "ecs-awsvpc-network-mode",
        TASK,
        {"networkMode": "awsvpc"},
        {"networkMode": "host"},
        None,
        "does not isolate its network (networkMode 'host')",
    ),
    (
        "iam-no-service-wildcard-actions",
        ROLE_POLICY,
        iam({"Effect": "Allow", "Action": ["sqs:ReceiveMessage"], "Resource": "arn:aws:sqs:r:1:q"}),
        iam({"Effect": "Allow", "Action": ["sqs:*"], "Resource": "arn:aws:sqs:r:1:q"}),
        None,
        "allows every action of a service (sqs:*)",
    ),
    (
        "sqs-encrypted",
        "aws:sqs/queue:Queue",
        {"sqsManagedSseEnabled": True},
        {"sqsManagedSseEnabled": False},
        None,
        "queue 'r' is not encrypted at rest",
    ),
    (
        "sns-encrypted",
        "aws:sns/topic:Topic",
        {"kmsMasterKeyId": "arn:aws:kms:r:1:key/k"},
        {},
        None,
        "topic 'r' is not encrypted at rest",
    ),
    (
        "sns-encrypted",
        "aws:sns/topic:Topic",
        {"kmsMasterKeyId": "arn:aws:kms:r:1:alias/alerts"},
        {"kmsMasterKeyId": "alias/aws/sns"},
        None,
        "encrypted with the AWS-managed key alias/aws/sns: AWS Budgets, CloudWatch alarms and EventBridge cannot",
    ),
]


@pytest.mark.parametrize(
    ("policy", "type_", "good", "bad", "config", "words"),
    RESOURCE_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(RESOURCE_CASES)],
)
def test_resource_rules_pass_compliant_and_catch_violating(
    policy: str, type_: str, good: dict[str, Any], bad: dict[str, Any], config: dict[str, Any] | None, words: str
) -> None:
    assert check_resource(policy, type_, good, config) == []
    messages = check_resource(policy, type_, bad, config)
    assert len(messages) >= 1
    assert words in messages[0]


def test_cost_tags_may_come_from_the_provider_default_tags() -> None:
    provider = {"defaultTags": json.dumps({"tags": TAGS})}
    assert check_resource("required-cost-tags", "aws:s3/bucket:Bucket", {}, None, provider) == []
    assert check_resource("required-cost-tags", "aws:s3/bucketPolicy:BucketPolicy", {}) == [], "not taggable"


BUCKET = ("aws:s3/bucket:Bucket", "b", {}, [])
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
STACK_CASES = [
    (
        "s3-bucket-encrypted",
        [BUCKET, (SSE, "sse", {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}, ["b"])],
        [BUCKET],
        None,
        "has no server-side encryption",
    ),
    (
        "s3-public-access-blocked",
        [
            BUCKET,
            (
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                "pab",
                dict.fromkeys(
                    ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
                ),
                ["b"],
            ),
        ],
        [BUCKET, ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", {"blockPublicAcls": True}, ["b"])],
        None,
        "does not block all public access",
    ),
    (
        "s3-tls-only",
        [
            BUCKET,
            (
                "aws:s3/bucketPolicy:BucketPolicy",
                "p",
                iam(
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ),
                ["b"],
            ),
        ],
        [
            BUCKET,
            (
                "aws:s3/bucketPolicy:BucketPolicy",
                "p",
                iam({"Effect": "Allow", "Principal": {"AWS": "x"}, "Action": "s3:*"}),
                ["b"],
            ),
        ],
        None,
        "has no policy denying non-TLS access",
    ),
    (
        "s3-versioning",
        [
            BUCKET,
            (
                "aws:s3/bucketVersioning:BucketVersioning",
                "v",
                {"versioningConfiguration": {"status": "Enabled"}},
                ["b"],
            ),
        ],
        [
            BUCKET,
            (
                "aws:s3/bucketVersioning:BucketVersioning",
                "v",
                {"versioningConfiguration": {"status": "Suspended"}},
                ["b"],
            ),
        ],
        {"required": True},
        "is not versioned",
    ),
    (
        "no-internet-ingress",
        [
            (
                SG,
                "lb-sg",
                {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]},
                [],
            ),
            ("aws:lb/loadBalancer:LoadBalancer", "lb", {}, ["lb-sg"]),
        ],
        [
            (
                SG,
                "app-sg",
                {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]},
                [],
            )
        ],
        None,
        "allows ingress from the internet on ports 443-443",
    ),
    (
        "vpc-flow-logs",
        [("aws:ec2/vpc:Vpc", "vpc", {}, []), ("aws:ec2/flowLog:FlowLog", "fl", {}, ["vpc"])],
        [("aws:ec2/vpc:Vpc", "vpc", {}, [])],
        {"required": True},
        "has no flow logs",
    ),
    (
        "nat-gateway-cap",
        [("aws:ec2/natGateway:NatGateway", "n0", {}, [])],
        [("aws:ec2/natGateway:NatGateway", "n0", {}, []), ("aws:ec2/natGateway:NatGateway", "n1", {}, [])],
        {"maxNatGateways": 1},
        "2 NAT gateways exceed this environment's cap of 1",
    ),
]


VPC = ("aws:ec2/vpc:Vpc", "v", {"cidrBlock": "10.0.0.0/16"}, [])
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
REPOSITORY = ("aws:ecr/repository:Repository", "repo", {}, [])
SECRET = ("aws:secretsmanager/secret:Secret", "s", {"name": "app/db-password"}, [])


def github_role(
    subject: str, operator: str = "StringEquals", audience: str = "sts.amazonaws.com", inline: list[str] | None = None
) -> Any:
    """A role trusted from GitHub Actions' OIDC provider for ``subject``."""
    condition: dict[str, Any] = {operator: {"token.actions.githubusercontent.com:sub": subject}}
    if audience:
        condition.setdefault("StringEquals", {})["token.actions.githubusercontent.com:aud"] = audience
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "Federated": "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": condition,
            }
        ],
    }
    props: dict[str, Any] = {"assumeRolePolicy": json.dumps(trust)}
    if inline:
        document = {"Statement": [{"Effect": "Allow", "Action": inline, "Resource": "*"}]}
        props["inlinePolicies"] = [{"name": "inline", "policy": json.dumps(document)}]
    return ("aws:iam/role:Role", "deploy", props, [])


def attachment(arn: str) -> Any:
    return ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "attach", {"policyArn": arn}, ["deploy"])


BOUNDARY = "arn:aws:iam::111111111111:policy/mlwf-prod-boundary"
BOUNDED_WRITES = {
    "Effect": "Allow",
    "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
    "Resource": "arn:aws:iam::111111111111:role/mlwf-prod-*",
    "Condition": {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}},
}
DENY_UNBOUND = {"Effect": "Deny", "Action": ["iam:DeleteRolePermissionsBoundary"], "Resource": "*"}


def role_policy(*statements: dict[str, Any]) -> Any:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return ("aws:iam/rolePolicy:RolePolicy", "deploy-policy", {"policy": json.dumps(document)}, ["deploy"])


def environment(name: str, reviewers: list[dict[str, Any]] | None = None, custom: bool = True) -> Any:
    props: dict[str, Any] = {"environment": name, "repository": "platform", "preventSelfReview": True}
    if reviewers is not None:
        props["reviewers"] = reviewers
    if custom:
        props["deploymentBranchPolicy"] = {"customBranchPolicies": True, "protectedBranches": False}
    return ("github:index/repositoryEnvironment:RepositoryEnvironment", name, props, [])


def branch_policy(environment: str, pattern: str = "main") -> Any:
    props = {"environment": environment, "repository": "platform", "branchPattern": pattern}
    return (
        "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
        f"{environment}-main",
        props,
        [environment],
    )


STACK_CASES += [
    (
        "vpc-interface-endpoints",
        [
            VPC,
            *(
                (
                    "aws:ec2/vpcEndpoint:VpcEndpoint",
                    f"e{i}",
                    {"serviceName": f"com.amazonaws.us-east-1.{service}"},
                    ["v"],
                )
                for i, service in enumerate(["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "sts", "s3"])
            ),
        ],
        [VPC, ("aws:ec2/vpcEndpoint:VpcEndpoint", "e", {"serviceName": "com.amazonaws.us-east-1.s3"}, ["v"])],
        None,
        "VPC 'v' has no endpoint for ecr.api, ecr.dkr, logs, secretsmanager, ssm, sts",
    ),
    (
        "s3-acls-disabled",
        [BUCKET, (OWNERSHIP, "own", {"rule": {"objectOwnership": "BucketOwnerEnforced"}}, ["b"])],
        [BUCKET, (OWNERSHIP, "own", {"rule": {"objectOwnership": "ObjectWriter"}}, ["b"])],
        None,
        "'own' keeps ACLs enabled",
    ),
    (
        "s3-acls-disabled",
        [BUCKET, (OWNERSHIP, "own", {"rule": {"objectOwnership": "BucketOwnerEnforced"}}, ["b"])],
        [BUCKET],
        None,
        "bucket 'b' does not disable ACLs",
    ),
    (
        "s3-lifecycle",
        [BUCKET, ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc", {}, ["b"])],
        [BUCKET],
        None,
        "bucket 'b' has no lifecycle configuration",
    ),
    (
        "ecr-lifecycle-policy",
        [REPOSITORY, ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "lp", {}, ["repo"])],
        [REPOSITORY],
        None,
        "ECR repository 'repo' has no lifecycle policy",
    ),
    (
        "vpc-default-sg-closed",
        [VPC, ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "default", {}, ["v"])],
        [VPC],
        None,
        "VPC 'v' leaves its default security group unmanaged",
    ),
    (
        "vpc-default-sg-closed",
        [VPC, ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "default", {}, ["v"])],
        [
            VPC,
            (
                "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
                "default",
                {"ingress": [{"protocol": "-1", "self": True}]},
                ["v"],
            ),
        ],
        None,
        "the default security group 'default' has rules",
    ),
    (
        "secretsmanager-rotation",
        [SECRET, ("aws:secretsmanager/secretRotation:SecretRotation", "r", {}, ["s"])],
        [SECRET],
        {"exempt": {"other/*": "not this one"}},
        "secret 'app/db-password' has no automatic rotation and no exemption with a reason",
    ),
    (
        "secretsmanager-rotation",
        [SECRET, ("aws:secretsmanager/secretRotation:SecretRotation", "r", {}, ["s"])],
        [SECRET],
        {"exempt": {"app/*": "  "}},  # an exemption without its reason exempts nothing
        "secret 'app/db-password' has no automatic rotation",
    ),
    (
        "iam-github-oidc-trust",
        [github_role("repo:acme/platform:environment:prod")],
        [github_role("repo:acme/*:environment:prod")],
        None,
        "role 'deploy' trusts GitHub without an exact subject",
    ),
    (
        "iam-github-oidc-trust",
        [github_role("repo:acme/platform:environment:prod")],
        [github_role("repo:acme/platform:environment:prod", operator="StringLike")],
        None,
        "without an exact subject (StringEquals",
    ),
    (
        "iam-github-oidc-trust",
        [github_role("repo:acme/platform:environment:prod")],
        [github_role("repo:acme/platform:environment:prod", audience="")],
        None,
        "role 'deploy' trusts GitHub without the audience sts.amazonaws.com exactly",
    ),
    (
        "iam-github-oidc-trust",
        [github_role("repo:acme/platform:pull_request"), attachment("arn:aws:iam::aws:policy/ReadOnlyAccess")],
        [github_role("repo:acme/platform:pull_request"), attachment("arn:aws:iam::aws:policy/AdministratorAccess")],
        None,
        "can write (arn:aws:iam::aws:policy/AdministratorAccess)",
    ),
    (
        "iam-github-oidc-trust",
        [github_role("repo:acme/platform:environment:dev-read"), attachment("arn:aws:iam::aws:policy/ReadOnlyAccess")],
        [github_role("repo:acme/platform:environment:dev-read"), attachment("arn:aws:iam::aws:policy/PowerUserAccess")],
        None,
        "may be assumed from pull requests or a *-read environment and can write",
    ),
    (
        "iam-github-oidc-trust",
        [github_role("repo:acme/platform:pull_request", inline=["ecr:DescribeImages", "s3:GetObject"])],
        [github_role("repo:acme/platform:pull_request", inline=["ecr:DescribeImages", "s3:PutObject"])],
        None,
        "can write (s3:PutObject)",
    ),
    (
        "iam-deploy-role-contained",
        [github_role("repo:acme/platform:environment:prod"), role_policy(BOUNDED_WRITES, DENY_UNBOUND)],
        [
            github_role("repo:acme/platform:environment:prod"),
            role_policy({**BOUNDED_WRITES, "Condition": {}}, DENY_UNBOUND),
        ],
        None,
        "may iam:CreateRole without a permissions boundary",
    ),
    (
        "iam-deploy-role-contained",
        [github_role("repo:acme/platform:environment:prod"), role_policy(BOUNDED_WRITES, DENY_UNBOUND)],
        [github_role("repo:acme/platform:environment:prod"), role_policy(BOUNDED_WRITES)],
        None,
        "is not denied iam:DeleteRolePermissionsBoundary",
    ),
    (
        "iam-deploy-role-contained",
        [github_role("repo:acme/platform:environment:prod", inline=["ecs:RunTask"]), role_policy(DENY_UNBOUND)],
        [
            github_role("repo:acme/platform:environment:prod", inline=["ecs:RunTask", "iam:*"]),
            role_policy(DENY_UNBOUND),
        ],
        None,
        "is granted IAM by wildcard or NotAction",
    ),
    (
        "github-environment-protection",
        [environment("prod", reviewers=[{"teams": [1]}]), branch_policy("prod")],
        [environment("prod", reviewers=[]), branch_policy("prod")],
        None,
        "GitHub environment 'prod' has no required reviewer",
    ),
    (
        "github-environment-protection",
        [environment("staging"), branch_policy("staging")],
        [environment("staging"), branch_policy("staging", "*")],
        None,
        "GitHub environment 'staging' must allow deployments from main only",
    ),
    (
        "s3-access-logging",
        [BUCKET, ("aws:s3/bucket:Bucket", "logs", {}, []), (LOGGING, "l", {"targetBucket": "logs-id"}, ["b", "logs"])],
        [BUCKET],
        {"required": True},
        "bucket 'b' has no server access logging",
    ),
]


@pytest.mark.parametrize(("policy", "good", "bad", "config", "words"), STACK_CASES, ids=[c[0] for c in STACK_CASES])
def test_stack_rules_pass_compliant_and_catch_violating(
    policy: str, good: list[Any], bad: list[Any], config: dict[str, Any] | None, words: str
) -> None:
    assert check_stack(policy, good, config) == []
    messages = check_stack(policy, bad, config)
    assert len(messages) == 1
    assert words in messages[0]


def test_dev_read_is_open_to_pull_requests_by_default_and_closes_by_config() -> None:
    # Pull requests preview dev in dev-read: it must take any branch unless configured otherwise.
    preview = [environment("dev-read", custom=False)]
    assert check_stack("github-environment-protection", preview, None) == []
    (message,) = check_stack("github-environment-protection", preview, {"openEnvironments": []})
    assert "GitHub environment 'dev-read' must allow deployments from main only" in message


def test_a_secret_exempted_by_name_with_its_reason_needs_no_rotation() -> None:
    assert check_stack("secretsmanager-rotation", [SECRET], {"exempt": {"app/*": "issued elsewhere"}}) == []
    prod = resolved_config(config_file(REPO / "policies", "prod", "prod"))["secretsmanager-rotation"][1]
    (why,) = prod["exempt"].values()
    assert "Prefect Cloud" in why


def test_every_rule_has_cases_and_reads_as_a_rule() -> None:
    covered = {c[0] for c in RESOURCE_CASES} | {c[0] for c in STACK_CASES}
    assert covered == set(BY_NAME)
    assert len(POLICIES) >= 20
    for policy in POLICIES:
        assert policy.name == policy.name.lower()
        assert " " not in policy.name
        assert " must " in policy.description or " may only " in policy.description


def test_unknown_values_do_not_crash_a_rule() -> None:
    props = {
        "containerDefinitions": UNKNOWN_STRING_VALUE,
        "networkConfiguration": {"assignPublicIp": UNKNOWN_STRING_VALUE},
    }
    crashes = {}
    for policy in POLICIES:
        if policy.name not in {c[0] for c in STACK_CASES}:
            try:
                check_resource(policy.name, TASK, props)
            except UnknownValueError:
                pass  # the engine's signal: "can't be known during preview", reported as advisory
            except Exception as exc:
                crashes[policy.name] = repr(exc)
    assert crashes == {}


@pytest.fixture(scope="module")
def platform_plans() -> dict[str, list[Any]]:
    return {env: plan_environment(load_environment(env, REPO / "environments"), list(ORDER), REPO) for env in ENVS}


@pytest.mark.parametrize("env", ENVS)
def test_platform_stacks_have_no_mandatory_violations(platform_plans: dict[str, list[Any]], env: str) -> None:
    config = resolved_config(config_file(REPO / "policies", env, env))
    for plan in platform_plans[env]:
        assert [v for v in evaluate(plan, config) if v["level"] == "mandatory"] == [], plan.stack


def test_removing_a_guardrail_from_a_stack_is_caught(platform_plans: dict[str, list[Any]]) -> None:
    """Stack-level pairing works on real plans: drop the bucket's public access block."""
    storage = next(p for p in platform_plans["prod"] if p.stack == "storage")
    stripped = type(storage)(storage.env, storage.stack, list(storage.resources))
    index = next(i for i, r in enumerate(stripped.resources) if r.type.endswith("BucketPublicAccessBlock"))
    stripped.resources = [r for i, r in enumerate(stripped.resources) if i != index]
    for r in stripped.resources:
        r.dependencies = [d - (d > index) for d in r.dependencies if d != index]
    violations = evaluate(stripped, resolved_config(config_file(REPO / "policies", "prod", "prod")))
    assert [(v["policy"], v["level"]) for v in violations] == [("s3-public-access-blocked", "mandatory")]


@pytest.fixture(scope="module")
def insecure_plans() -> dict[str, Any]:
    return {env: plan_program(INSECURE, load_environment(env, REPO / "environments"), REPO) for env in ("dev", "prod")}


def test_the_insecure_example_triggers_every_rule_family(insecure_plans: dict[str, Any]) -> None:
    fired: set[str] = set()
    for env, plan in insecure_plans.items():
        fired |= {v["policy"] for v in evaluate(plan, resolved_config(config_file(REPO / "policies", env, env)))}
    assert set(FAMILIES.values()) == {FAMILIES[p] for p in fired}
    assert fired == set(BY_NAME), f"never fired: {sorted(set(BY_NAME) - fired)}"


def test_enforcement_levels_differ_per_environment() -> None:
    dev = resolved_config(config_file(REPO / "policies", "dev", "dev"))
    prod = resolved_config(config_file(REPO / "policies", "prod", "prod"))
    assert dev["s3-versioning"] == ("advisory", {"required": False})
    assert prod["s3-versioning"] == ("mandatory", {"required": True})
    assert dev["nat-gateway-cap"][1]["maxNatGateways"] == 1


@pytest.mark.parametrize("env", ENVS)
def test_policy_caps_admit_the_environments_own_settings(env: str) -> None:
    settings = load_environment(env, REPO / "environments")
    config = resolved_config(config_file(REPO / "policies", env, env))
    assert config["ecs-task-size-cap"][1]["maxCpu"] >= settings.dask.worker_cpu
    assert config["ecs-task-size-cap"][1]["maxMemoryMib"] >= settings.dask.worker_memory_mib
    assert config["nat-gateway-cap"][1]["maxNatGateways"] >= settings.network.nat_gateways


@pytest.mark.reliability
def test_a_policy_config_naming_an_unknown_rule_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "dev.json"
    bad.write_text(json.dumps({"all": "mandatory", "s3-encryptoin": "advisory"}))
    with pytest.raises(UserError, match="unknown policy name"):
        resolved_config(bad)


@pytest.mark.slow
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_pack_process_reports_exactly_the_offline_result(
    insecure_plans: dict[str, Any], platform_plans: dict[str, list[Any]], env: str
) -> None:
    config = resolved_config(config_file(REPO / "policies", env, env))
    with policy_pack_process() as analyzer:
        assert analyzer.info().name == "mlwf-guardrails"
        analyzer.configure(config)
        for plan in [insecure_plans[env], *platform_plans[env]]:
            offline = evaluate(plan, config)
            over_grpc, _ = analyzer.analyze(plan.resources)
            assert over_grpc == offline, plan.stack
        assert len(evaluate(insecure_plans[env], config)) > 30


@pytest.mark.slow
def test_the_pack_process_survives_unknown_values(insecure_plans: dict[str, Any]) -> None:
    plan = insecure_plans["dev"]
    task = next(r for r in plan.resources if r.type == TASK)
    unknown = type(task)(
        task.type,
        task.name,
        {
            "containerDefinitions": UNKNOWN_STRING_VALUE,
            "cpu": UNKNOWN_STRING_VALUE,
            "tags": TAGS,
            "networkMode": "awsvpc",
        },
        task.urn,
    )
    with policy_pack_process() as analyzer:
        analyzer.configure(resolved_config(config_file(REPO / "policies", "dev", "dev")))
        violations, diagnostics = analyzer.analyze([unknown])
        assert violations == []
        assert any("can't be known during preview" in d.message for d in diagnostics)


def test_the_docs_table_matches_the_rules_and_their_levels() -> None:
    from mlwf.policy.pack import levels_table
    from mlwf.settings import load_environments

    envs = [(s.name, s.tier) for s in load_environments(REPO / "environments")]
    assert levels_table(REPO / "policies", envs) in (REPO / "docs" / "policies.md").read_text()


def test_the_security_page_names_every_control_rule() -> None:
    from mlwf.policy import fsbp_rules, security_rules

    page = (REPO / "docs" / "security.md").read_text()
    for policy in [*security_rules.POLICIES, *fsbp_rules.POLICIES]:
        assert f"`{policy.name}`" in page, policy.name
