"""Running one CrossGuard rule of the pack directly, as the engine would: a resource rule on one
resource, a stack rule on resources given as (type, name, props, names of their dependencies)."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from mlwf.policy.pack import BY_NAME

OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
Resource = tuple[str, str, dict[str, Any], list[str]]


def urn(type_: str, name: str) -> str:
    return f"urn:t::{type_}::{name}"


def check_resource(
    policy: str,
    type_: str,
    props: dict[str, Any],
    config: dict[str, Any] | None = None,
    provider: dict[str, Any] | None = None,
    *,
    name: str = "r",
) -> list[str]:
    """The messages one resource rule reports for one resource (with its provider's props)."""
    messages: list[str] = []
    provider_resource = PolicyProviderResource("pulumi:providers:aws", provider, "urn:p", "aws") if provider else None
    args = ResourceValidationArgs(
        type_, unknown_checking_proxy(props), urn(type_, name), name, OPTS, provider_resource, config or {}
    )
    BY_NAME[policy].validate(args, lambda message, urn=None: messages.append(message))  # type: ignore[misc]
    return messages


def stack_reports(
    policy: str, resources: list[Resource], config: dict[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    """(message, the URN it is reported on) for each violation of a stack rule."""
    built = {
        name: PolicyResource(type_, unknown_checking_proxy(props), urn(type_, name), name, OPTS, None, None, [], {})
        for type_, name, props, _ in resources
    }
    for _, name, _, deps in resources:
        built[name].dependencies.extend(built[d] for d in deps)
    reported: list[tuple[str, str | None]] = []
    BY_NAME[policy].validate(
        StackValidationArgs(list(built.values()), config or {}),
        lambda message, urn=None: reported.append((message, urn)),  # type: ignore[misc]
    )
    return reported


def check_stack(policy: str, resources: list[Resource], config: dict[str, Any] | None = None) -> list[str]:
    """The messages of a stack rule."""
    return [message for message, _ in stack_reports(policy, resources, config)]
