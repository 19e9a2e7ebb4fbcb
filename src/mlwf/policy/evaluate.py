"""Offline evaluation of the pack on planned resources: the same validators the analyzer runs,
called directly with the arguments the engine would send (resource policies per resource, stack
policies on the whole stack, configuration and enforcement levels from the environment's file).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from mlwf.planned import PlannedResource, StackPlan
from mlwf.policy.pack import POLICIES

Violation = dict[str, str]


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _provider(resource: PlannedResource, providers: dict[str, PlannedResource]) -> PolicyProviderResource | None:
    provider = providers.get(resource.provider.rsplit("::", 1)[-1]) if resource.provider else None
    if provider is None:
        return None
    return PolicyProviderResource(
        provider.type, unknown_checking_proxy(dict(provider.inputs)), provider.urn, provider.name
    )


def _run(policy: Any, args: Any, report: Any) -> None:
    # As the engine does during preview: a rule cannot judge unknown values, so it is skipped.
    with contextlib.suppress(UnknownValueError):
        policy.validate(args, report)


def evaluate(plan: StackPlan, config: dict[str, tuple[str, dict[str, Any]]]) -> list[Violation]:
    """Every violation of the pack in one stack plan, in a stable order."""
    providers = {r.id: r for r in plan.resources if r.type.startswith("pulumi:providers:")}
    violations: list[Violation] = []

    def reporter(policy: str, level: str, default_urn: str) -> Any:
        def report(message: str, urn: str | None = None) -> None:
            violations.append({"policy": policy, "level": level, "resource": urn or default_urn, "message": message})

        return report

    policy_resources = [
        PolicyResource(
            r.type,
            unknown_checking_proxy(dict(r.inputs)),
            r.urn,
            r.name,
            _options(),
            _provider(r, providers),
            None,
            [],
            {},
        )
        for r in plan.resources
    ]
    for resource, planned in zip(policy_resources, plan.resources, strict=True):
        resource.dependencies.extend(policy_resources[i] for i in planned.dependencies)

    for policy in POLICIES:
        level, properties = config[policy.name]
        if level == "disabled":
            continue
        if isinstance(policy, ResourceValidationPolicy):
            for resource in policy_resources:
                args = ResourceValidationArgs(
                    resource.resource_type,
                    resource.props,
                    resource.urn,
                    resource.name,
                    resource.opts,
                    resource.provider,
                    properties,
                )
                _run(policy, args, reporter(policy.name, level, resource.urn))
        elif isinstance(policy, StackValidationPolicy):
            _run(policy, StackValidationArgs(policy_resources, properties), reporter(policy.name, level, ""))
    return sorted(violations, key=lambda v: (v["policy"], v["resource"], v["message"]))
