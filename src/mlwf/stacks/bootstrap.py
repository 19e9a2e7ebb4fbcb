"""The bootstrap stack: what an AWS account needs before any workflow can deploy to it, applied
once per account by an administrator (`mlwf deploy --env ENV --stack bootstrap`; the Pulumi stack
is named after the account, so environments sharing an account share it).

- GitHub's OIDC provider, and per environment of the account a deploy role trusted only from
  the repository's GitHub environment ``<env>`` and a read-only preview role trusted only from
  ``<env>-read`` (exact subjects and the STS audience: the policy pack's iam-github-oidc-trust).
- Per environment a permissions boundary, the most any role of its stacks may do: its deploy
  role creates and changes roles only with that boundary attached, never removes it, and cannot
  touch the bootstrap's own roles; so a deploy credential cannot mint an administrator.
- In the image's account: the image-push role (trusted from the ``image`` environment only), and
  ECR replication of the image's repository to every other environment's registry (digests are
  kept, so every environment deploys the same ``repository@sha256:...``); in the other accounts,
  the registry policy that lets the image's account replicate into them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.contract import PLATFORM, PLATFORM_TAG
from mlwf.delivery import (
    GITHUB_OIDC_HOST,
    IMAGE_ENVIRONMENT,
    IMAGE_ROLE,
    Delivery,
    boundary_arn,
    boundary_name,
    deploy_role_name,
    oidc_provider_arn,
    preview_role_name,
)
from mlwf.image_digests import DIGEST_PARAMETER_PREFIX
from mlwf.settings import Settings
from mlwf.stacks.iam import ECR_PULL, ECS_TASKS

# The services the environment stacks create resources in (IAM apart): a deploy role may use them
# in its environment's region. tests/test_bootstrap.py keeps it equal to what the plans create.
DEPLOY_SERVICES = (
    "cloudwatch",
    "ec2",
    "ecr",
    "ecs",
    "events",
    "kms",
    "logs",
    "s3",
    "scheduler",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
)
# Pulumi modules whose resources AWS files under another service's actions.
SERVICE_OF_TYPE = {"aws:vpc/": "ec2", "aws:cloudwatch/logGroup": "logs", "aws:cloudwatch/event": "events"}
# The services an environment's roles may pass a role to (their trust policies' principals).
PASSED_TO = [ECS_TASKS, "vpc-flow-logs.amazonaws.com", "scheduler.amazonaws.com", "events.amazonaws.com"]
# The most an environment's roles may do (their inline policies stay narrower), by service:
# what ECS tasks, Dask, Prefect's worker, the reaper, flow logs and the scheduler call.
# tests/test_bootstrap.py proves every action the environment's roles are granted is inside it.
BOUNDARY_ACTIONS = {
    "s3": [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    ],
    "kms": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
    "ecs": [
        "ecs:RunTask",
        "ecs:StopTask",
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "ecs:DescribeTaskDefinition",
        "ecs:DescribeClusters",
        "ecs:ListAccountSettings",
        "ecs:TagResource",
    ],
    "ec2": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
    "ecr": ECR_PULL,
    "logs": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents"],
    "secretsmanager": [
        "secretsmanager:GetSecretValue",
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:TagResource",
    ],
    "sqs": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"],
    "ssm": ["ssm:GetParameter"],
    "iam": ["iam:PassRole"],
    "cloudwatch": ["cloudwatch:PutMetricData"],
}
# Actions without a resource-level form: allowed on "*", in the region.
BOUNDARY_UNSCOPED = [
    "ecr:GetAuthorizationToken",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ecs:ListAccountSettings",
    "ecs:DescribeTaskDefinition",
    "secretsmanager:ListSecrets",
    "cloudwatch:PutMetricData",
]
IMAGE_PUSH = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
]
# Whatever a deploy role may do elsewhere, never these: push images or record their digests (the
# build's), read or put the API key (an administrator's), strip a boundary.
DEPLOY_DENIED = [
    "ecr:SetRepositoryPolicy",  # who may push or pull, replication: the bootstrap's, not a deploy's
    "ecr:DeleteRepositoryPolicy",
    "ecr:PutRegistryPolicy",
    "ecr:DeleteRegistryPolicy",
    "ecr:PutReplicationConfiguration",
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "iam:DeleteRolePermissionsBoundary",
]
ROLE_WRITES_UNDER_BOUNDARY = [
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
]
ROLE_MANAGEMENT = [
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRoleTags",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRole",
]
# Previews and drift refresh every resource; data, secrets and keys stay unreadable.
PREVIEW_DENIED = ["s3:GetObject*", "secretsmanager:GetSecretValue", "kms:Decrypt", "ssm:GetParameterHistory"]
READ_ONLY_ACCESS = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def service_of(resource_type: str) -> str:
    """The IAM service prefix of a Pulumi AWS resource type (``aws:vpc/...`` is EC2's)."""
    for prefix, service in SERVICE_OF_TYPE.items():
        if resource_type.startswith(prefix):
            return service
    return resource_type.split(":")[1].split("/")[0]


@dataclass(frozen=True)
class AccountContext:
    """What the bootstrap program of one account receives."""

    delivery: Delivery
    account_id: str

    @property
    def environments(self) -> list[Settings]:
        return self.delivery.accounts()[self.account_id]

    @property
    def holds_image(self) -> bool:
        return self.delivery.image_home.account_id == self.account_id


def _json(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(actions: list[str], resources: list[str], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        body["Condition"] = condition
    return body


def _deny(actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": actions, "Resource": resources}


def github_trust(provider_arn: str, subject: str) -> str:
    """Only jobs with exactly this OIDC subject, for STS."""
    return _json(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com", f"{GITHUB_OIDC_HOST}:sub": subject}
            },
        }
    )


def boundary_resources(env: Settings, service: str) -> list[str]:
    """Where the environment's roles may act, per service: its own resources in its region."""
    region, account, prefix = env.region, env.account_id, env.name_prefix
    return {
        "s3": [f"arn:aws:s3:::{prefix}-*"],
        "iam": [f"arn:aws:iam::{account}:role/{prefix}-*"],
        "logs": [f"arn:aws:logs:{region}:{account}:log-group:*"],
    }.get(service, [f"arn:aws:{service}:{region}:{account}:*"])


def boundary_document(env: Settings) -> str:
    scoped = [
        _allow([a for a in actions if a not in BOUNDARY_UNSCOPED], boundary_resources(env, service))
        for service, actions in BOUNDARY_ACTIONS.items()
    ]
    return _json(
        *(s for s in scoped if s["Action"]),
        _allow(BOUNDARY_UNSCOPED, ["*"], {"StringEquals": {"aws:RequestedRegion": env.region}}),
    )


def deploy_document(env: Settings) -> str:
    """What ``pulumi up`` of the environment's stacks needs, and no way around its boundary."""
    account, prefix = env.account_id, env.name_prefix
    roles = [f"arn:aws:iam::{account}:role/{prefix}-*"]
    boundary = boundary_arn(env)
    return _json(
        _allow(
            [f"{service}:*" for service in DEPLOY_SERVICES],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": env.region}},
        ),
        # AWS Budgets is global (its endpoint is us-east-1, whatever the environment's region)
        _allow(["budgets:*"], [f"arn:aws:budgets::{account}:budget/{prefix}-*"]),
        _allow(ROLE_WRITES_UNDER_BOUNDARY, roles, {"StringEquals": {"iam:PermissionsBoundary": boundary}}),
        _allow(ROLE_MANAGEMENT, roles),
        _allow(["iam:PassRole"], roles, {"StringEquals": {"iam:PassedToService": PASSED_TO}}),
        _allow(
            ["iam:CreateServiceLinkedRole"],
            [f"arn:aws:iam::{account}:role/aws-service-role/*"],
            {"StringEquals": {"iam:AWSServiceName": ["ecs.amazonaws.com"]}},
        ),
        _deny(DEPLOY_DENIED, ["*"]),
        _deny(
            ["ssm:PutParameter", "ssm:DeleteParameter"],
            [f"arn:aws:ssm:*:{account}:parameter{DIGEST_PARAMETER_PREFIX}*"],
        ),
        _deny(
            ["iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion"],
            [boundary],
        ),
    )


def preview_document(env: Settings) -> str:
    return _json(_deny(PREVIEW_DENIED, ["*"]))


def image_document(settings: Settings, repository: str) -> str:
    region, account = settings.region, settings.account_id
    return _json(
        _allow(IMAGE_PUSH, [f"arn:aws:ecr:{region}:{account}:repository/{repository}"]),
        _allow(["ecr:GetAuthorizationToken"], ["*"]),  # the action has no resource-level form
        _allow(
            ["ssm:GetParameter", "ssm:PutParameter"],
            [f"arn:aws:ssm:{region}:{account}:parameter{DIGEST_PARAMETER_PREFIX}*"],
        ),
    )


def account_provider(context: AccountContext) -> aws.Provider:
    """The account's provider: its first environment's region and cost tags, marked as the
    bootstrap's (IAM is global; the registry settings are regional)."""
    first = context.environments[0]
    tags = {**first.cost_tags, "ManagedBy": PLATFORM, PLATFORM_TAG: PLATFORM, "Stack": "bootstrap"}
    return aws.Provider(
        "aws",
        region=first.region,
        allowed_account_ids=[context.account_id],
        default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
    )


def bootstrap_program(context: AccountContext) -> dict[str, Any]:
    delivery, account = context.delivery, context.account_id
    provider = account_provider(context)
    opts = pulumi.ResourceOptions(provider=provider)
    github = aws.iam.OpenIdConnectProvider(
        "github", url=f"https://{GITHUB_OIDC_HOST}", client_id_lists=["sts.amazonaws.com"], opts=opts
    )
    provider_arn = oidc_provider_arn(account)
    after_provider = pulumi.ResourceOptions(provider=provider, depends_on=[github])
    exports: dict[str, Any] = {"oidc_provider_arn": github.arn}
    for env in context.environments:
        aws.iam.Policy(
            f"{env.name}-boundary",
            name=boundary_name(env),
            description=f"The most any role of the {env.name} environment may do",
            policy=boundary_document(env),
            opts=opts,
        )
        deploy = aws.iam.Role(
            f"{env.name}-deploy",
            name=deploy_role_name(env),
            assume_role_policy=github_trust(provider_arn, delivery.subject(env.name)),
            max_session_duration=7200,
            opts=after_provider,
        )
        aws.iam.RolePolicy(f"{env.name}-deploy", role=deploy.id, policy=deploy_document(env), opts=opts)
        preview = aws.iam.Role(
            f"{env.name}-preview",
            name=preview_role_name(env),
            assume_role_policy=github_trust(provider_arn, delivery.subject(f"{env.name}-read")),
            managed_policy_arns=[READ_ONLY_ACCESS],
            opts=after_provider,
        )
        aws.iam.RolePolicy(f"{env.name}-preview", role=preview.id, policy=preview_document(env), opts=opts)
        exports[f"{env.name}_deploy_role_arn"] = deploy.arn
        exports[f"{env.name}_preview_role_arn"] = preview.arn
    home = delivery.image_home
    if context.holds_image:
        image = aws.iam.Role(
            "image",
            name=IMAGE_ROLE,
            assume_role_policy=github_trust(provider_arn, delivery.subject(IMAGE_ENVIRONMENT)),
            opts=after_provider,
        )
        aws.iam.RolePolicy("image", role=image.id, policy=image_document(home, delivery.repository), opts=opts)
        exports["image_role_arn"] = image.arn
        destinations = [
            aws.ecr.ReplicationConfigurationReplicationConfigurationRuleDestinationArgs(region=region, registry_id=to)
            for to, region in delivery.registries()
        ]
        if destinations:
            aws.ecr.ReplicationConfiguration(
                "image",
                region=home.region,  # the image's registry, whatever region the provider has
                replication_configuration=aws.ecr.ReplicationConfigurationReplicationConfigurationArgs(
                    rules=[
                        aws.ecr.ReplicationConfigurationReplicationConfigurationRuleArgs(
                            destinations=destinations,
                            repository_filters=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleRepositoryFilterArgs(
                                    filter=delivery.repository, filter_type="PREFIX_MATCH"
                                )
                            ],
                        )
                    ]
                ),
                opts=opts,
            )
    # The image's account replicates into this account's registries (its own other regions included).
    for to, region in delivery.registries():
        if to == account:
            aws.ecr.RegistryPolicy(
                f"replication-{region}",
                region=region,
                policy=_json(
                    {
                        "Sid": "ReplicationFromTheImageAccount",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{home.account_id}:root"},
                        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
                        "Resource": [f"arn:aws:ecr:{region}:{account}:repository/{delivery.repository}"],
                    }
                ),
                opts=opts,
            )
    return exports
