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

from mlwf.infra.plan import PlannedResource, StackPlan
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


def plan_and_check(
    settings: list[Any], stacks: list[str] | None, repo_root: Any, program: Any = None
) -> list[StackPlan]:
    """Plan each environment's stacks (or a program as a stack of each) offline and judge every
    plan with the pack under that environment's policy config (`config_file`). The bootstrap and
    github stacks (planned with the rest unless stacks are named) are judged under
    ``config/<stack>.json`` or else the strictest tier's config of the environments they serve."""
    from mlwf.infra.plan import plan_delivery, plan_environment, plan_program
    from mlwf.infra.stacks import DELIVERY_STACKS, check_stacks, delivery_served
    from mlwf.policy.pack import config_file, resolved_config
    from mlwf.settings import load_environments

    selected = check_stacks(stacks, delivery=program is None)
    if stacks is None and program is None:  # everything: the environments' accounts' and the repository's too
        selected += DELIVERY_STACKS
    per_environment = [s for s in selected if s not in DELIVERY_STACKS]
    plans: list[StackPlan] = []
    for env in settings:
        if program is not None:
            env_plans = [plan_program(program, env, repo_root)]
        elif per_environment:
            env_plans = plan_environment(env, per_environment, repo_root)
        else:
            env_plans = []
        config = resolved_config(config_file(repo_root / "policies", env.name, env.tier))
        for plan in env_plans:
            plan.violations = evaluate(plan, config)
        plans.extend(env_plans)
    delivery = [s for s in selected if s in DELIVERY_STACKS]
    if delivery:
        everyone = load_environments(repo_root / "environments")  # the --env ones may be fewer
        for plan in plan_delivery(delivery, settings, repo_root):
            strictest = delivery_served(plan.stack, plan.env, everyone)[-1]
            plan.violations = evaluate(
                plan, resolved_config(config_file(repo_root / "policies", plan.stack, strictest.tier))
            )
            plans.append(plan)
    return plans
