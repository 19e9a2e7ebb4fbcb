"""Guardrails of delivery: what the bootstrap and github stacks must hold for a pull request or
a stolen deploy credential to stay contained.

- ``iam-deploy-role-contained``: a role GitHub's jobs can assume that may create or change roles
  does so only with a permissions boundary (``iam:PermissionsBoundary`` on every such grant),
  cannot remove one, and holds no IAM wildcard.
- ``github-environment-protection``: every GitHub environment deploys from main only (but the
  ones configured open, dev-read by default, where pull requests preview dev), and the reviewed
  ones (prod by default) have at least one required reviewer who is not the one deploying.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlwf.policy.helpers import action_matches, as_list, config_value, policy_documents, statements
from mlwf.policy.iam_rules import GITHUB_PROVIDER

ROLE_WRITES = ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"]
ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
BRANCH_POLICY = "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"


def _github_roles(resources: list[Any]) -> list[Any]:
    found = []
    for role in resources:
        if role.resource_type != "aws:iam/role:Role":
            continue
        for st in statements(role.props.get("assumeRolePolicy")):
            principal = st.get("Principal")
            if isinstance(principal, Mapping) and any(
                str(v).endswith(GITHUB_PROVIDER) for v in as_list(principal.get("Federated"))
            ):
                found.append(role)
                break
    return found


def _role_statements(role: Any, resources: list[Any]) -> list[Mapping[str, Any]]:
    documents = list(policy_documents(role.resource_type, role.props))
    for other in resources:
        if role in other.dependencies and other.resource_type == "aws:iam/rolePolicy:RolePolicy":
            documents += policy_documents(other.resource_type, other.props)
    return [st for document in documents for st in statements(document)]


def _contained(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = list(args.resources)
    for role in _github_roles(resources):
        found = _role_statements(role, resources)
        allows = [st for st in found if st.get("Effect", "Allow") == "Allow"]
        for st in allows:
            actions = [str(a) for a in as_list(st.get("Action"))]
            if "NotAction" in st or any(a in ("*", "iam:*") or a.startswith("iam:*") for a in actions):
                report_violation(f"role '{role.name}' is granted IAM by wildcard or NotAction: name its actions")
                continue
            writes = [w for w in ROLE_WRITES if action_matches(actions, w)]
            condition = st.get("Condition")
            bounded = isinstance(condition, Mapping) and any(
                isinstance(block, Mapping) and "iam:PermissionsBoundary" in block and operator == "StringEquals"
                for operator, block in condition.items()
            )
            if writes and not bounded:
                report_violation(
                    f"role '{role.name}' may {writes[0]} without a permissions boundary "
                    "(StringEquals on iam:PermissionsBoundary): a deploy credential could create an administrator"
                )
        if any(action_matches([str(a) for a in as_list(st.get("Action"))], w) for st in allows for w in ROLE_WRITES):
            denies = [st for st in found if st.get("Effect") == "Deny"]
            if not any(
                action_matches([str(a) for a in as_list(st.get("Action"))], "iam:DeleteRolePermissionsBoundary")
                for st in denies
            ):
                report_violation(
                    f"role '{role.name}' may change roles but is not denied iam:DeleteRolePermissionsBoundary"
                )


iam_deploy_role_contained = StackValidationPolicy(
    name="iam-deploy-role-contained",
    description="A role GitHub's jobs assume must create or change roles only with a permissions boundary, "
    "must never remove one, and must hold no IAM wildcard.",
    validate=_contained,
)


def _bounded(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:iam/role:Role" or args.props.get("permissionsBoundary"):
        return
    trusted_by_github = any(
        isinstance(st.get("Principal"), Mapping)
        and any(str(v).endswith(GITHUB_PROVIDER) for v in as_list(st["Principal"].get("Federated")))
        for st in statements(args.props.get("assumeRolePolicy"))
    )
    if not trusted_by_github:
        report_violation(
            f"role '{args.name}' has no permissions boundary: the deploy role creates roles only with its "
            "environment's (mlwf.delivery.boundary_arn), so `pulumi up` would be denied"
        )


iam_permissions_boundary = ResourceValidationPolicy(
    name="iam-permissions-boundary",
    description="Every role of an environment must carry its permissions boundary (the deploy role may "
    "create roles only with it); GitHub's own roles, which an administrator creates, excepted.",
    validate=_bounded,
)

DEFAULT_REVIEWED = ["prod"]
DEFAULT_OPEN = ["dev-read"]


def _protected(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()
    reviewed = [str(e) for e in config_value(config, "reviewedEnvironments", DEFAULT_REVIEWED)]
    open_ = [str(e) for e in config_value(config, "openEnvironments", DEFAULT_OPEN)]
    branch_patterns: dict[str, list[str]] = {}
    for resource in args.resources:
        if resource.resource_type == BRANCH_POLICY:
            branch_patterns.setdefault(str(resource.props.get("environment")), []).append(
                str(resource.props.get("branchPattern") or resource.props.get("tagPattern"))
            )
    for resource in args.resources:
        if resource.resource_type != ENVIRONMENT:
            continue
        name = str(resource.props.get("environment"))
        if name in reviewed:
            reviewers = as_list(resource.props.get("reviewers"))
            people = [i for r in reviewers for k in ("teams", "users") for i in as_list(r.get(k))]
            if not people:
                report_violation(f"GitHub environment '{name}' has no required reviewer")
            if not resource.props.get("preventSelfReview"):
                report_violation(f"GitHub environment '{name}' lets the one who deploys approve it (preventSelfReview)")
        if name in open_:
            continue
        policy = resource.props.get("deploymentBranchPolicy")
        custom = isinstance(policy, Mapping) and bool(policy.get("customBranchPolicies"))
        if not custom or branch_patterns.get(name) != ["main"]:
            report_violation(
                f"GitHub environment '{name}' must allow deployments from main only "
                "(a job in it gets its OIDC subject whatever triggered it); "
                f"branches: {branch_patterns.get(name, 'any')}"
            )


github_environment_protection = StackValidationPolicy(
    name="github-environment-protection",
    description="GitHub environments must deploy from main only (but the open ones: dev-read) and the "
    "reviewed ones (prod) must have a required reviewer other than the one deploying.",
    validate=_protected,
    config_schema=PolicyConfigSchema(
        properties={
            "reviewedEnvironments": {"type": "array", "items": {"type": "string"}},
            "openEnvironments": {"type": "array", "items": {"type": "string"}},
        }
    ),
)

POLICIES = [iam_permissions_boundary, iam_deploy_role_contained, github_environment_protection]
