"""IAM guardrails on identity policies and trust policies."""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

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

POLICIES = [iam_no_star_on_star, iam_no_passrole_on_star, iam_trusted_principals]
