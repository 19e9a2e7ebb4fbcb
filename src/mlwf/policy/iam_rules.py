"""IAM guardrails on identity policies and trust policies, GitHub's OIDC trusts included: an
exact subject (no wildcard repository, branch or environment), the STS audience, and a role a
pull request can assume holding read-only permissions only."""

from __future__ import annotations

import fnmatch
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

DEFAULT_SERVICES = [
    "ecs-tasks.amazonaws.com",
    "vpc-flow-logs.amazonaws.com",
    "events.amazonaws.com",
    "scheduler.amazonaws.com",
]


def _allows(args: ResourceValidationArgs) -> list[tuple[list[str], list[str]]]:
    out = []
    for document in policy_documents(args.resource_type, args.props):
        for st in statements(document):
            if st.get("Effect", "Allow") == "Allow":
                out.append(([str(a) for a in as_list(st.get("Action"))], [str(r) for r in as_list(st.get("Resource"))]))
    return out


def _no_admin(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for actions, resources in _allows(args):
        if "*" in resources and any(a in ("*", "*:*") for a in actions):
            report_violation(f"'{args.name}' allows every action on every resource ('*' on '*')")


iam_no_star_on_star = ResourceValidationPolicy(
    name="iam-no-star-action-on-star-resource",
    description="IAM policies must not allow '*' actions on '*' resources.",
    validate=_no_admin,
)


def _pass_role(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for actions, resources in _allows(args):
        if action_matches(actions, "iam:PassRole") and "*" in resources:
            report_violation(f"'{args.name}' allows iam:PassRole on every role ('*')")


iam_no_passrole_on_star = ResourceValidationPolicy(
    name="iam-no-passrole-on-star",
    description="iam:PassRole must name the roles it may pass, never '*'.",
    validate=_pass_role,
)


def _trust(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:iam/role:Role":
        return
    allowed = set(config_value(args.get_config(), "allowedServices", DEFAULT_SERVICES))
    for st in statements(args.props.get("assumeRolePolicy")):
        if st.get("Effect", "Allow") != "Allow":
            continue
        principal = st.get("Principal")
        if not isinstance(principal, Mapping):
            report_violation(f"role '{args.name}' may be assumed by any principal ('{principal}')")
            continue
        for kind, values in principal.items():
            for value in as_list(values):
                if kind == "Federated" and str(value).endswith(GITHUB_PROVIDER):
                    continue  # judged by iam-github-oidc-trust
                if kind != "Service":
                    report_violation(
                        f"role '{args.name}' trusts the {kind} principal '{value}', not a platform service"
                    )
                elif value not in allowed:
                    report_violation(f"role '{args.name}' trusts the unexpected service '{value}'")


iam_trusted_principals = ResourceValidationPolicy(
    name="iam-trusted-principals",
    description="IAM roles may only be assumed by the platform's expected service principals.",
    validate=_trust,
    config_schema=PolicyConfigSchema(properties={"allowedServices": {"type": "array", "items": {"type": "string"}}}),
)

GITHUB = "token.actions.githubusercontent.com"
GITHUB_PROVIDER = f":oidc-provider/{GITHUB}"
READ_ONLY_MANAGED = ("arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess")
READ_ACTIONS = ("Get", "List", "Describe", "BatchGet", "View")
# Subjects a pull request's code can hold: its own, and the `*-read` environments (dev-read admits
# pull-request branches for previews). A role trusting them may only read.
READ_ONLY_SUBJECTS = ["*:pull_request", "*:environment:*-read"]


def _github_statements(role: Any) -> list[Mapping[str, Any]]:
    return [
        st
        for st in statements(role.props.get("assumeRolePolicy"))
        if st.get("Effect", "Allow") == "Allow"
        and isinstance(st.get("Principal"), Mapping)
        and any(str(v).endswith(GITHUB_PROVIDER) for v in as_list(st["Principal"].get("Federated")))
    ]


def _exact(condition: Mapping[str, Any], key: str) -> tuple[list[str], list[str]]:
    """(values compared exactly, values compared with any other operator) of a condition key."""
    exact: list[str] = []
    other: list[str] = []
    for operator, block in condition.items():
        if isinstance(block, Mapping) and key in block:
            values = [str(v) for v in as_list(block[key])]
            (exact if operator == "StringEquals" else other).extend(values)
    return exact, other


def _writes(role: Any, resources: list[Any]) -> list[str]:
    """What a role may do beyond reading: attached managed policies other than AWS's read-only
    ones, and inline actions that are not reads."""
    found = [str(a) for a in as_list(role.props.get("managedPolicyArns")) if str(a) not in READ_ONLY_MANAGED]
    documents = list(policy_documents(role.resource_type, role.props))
    for other in resources:
        if role not in other.dependencies:
            continue
        if other.resource_type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
            arn = str(other.props.get("policyArn"))
            if arn not in READ_ONLY_MANAGED:
                found.append(arn)
        documents += policy_documents(other.resource_type, other.props)
    for document in documents:
        for st in statements(document):
            if st.get("Effect", "Allow") == "Allow":
                found += [
                    str(a) for a in as_list(st.get("Action")) if not str(a).split(":", 1)[-1].startswith(READ_ACTIONS)
                ]
    return found


def _github_trust(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    read_only = [str(p) for p in config_value(args.get_config(), "readOnlySubjects", READ_ONLY_SUBJECTS)]
    for role in (r for r in args.resources if r.resource_type == "aws:iam/role:Role"):
        for st in _github_statements(role):
            raw = st.get("Condition")
            condition: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            audiences, loose_audiences = _exact(condition, f"{GITHUB}:aud")
            subjects, loose_subjects = _exact(condition, f"{GITHUB}:sub")
            if audiences != ["sts.amazonaws.com"] or loose_audiences:
                report_violation(f"role '{role.name}' trusts GitHub without the audience sts.amazonaws.com exactly")
            if not subjects or loose_subjects or any(set(s) & set("*?") for s in subjects):
                report_violation(
                    f"role '{role.name}' trusts GitHub without an exact subject (StringEquals on {GITHUB}:sub, "
                    "no wildcard repository, branch or environment)"
                )
            if any(fnmatch.fnmatchcase(s, p) for s in subjects + loose_subjects for p in read_only):
                writes = _writes(role, list(args.resources))
                if writes:
                    report_violation(
                        f"role '{role.name}' may be assumed from pull requests or a *-read environment and can "
                        f"write ({writes[0]}): a pull request's code must never deploy"
                    )


iam_github_oidc_trust = StackValidationPolicy(
    name="iam-github-oidc-trust",
    description="Roles trusted from GitHub's OIDC provider must name an exact subject and the STS audience, "
    "and a role pull requests can assume may only read.",
    validate=_github_trust,
    config_schema=PolicyConfigSchema(properties={"readOnlySubjects": {"type": "array", "items": {"type": "string"}}}),
)

POLICIES = [iam_no_star_on_star, iam_no_passrole_on_star, iam_trusted_principals, iam_github_oidc_trust]
