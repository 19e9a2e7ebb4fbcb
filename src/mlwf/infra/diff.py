"""`mlwf plan --base REF`: what a change does to each environment's stacks. The base revision is
planned with its own code (a git worktree) and the working tree with its own, both offline and
in parallel; both are judged by the working tree's policy pack and priced from its price table.

Resources are matched by URN (type, its parents' types, name), as Pulumi matches them: a rename
is a remove and an add unless an alias names the old URN. Secrets are compared, never shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwf.cost.cost_report import Budget, budget
from mlwf.cost.estimate import NOT_INCLUDED, StackCost, stack_cost
from mlwf.cost.prices import load_prices
from mlwf.errors import UserError
from mlwf.infra import revision
from mlwf.planned import SECRET_MARKER, PlannedResource, StackPlan, redact
from mlwf.policy.evaluate import evaluate
from mlwf.policy.pack import config_file, resolved_config
from mlwf.settings import Settings, environment_names, load_settings
from mlwf.stacks.programs import ORDER, check_stacks

PACK_PATHS = ["policies", "src/mlwf/policy"]


@dataclass(frozen=True)
class Change:
    path: str
    old: Any  # redacted
    new: Any


@dataclass
class ResourceDiff:
    kind: str  # "add" | "remove" | "change"
    urn: str
    type: str
    name: str
    monthly_before: float = 0.0
    monthly_after: float = 0.0
    changes: list[Change] = field(default_factory=list)
    renamed_from: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "changes"},
            "changes": [c.__dict__ for c in self.changes],
        }


@dataclass
class StackDiff:
    env: str
    stack: str
    before: StackPlan | None
    after: StackPlan | None
    cost_before: StackCost | None
    cost_after: StackCost | None
    resources: list[ResourceDiff] = field(default_factory=list)
    violations_added: list[dict[str, str]] = field(default_factory=list)
    violations_removed: list[dict[str, str]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for r in self.resources if r.kind == kind)

    @property
    def monthly_before(self) -> float:
        return self.cost_before.monthly if self.cost_before else 0.0

    @property
    def monthly_after(self) -> float:
        return self.cost_after.monthly if self.cost_after else 0.0

    @property
    def unchanged(self) -> bool:
        return not (self.resources or self.violations_added or self.violations_removed)

    @property
    def unpriced(self) -> list[str]:
        return self.cost_after.unpriced if self.cost_after else []

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "stack": self.stack,
            "status": "added" if self.before is None else "removed" if self.after is None else "planned",
            "added": [r.to_json() for r in self.resources if r.kind == "add"],
            "changed": [r.to_json() for r in self.resources if r.kind == "change"],
            "removed": [r.to_json() for r in self.resources if r.kind == "remove"],
            "violations_added": self.violations_added,
            "violations_removed": self.violations_removed,
            "violations": self.after.violations if self.after else [],
            "monthly_usd_before": round(self.monthly_before, 2),
            "monthly_usd_after": round(self.monthly_after, 2),
            "monthly_usd_difference": round(self.monthly_after - self.monthly_before, 2),
            "unpriced": self.unpriced,
        }


@dataclass
class PlanDiff:
    ref: str
    commit: str
    pack_changed: bool
    stacks: list[StackDiff]
    budgets: list[tuple[Budget | None, Budget]]  # (before, after) per environment of the working tree
    notes: list[str] = field(default_factory=list)

    def blocking(self) -> bool:
        mandatory = any(v["level"] == "mandatory" for s in self.stacks if s.after for v in s.after.violations)
        return mandatory or any(after.blocking for _, after in self.budgets)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": {"ref": self.ref, "commit": self.commit},
            "pack_changed": self.pack_changed,
            "stacks": [s.to_json() for s in self.stacks],
            "budgets": [after.to_json() for _, after in self.budgets],
            "not_included": list(NOT_INCLUDED),
            "notes": self.notes,
        }


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_MARKER in value


def input_changes(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every leaf that differs, old -> new, with secrets redacted. JSON documents held in strings
    (IAM policies, container definitions) are compared inside."""
    if old == new:
        return []
    if is_secret(old) or is_secret(new):
        return [Change(path, redact(old), redact(new))]
    if isinstance(old, str) and isinstance(new, str):
        old_doc, new_doc = _json_container(old), _json_container(new)
        if old_doc is not None and new_doc is not None:
            return input_changes(old_doc, new_doc, path)
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            change
            for key in sorted(set(old) | set(new), key=str)
            for change in input_changes(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True)) for c in input_changes(a, b, f"{path}[{i}]")]
    return [Change(path, redact(old), redact(new))]


def _json_container(text: str) -> Any:
    if text[:1] not in ("{", "["):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict | list) else None


