"""The offline plan: each stack's real program under Pulumi's mocks, per environment, with
stack references answered by the upstream stacks' mocked outputs. No credentials, no network,
no Pulumi CLI: what a user or a review can check before anything reaches AWS.

Mocked inputs look as the engine shows them to policies (camelCase, numbers as floats, unset
inputs absent); secrets are redacted in the plan and never leave it in plain text.
"""

from __future__ import annotations

import contextvars
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from mlwf.infra.context import StackContext, image_tag
from mlwf.infra.stacks import ORDER, STACKS, build_context
from mlwf.settings import Settings

SECRET_MARKER = "4dabf18193072939515e22adb298388d"
REDACTED = "[secret]"
PLAN_API_KEY = "plan-only-value-never-deployed"


@dataclass
class PlannedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""
    provider: str = ""


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
            "resources": [{"type": r.type, "name": r.name, "inputs": redact(r.inputs)} for r in self.resources],
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


class PlanMocks(pulumi.runtime.Mocks):
    """Answers resource registrations with plausible IDs and ARNs, and stack references with
    the upstream plans' outputs."""

    def __init__(self, settings: Settings, upstream: dict[str, dict[str, Any]]) -> None:
        self.settings = settings
        self.upstream = upstream
        self.resources: list[PlannedResource] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            project = args.inputs.get("name", args.name).split("/")[1]
            outputs = self.upstream.get(project.removeprefix("mlwf-"), {})
            return args.name, {"name": args.inputs.get("name", args.name), "outputs": outputs, "secretOutputNames": []}
        self.resources.append(PlannedResource(args.typ, args.name, dict(args.inputs), provider=args.provider or ""))
        return f"{args.name}-id", {**args.inputs, **self._computed(args)}

    def _computed(self, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        region, account = self.settings.region, self.settings.account_id
        module, kind = _service_and_kind(args.typ)
        name = args.inputs.get("name", args.name)
        state: dict[str, Any] = {"arn": f"arn:aws:{module}:{region}:{account}:{kind}/{name}", "name": name}
        if args.typ == "aws:s3/bucket:Bucket":
            bucket = args.inputs.get("bucket", args.name)
            state.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
        elif args.typ == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{account}.dkr.ecr.{region}.amazonaws.com/{name}"
        elif args.typ == "aws:kms/key:Key":
            state.update(keyId=f"{args.name}-key-id", arn=f"arn:aws:kms:{region}:{account}:key/{args.name}-key-id")
        elif module == "iam":
            state["arn"] = f"arn:aws:iam::{account}:{kind}/{name}"
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{name}"
        return state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.settings.region}{suffix}" for suffix in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": self.settings.region}
        return {}


def _service_and_kind(token: str) -> tuple[str, str]:
    """``aws:ec2/securityGroup:SecurityGroup`` -> ("ec2", "securitygroup")."""
    parts = token.split(":")
    if len(parts) != 3:
        return "pulumi", token.replace(":", "-")
    module = parts[1].split("/")[0]
    return module, parts[2].lower()


def run_program(program: Callable[[], dict[str, Any]], mocks: PlanMocks, project: str, stack: str) -> dict[str, Any]:
    """Run a Pulumi program under mocks in a fresh context; return its resolved exports."""
    exports: dict[str, Any] = {}

    def inside() -> None:
        pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False)

        def body() -> pulumi.Output[Any]:
            return pulumi.Output.all(**program()).apply(exports.update)

        _sync_await(run_pulumi_func(lambda: _sync_await(pulumi.Output.from_input(body()).future())))

    contextvars.Context().run(inside)
    return exports


def plan_environment(settings: Settings, stacks: list[str], repo_root: Path) -> list[StackPlan]:
    """Plan the given stacks of one environment (their upstream stacks are planned too, since
    their outputs answer the references, but only the requested ones are returned)."""
    tag = image_tag(repo_root)
    needed = _with_upstream(stacks)
    outputs: dict[str, dict[str, Any]] = {}
    plans: list[StackPlan] = []
    for name in ORDER:
        if name not in needed:
            continue
        spec = STACKS[name]
        mocks = PlanMocks(settings, outputs)
        secrets = {key: pulumi.Output.secret(PLAN_API_KEY) for key in spec.secrets}

        def program(spec: Any = spec, secrets: dict[str, Any] = secrets) -> dict[str, Any]:
            context: StackContext = build_context(spec, settings, tag, secrets)
            return spec.program(context)

        started = time.perf_counter()
        exports = run_program(program, mocks, spec.project, settings.name)
        outputs[name] = exports
        if name in stacks:
            plans.append(
                StackPlan(settings.name, name, mocks.resources, exports, seconds=time.perf_counter() - started)
            )
    return plans


def _with_upstream(stacks: list[str]) -> set[str]:
    needed: set[str] = set()
    pending = list(stacks)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(STACKS[name].upstream)
    return needed
