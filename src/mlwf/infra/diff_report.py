"""`mlwf plan --base` as text, or as a pull-request comment (a summary table, details folded)."""

from __future__ import annotations

import json
from typing import Any

from mlwf.cost.cost_report import usd
from mlwf.cost.estimate import NOT_INCLUDED
from mlwf.infra.diff import PlanDiff, ResourceDiff, StackDiff

VALUE_WIDTH = 100
COMMENT_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters


def _value(value: Any) -> str:
    text = value if isinstance(value, str) and value == "[secret]" else json.dumps(value, default=str)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def _money(resource: ResourceDiff) -> str:
    difference = resource.monthly_after - resource.monthly_before
    return f"  ({usd(difference, signed=True)}/month)" if abs(difference) >= 0.005 else ""


def _violation(sign: str, v: dict[str, str]) -> str:
    resource = v["resource"].rsplit("::", 1)[-1] if v["resource"] else "(stack)"
    return f"{sign} policy [{v['level']}] {v['policy']}: {resource}: {v['message']}"


def headline(stack: StackDiff) -> str:
    status = " (new stack)" if stack.before is None else " (stack removed)" if stack.after is None else ""
    difference = stack.monthly_after - stack.monthly_before
    return (
        f"{stack.env}/{stack.stack}{status}: {stack.count('add')} added, {stack.count('change')} changed, "
        f"{stack.count('remove')} removed; {usd(stack.monthly_before)} -> {usd(stack.monthly_after)}/month "
        f"({usd(difference, signed=True)})"
    )


def details(stack: StackDiff) -> list[str]:
    """One line per resource (+ added, - removed, ~ changed, with its inputs old -> new) and per
    policy result that appears (+) or disappears (-)."""
    lines = []
    for resource in stack.resources:
        sign = {"add": "+", "remove": "-", "change": "~"}[resource.kind]
        renamed = f" (was {resource.renamed_from.rsplit('::', 1)[-1]}, by alias)" if resource.renamed_from else ""
        lines.append(f"{sign} {resource.type} {resource.name}{renamed}{_money(resource)}")
        lines.extend(f"    {c.path}: {_value(c.old)} -> {_value(c.new)}" for c in resource.changes)
    lines.extend(_violation("+", v) for v in stack.violations_added)
    lines.extend(_violation("-", v) for v in stack.violations_removed)
    lines.extend(f"! unpriced: {entry}" for entry in stack.unpriced)
    return lines


def _budget_lines(diff: PlanDiff) -> list[str]:
    lines = []
    for before, after in diff.budgets:
        was = f" (was {usd(before.monthly)})" if before is not None and before.complete else ""
        lines.append(after.line() + was)
    return lines


def _preamble(diff: PlanDiff) -> list[str]:
    lines = [
        f"planned {diff.ref} ({diff.commit[:12]}) with its own code and the working tree with its own, "
        "both offline, both judged by the working tree's policy pack"
    ]
    if diff.pack_changed:
        lines.append("the policy pack itself changed in this change: the base's results are the new pack's too")
    return lines + diff.notes


def text(diff: PlanDiff) -> str:
    out = [*_preamble(diff), ""]
    for stack in diff.stacks:
        if stack.unchanged:
            out.append(f"{stack.env}/{stack.stack}: no changes ({usd(stack.monthly_after)}/month)")
            continue
        out.append(f"== {headline(stack)}")
        out.extend(f"   {line}" for line in details(stack))
    out += ["", *(f"budget {line}" for line in _budget_lines(diff))]
    out.append(f"not included (charged by use): {', '.join(NOT_INCLUDED)}")
    return "\n".join(out)


def _policy_cell(stack: StackDiff) -> str:
    parts = [f"+{len(stack.violations_added)}"] if stack.violations_added else []
    parts += [f"-{len(stack.violations_removed)}"] if stack.violations_removed else []
    mandatory = any(v["level"] == "mandatory" for v in stack.violations_added)
    return (" ".join(parts) + (" (mandatory)" if mandatory else "")) or "none"


def markdown(diff: PlanDiff) -> str:
    changed = [s for s in diff.stacks if not s.unchanged]
    out = [f"### mlwf plan against `{diff.ref}` ({diff.commit[:12]})", ""]
    out += [f"_{line}_" for line in _preamble(diff)] + [""]
    if changed:
        out += [
            "| stack | added | changed | removed | policy violations | monthly before | after | difference |",
            "|---|--:|--:|--:|---|--:|--:|--:|",
        ]
        out += [
            f"| {s.env}/{s.stack} | {s.count('add')} | {s.count('change')} | {s.count('remove')} | "
            f"{_policy_cell(s)} | {usd(s.monthly_before)} | {usd(s.monthly_after)} | "
            f"{usd(s.monthly_after - s.monthly_before, signed=True)} |"
            for s in changed
        ]
    else:
        out.append("**No infrastructure changes.**")
    unchanged = [s for s in diff.stacks if s.unchanged]
    if unchanged:
        out += ["", "Unchanged: " + ", ".join(f"{s.env}/{s.stack} ({usd(s.monthly_after)})" for s in unchanged)]
    out += ["", "**Fixed monthly cost budgets**", ""] + [f"- {line}" for line in _budget_lines(diff)]
    out += ["", f"Not included (charged by use): {', '.join(NOT_INCLUDED)}.", ""]
    folded = []
    for stack in changed:
        folded += [
            f"<details><summary>{headline(stack)}</summary>",
            "",
            "```diff",
            *details(stack),
            "```",
            "</details>",
            "",
        ]
    body = "\n".join(out) + "\n"
    rest = "\n".join(folded)
    if len(body) + len(rest) > COMMENT_LIMIT:
        rest = rest[: COMMENT_LIMIT - len(body)].rsplit("\n<details>", 1)[0]
        rest += "\n\n_Details cut to fit a comment: the full plan is in the workflow's artifacts._\n"
    return body + rest
