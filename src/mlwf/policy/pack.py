"""The policy pack: every rule, the pack's name, and the per-environment configuration in the
format the Pulumi CLI reads with ``--policy-pack-config`` (policies/config/<env>.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel, Policy, PolicyPack

from mlwf.errors import UserError
from mlwf.policy import (
    delivery_rules,
    ecs_rules,
    fsbp_rules,
    guard_rules,
    iam_rules,
    network_rules,
    platform_rules,
    security_rules,
    storage_rules,
)

PACK_NAME = "mlwf-guardrails"
DEFAULT_LEVEL = "mandatory"
LEVELS = ("advisory", "mandatory", "disabled")

POLICIES: list[Policy] = [
    *storage_rules.POLICIES,
    *network_rules.POLICIES,
    *ecs_rules.POLICIES,
    *iam_rules.POLICIES,
    *platform_rules.POLICIES,
    *security_rules.POLICIES,
    *fsbp_rules.POLICIES,
    *guard_rules.POLICIES,
    *delivery_rules.POLICIES,
]
BY_NAME: dict[str, Policy] = {p.name: p for p in POLICIES}
FAMILIES: dict[str, str] = {
    **{p.name: "s3" for p in storage_rules.POLICIES},
    **{p.name: "network" for p in network_rules.POLICIES},
    **{p.name: "ecs" for p in ecs_rules.POLICIES},
    **{p.name: "iam" for p in iam_rules.POLICIES},
    **{p.name: "logs-kms-ecr-tags" for p in platform_rules.POLICIES},
    **{p.name: "security" for p in security_rules.POLICIES},
    **{p.name: "fsbp" for p in fsbp_rules.POLICIES},
    **{p.name: "aws-guard" for p in guard_rules.POLICIES},
    **{p.name: "delivery" for p in delivery_rules.POLICIES},
}


def build_pack() -> PolicyPack:
    """Start the analyzer (blocks serving gRPC): only ``policies/__main__.py`` calls this."""
    return PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)


def _schema_defaults(policy: Policy) -> dict[str, Any]:
    schema = getattr(policy, "config_schema", None)
    properties = getattr(schema, "properties", None) or {}
    return {k: v["default"] for k, v in properties.items() if isinstance(v, dict) and "default" in v}


def resolved_config(config_file: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """policy name -> (enforcement level, properties), as the CLI resolves a config file:
    the policy's own entry, else ``all``, else the pack default; schema defaults under the
    file's properties."""
    try:
        document = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_file}: not a readable policy config ({exc})") from None
    unknown = sorted(set(document) - set(BY_NAME) - {"all"})
    if unknown:
        raise UserError(f"{config_file}: unknown policy name(s) {', '.join(unknown)}")
    default = document.get("all", DEFAULT_LEVEL)
    resolved = {}
    for policy in POLICIES:
        entry = document.get(policy.name, default)
        if isinstance(entry, str):
            level, properties = entry, {}
        else:
            properties = {k: v for k, v in entry.items() if k != "enforcementLevel"}
            level = entry.get("enforcementLevel", default)
        if level not in LEVELS:
            raise UserError(f"{config_file}: {policy.name}: enforcement level {level!r} is not one of {LEVELS}")
        resolved[policy.name] = (level, {**_schema_defaults(policy), **properties})
    return resolved


def config_file(policies_dir: Path, env: str, tier: str) -> Path:
    """An environment's policy config: ``config/<env>.json`` if it has one, else its tier's
    (``config/<tier>.json``): a new environment is checked as strictly as its tier."""
    own = policies_dir / "config" / f"{env}.json"
    return own if own.exists() else policies_dir / "config" / f"{tier}.json"


def levels_table(policies_dir: Path, envs: list[tuple[str, str]]) -> str:
    """The table of rules with their enforcement level per environment ((name, tier) pairs)."""
    configs = {env: resolved_config(config_file(policies_dir, env, tier)) for env, tier in envs}
    lines = [
        "| rule | family | description | " + " | ".join(configs) + " |",
        "|---|---|---|" + "---|" * len(configs),
    ]
    for policy in POLICIES:
        levels = []
        for env in configs:
            level, properties = configs[env][policy.name]
            shown = {k: v for k, v in properties.items() if not (k == "required" and v is True and level != "advisory")}
            extra = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(shown.items()) if k != "requiredTags")
            levels.append(f"{level} ({extra})" if extra else level)
        lines.append(
            f"| `{policy.name}` | {FAMILIES[policy.name]} | {policy.description} | " + " | ".join(levels) + " |"
        )
    return "\n".join(lines)
