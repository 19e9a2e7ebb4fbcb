"""Human-readable plan output: resources by type per stack and environment, and what differs
between environments."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mlwf.planned import StackPlan
from mlwf.settings import Settings


def settings_differences(settings: list[Settings]) -> list[tuple[str, list[Any]]]:
    """(dotted field, values per environment) for every setting that is not the same everywhere."""
    flat = [_flatten(s.model_dump(mode="json")) for s in settings]
    keys = sorted({k for f in flat for k in f} - {"name", "tier", "account_id", "name_prefix"})
    return [(k, [f.get(k) for f in flat]) for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def _flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict) and key != "cost_tags":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def print_plans(plans: list[StackPlan], settings: list[Settings]) -> None:
    order = [s.name for s in settings]  # the environments in tier order
    envs = sorted({p.env for p in plans}, key=lambda e: (order.index(e), "") if e in order else (len(order), e))
    by_stack: dict[str, dict[str, StackPlan]] = defaultdict(dict)
    for plan in plans:
        by_stack[plan.stack][plan.env] = plan
    for stack, per_env in by_stack.items():
        print(f"== {stack}")
        columns = [e for e in envs if e in per_env]  # environments, or a delivery stack's accounts
        types = sorted({t for p in per_env.values() for t in p.counts()})
        width = max(len(t) for t in types)

        def row(label: str, values: list[Any], mark: str = "", width: int = width, columns: list[str] = columns) -> str:
            cells = " ".join(f"{v:>{max(8, len(e))}}" for e, v in zip(columns, values, strict=True))
            return f"   {label:<{width}} {cells}{mark}"

        print(row("resource type", columns))
        for type_ in types:
            counts = [per_env[e].counts().get(type_, 0) for e in columns]
            print(row(type_, counts, " *" if len(set(counts)) > 1 else ""))
        print(row("total", [len(per_env[e].resources) for e in columns]))
        print()
    if len(settings) > 1:
        print("* differs between environments")
        print()
        print("settings that differ: " + " / ".join(order))
        for key, values in settings_differences(settings):
            print(f"   {key}: " + " / ".join(str(v) for v in values))
        print()
    violations = [(p.env, p.stack, v) for p in plans for v in p.violations]
    if violations:
        print("policy violations:")
        for env, stack, v in violations:
            resource = v["resource"].rsplit("::", 1)[-1] if v["resource"] else "(stack)"
            print(f"   [{v['level']}] {env}/{stack} {v['policy']}: {resource}: {v['message']}")
        print()
    total = sum(len(p.resources) for p in plans)
    print(f"{len(plans)} stack plans, {total} resources, {len(violations)} policy violations")