def diff_stack(
    env: str, stack: str, before: StackPlan | None, after: StackPlan | None, costs: tuple[StackCost | None, ...]
) -> StackDiff:
    cost_before, cost_after = costs
    result = StackDiff(env, stack, before, after, cost_before, cost_after)
    old = {r.urn: r for r in before.resources} if before else {}
    new = {r.urn: r for r in after.resources} if after else {}
    matched: dict[str, PlannedResource] = {}  # new URN -> old resource
    for urn, resource in new.items():
        if urn in old:
            matched[urn] = old[urn]
        else:
            alias = next((a for a in resource.aliases if a in old and a not in new), None)
            if alias is not None:
                matched[urn] = old[alias]

    def monthly(cost: StackCost | None, urn: str) -> float:
        return cost.of(urn) if cost else 0.0

    for urn, resource in new.items():
        previous = matched.get(urn)
        if previous is None:
            result.resources.append(
                ResourceDiff("add", urn, resource.type, resource.name, monthly_after=monthly(cost_after, urn))
            )
            continue
        changes = input_changes(previous.inputs, resource.inputs)
        if changes or previous.urn != urn:
            result.resources.append(
                ResourceDiff(
                    "change",
                    urn,
                    resource.type,
                    resource.name,
                    monthly(cost_before, previous.urn),
                    monthly(cost_after, urn),
                    changes,
                    previous.urn if previous.urn != urn else "",
                )
            )
    kept = {r.urn for r in matched.values()}
    for urn, resource in old.items():
        if urn not in kept:
            result.resources.append(
                ResourceDiff("remove", urn, resource.type, resource.name, monthly_before=monthly(cost_before, urn))
            )
    order = {"remove": 0, "add": 1, "change": 2}
    result.resources.sort(key=lambda r: (order[r.kind], r.type, r.name))

    def key(v: dict[str, str]) -> tuple[str, ...]:
        return (v["policy"], v["level"], v["resource"], v["message"])

    old_violations = {key(v): v for v in (before.violations if before else [])}
    new_violations = {key(v): v for v in (after.violations if after else [])}
    result.violations_added = [v for k, v in new_violations.items() if k not in old_violations]
    result.violations_removed = [v for k, v in old_violations.items() if k not in new_violations]
    return result


@dataclass
class _Side:
    tree: Path
    settings: dict[str, Settings]
    plans: dict[tuple[str, str], StackPlan]


def plan_against(
    ref: str, repo_root: Path, envs: list[str] | None, stacks: list[str] | None, program: Path | None
) -> PlanDiff:
    """Plan `ref` and the working tree, and compare them per environment and stack."""
    git_root = revision.top_level(repo_root)
    inner = repo_root.resolve().relative_to(git_root.resolve())  # "." unless the platform is a subfolder
    repo = repo_root.resolve()
    commit = revision.resolve(git_root, ref)
    selected = check_stacks(stacks)
    prices = load_prices()
    head_settings = _settings(repo, envs, required=True)
    notes: list[str] = []
    with revision.worktree(git_root, commit) as checkout:
        tree = checkout / inner
        base_settings = _settings(tree, envs, required=False, fallback=head_settings, notes=notes)
        planners = [revision.TreePlanner(repo, "the working tree", list(head_settings), selected, program)]
        if base_settings:  # a base without environments (or without the platform) has nothing to plan
            label = f"{ref} ({commit[:12]})"
            planners.append(revision.TreePlanner(tree, label, list(base_settings), selected, program))
        try:
            head_plans, base_plans = [p.collect() for p in planners] + [[]] * (2 - len(planners))
        finally:
            for planner in planners:
                planner.process.kill()
    base = _Side(tree, base_settings, {(p.env, p.stack): p for p in base_plans})
    head = _Side(repo, head_settings, {(p.env, p.stack): p for p in head_plans})
    for side in (base, head):  # an environment the change removes is judged by its tier's config
        for (env, _), plan in side.plans.items():
            plan.violations = evaluate(
                plan, resolved_config(config_file(repo / "policies", env, side.settings[env].tier))
            )

    order = [*head.settings, *(e for e in base.settings if e not in head.settings)]
    stack_names = [*ORDER] if program is None else []
    keys = sorted(
        set(base.plans) | set(head.plans),
        key=lambda k: (order.index(k[0]), stack_names.index(k[1]) if k[1] in stack_names else len(stack_names), k[1]),
    )
    diffs = []
    for env, stack in keys:
        before, after = base.plans.get((env, stack)), head.plans.get((env, stack))
        costs = (
            stack_cost(before, base.settings[env], prices) if before else None,
            stack_cost(after, head.settings[env], prices) if after else None,
        )
        diffs.append(diff_stack(env, stack, before, after, costs))
    complete = program is None and set(selected) == set(ORDER)
    budgets = []
    for env, settings in head.settings.items():
        after_costs = [d.cost_after for d in diffs if d.env == env and d.cost_after]
        before_costs = [d.cost_before for d in diffs if d.env == env and d.cost_before]
        previous = budget(base.settings[env], before_costs, complete) if env in base.settings else None
        budgets.append((previous, budget(settings, after_costs, complete)))
    pack_changed = revision.changed(git_root, commit, [str(inner / path) for path in PACK_PATHS])
    return PlanDiff(ref, commit, pack_changed, diffs, budgets, notes)


def _settings(
    tree: Path,
    names: list[str] | None,
    required: bool,
    fallback: dict[str, Settings] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Settings]:
    """The tree's environments (those named, when names are given) and their settings. The base's
    files are read by the working tree's model; one it rejects is priced with the working tree's
    settings (its plan is still the base's own)."""
    available = environment_names(tree / "environments")
    if names:
        unknown = [n for n in names if n not in available]
        if unknown and required:
            raise UserError(f"unknown environment {unknown[0]!r} (known: {', '.join(available) or 'none'})")
        available = [n for n in names if n in available]
    found: dict[str, Settings] = {}
    for name in available:
        try:
            found[name] = load_settings(tree / "environments" / f"{name}.yaml")
        except UserError as exc:
            if fallback is None or name not in fallback:
                raise
            found[name] = fallback[name]
            if notes is not None:
                notes.append(f"the base's {name} settings are priced as the working tree's: {exc}")
    return found
