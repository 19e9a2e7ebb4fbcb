"""What a plan is, apart from how it is made (`mlwf.infra.plan`): the resources a stack would
create, with their inputs as the engine shows them to policies, secrets redacted on the way
out. The policy pack's offline evaluation, the cost estimate and the rehearsal read these; they
import nothing of the stacks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SECRET_MARKER = "4dabf18193072939515e22adb298388d"
REDACTED = "[secret]"


@dataclass
class PlannedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""  # as the engine names it: stack, project, the parents' types and this type, name
    parent: str = ""  # the parent's URN ("" for the stack's own children)
    custom: bool = True  # False for components (nothing in AWS)
    aliases: list[str] = field(default_factory=list)  # URNs it was known by (Pulumi's aliases)
    provider: str = ""  # the provider reference ("<urn>::<id>") the resource was registered with
    id: str = ""
    arn: str = ""  # the mocked ARN (realistic in form; other resources' inputs refer to it)
    dependencies: list[int] = field(default_factory=list)  # indexes into the plan's resources

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "urn": self.urn,
            "parent": self.parent,
            "id": self.id,
            "arn": self.arn,
            "inputs": redact(self.inputs),
        }


@dataclass
class StackPlan:
    env: str
    stack: str
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    violations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> Counter[str]:
        return Counter(r.type for r in self.resources)

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "stack": self.stack,
            "resources": [r.to_json() for r in self.resources],
            "outputs": redact(self.outputs),
            "violations": self.violations,
        }


def redact(value: Any) -> Any:
    """Replace every secret (Pulumi's wrapped form) with a marker, recursively."""
    if isinstance(value, dict):
        if SECRET_MARKER in value:
            return REDACTED
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def strings(value: Any) -> list[str]:
    """Every string inside an input value (where references to other resources appear)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []
