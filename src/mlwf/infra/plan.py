"""The offline plan: each stack's real program under Pulumi's mocks, per environment, with
stack references answered by the upstream stacks' mocked outputs. No credentials, no network,
no Pulumi CLI: what a user or a review can check before anything reaches AWS.

Mocked inputs look as the engine shows them to policies (camelCase, numbers as floats, unset
inputs absent); secrets are redacted in the plan and never leave it in plain text.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.settings import get_project, get_stack
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from mlwf.image import image_tag
from mlwf.planned import PlannedResource, StackPlan, strings
from mlwf.settings import Settings
from mlwf.stacks.context import StackContext
from mlwf.stacks.programs import ORDER, STACKS, build_context
from mlwf.workloads import DataAccess, discover

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
NAMED_BY_ID = frozenset({"aws:ec2/securityGroup:SecurityGroup", "aws:iam/role:Role"})


def make_urn(parent: str, type_: str, name: str, stack: str = "", project: str = "") -> str:
    """A resource's URN as the engine forms it: its type is qualified by every ancestor's type
    below the stack (the mock monitor keeps only the parent's)."""
    if parent:
        qualified = parent.split("::")[2]
        if qualified != ROOT_STACK_TYPE:
            type_ = f"{qualified}${type_}"
    return "urn:pulumi:" + "::".join([stack or get_stack(), project or get_project(), type_, name])


class PlanMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor with real URNs, and each registration's parent and aliases at hand for
    `PlanMocks.new_resource` (which the monitor calls on the registering thread)."""

    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self._local = threading.local()
        mocks.monitor = self

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return make_urn(parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        self._local.request = request
        try:
            return super().RegisterResource(request)
        finally:
            self._local.request = None

    def registration(self) -> tuple[str, str, list[str]]:
        """(URN, parent URN, alias URNs) of the resource being registered on this thread."""
        request = self._local.request
        urn = self.make_urn(request.parent, request.type, request.name)
        aliases = [self._alias(a, request) for a in request.aliases] + list(request.aliasURNs)
        return urn, request.parent, sorted(set(aliases))

    def _alias(self, alias: Any, request: Any) -> str:
        if alias.WhichOneof("alias") == "urn":
            return str(alias.urn)
        spec = alias.spec
        parent = "" if spec.noParent else (spec.parentUrn or request.parent)
        return make_urn(parent, spec.type or request.type, spec.name or request.name, spec.stack, spec.project)


class PlanMocks(pulumi.runtime.Mocks):
    """Answers resource registrations with plausible IDs and ARNs, and stack references with
    the upstream plans' outputs."""

    def __init__(
        self, settings: Settings, upstream: dict[str, dict[str, Any]], taken_ids: set[str] | None = None
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        # IDs handed out by this environment's other stacks: an ID names one resource in the
        # whole environment ("dask-scheduler" is a security group and a task definition).
        self._taken = taken_ids if taken_ids is not None else set()
        self.resources: list[PlannedResource] = []
        self.monitor: PlanMonitor | None = None
        self._by_value: dict[str, int] = {}  # an ID or ARN handed out -> the resource it names

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            project = args.inputs.get("name", args.name).split("/")[1]
            outputs = self.upstream.get(project.removeprefix("mlwf-"), {})
            return args.name, {"name": args.inputs.get("name", args.name), "outputs": outputs, "secretOutputNames": []}
        assert self.monitor is not None, "PlanMocks run under a PlanMonitor"
        urn, parent, aliases = self.monitor.registration()
        # IDs must not depend on the order resources register in ("data" is a key and a bucket):
        # the type's kind is part of them, except for the types whose ID is their name in AWS.
        kind = _service_and_kind(args.typ)[1]
        resource_id = f"{args.name}-id" if args.typ in NAMED_BY_ID else f"{args.name}-{kind}-id"
        if resource_id in self._taken:  # the same name and type in another stack of the environment
            resource_id = f"{pulumi.get_project()}-{resource_id}"
        self._taken.add(resource_id)
        state = {**args.inputs, **self._computed(args)}
        resource = PlannedResource(
            args.typ, args.name, dict(args.inputs), urn, parent, bool(args.custom), aliases, args.provider or ""
        )
        resource.id = resource_id
        resource.arn = state["arn"] if isinstance(state.get("arn"), str) else ""
        resource.dependencies = sorted({self._by_value[v] for v in strings(args.inputs) if v in self._by_value})
        index = len(self.resources)
        self.resources.append(resource)
        for value in (resource_id, state.get("arn")):
            if isinstance(value, str):
                self._by_value.setdefault(value, index)
        return resource_id, state

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
        elif args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(args.inputs.get("url", "")).removeprefix("https://")
            state["arn"] = f"arn:aws:iam::{account}:oidc-provider/{host}"
        elif module == "iam":
            state["arn"] = f"arn:aws:iam::{account}:{kind}/{name}"
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{name}"
        elif args.typ == "aws:ecs/taskDefinition:TaskDefinition":
            family = args.inputs.get("family", args.name)
            state.update(
                arn=f"arn:aws:ecs:{region}:{account}:task-definition/{family}:1",
                arnWithoutRevision=f"arn:aws:ecs:{region}:{account}:task-definition/{family}",
                revision=1,
            )
        elif args.typ == "aws:sqs/queue:Queue":
            state.update(
                arn=f"arn:aws:sqs:{region}:{account}:{name}",
                url=f"https://sqs.{region}.amazonaws.com/{account}/{name}",
            )
        elif args.typ == "aws:cloudwatch/eventRule:EventRule":
            state["arn"] = f"arn:aws:events:{region}:{account}:rule/{name}"
        elif args.typ == "aws:secretsmanager/secret:Secret":
            state["arn"] = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
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
        pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=PlanMonitor(mocks))

        def body() -> pulumi.Output[Any]:
            return pulumi.Output.all(**program()).apply(exports.update)

        _sync_await(run_pulumi_func(lambda: _sync_await(pulumi.Output.from_input(body()).future())))

    # Pulumi's runtime uses the thread's current event loop; whatever ran before in this thread
    # (Prefect, distributed) may have closed or unset it. Run on a loop of our own and close it:
    # a loop left unclosed fails noisily in its __del__ at interpreter exit.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        contextvars.Context().run(inside)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return exports


def plan_environment(settings: Settings, stacks: list[str], repo_root: Path, image_digest: str = "") -> list[StackPlan]:
    """Plan the given stacks of one environment (their upstream stacks are planned too, since
    their outputs answer the references, but only the requested ones are returned); with
    ``image_digest``, the task definitions take the image by that digest, as a deploy from CI does."""
    tag = image_tag(repo_root)
    data = DataAccess.of(discover(repo_root))
    needed = _with_upstream(stacks)
    outputs: dict[str, dict[str, Any]] = {}
    plans: list[StackPlan] = []
    taken_ids: set[str] = set()
    for name in ORDER:
        if name not in needed:
            continue
        spec = STACKS[name]
        mocks = PlanMocks(settings, outputs, taken_ids)

        def program(spec: Any = spec) -> dict[str, Any]:
            context: StackContext = build_context(spec, settings, tag, data, image_digest)
            return spec.program(context)

        started = time.perf_counter()
        exports = run_program(program, mocks, spec.project, settings.name)
        outputs[name] = exports
        if name in stacks:
            plans.append(
                StackPlan(settings.name, name, mocks.resources, exports, seconds=time.perf_counter() - started)
            )
    return plans


def plan_delivery(stacks: list[str], environments: list[Settings], repo_root: Path) -> list[StackPlan]:
    """Plan the bootstrap stack of every account the given environments live in, and/or the
    github stack. A plan's ``env`` is its Pulumi stack name (the account's ID, ``repository``)."""
    from mlwf.delivery import load_delivery
    from mlwf.stacks.programs import delivery_program, delivery_stack_name

    delivery = load_delivery(repo_root)
    plans: list[StackPlan] = []
    for name in stacks:
        accounts = dict.fromkeys(e.account_id for e in environments) if name == "bootstrap" else {"": None}
        for account in accounts:
            stack_name = delivery_stack_name(name, account)
            settings = next((e for e in delivery.environments if e.account_id == account), delivery.image_home)
            mocks = PlanMocks(settings, {})
            started = time.perf_counter()

            def program(name: str = name, stack_name: str = stack_name) -> dict[str, Any]:
                return delivery_program(name, delivery, stack_name)

            exports = run_program(program, mocks, f"mlwf-{name}", stack_name)
            plans.append(StackPlan(stack_name, name, mocks.resources, exports, seconds=time.perf_counter() - started))
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


def plan_program(directory: Path, settings: Settings, repo_root: Path) -> StackPlan:
    """Plan any Pulumi Python program (a folder with ``__main__.py``) as a stack of the given
    environment. Stack references to the platform's stacks are answered with their plans."""
    import os
    import runpy
    import sys

    import yaml

    from mlwf.errors import UserError

    directory = directory.resolve()
    entry = directory / "__main__.py"
    if not entry.is_file():
        raise UserError(f"{directory} is not a Pulumi Python program (no __main__.py)")
    project_file = directory / "Pulumi.yaml"
    project = (
        yaml.safe_load(project_file.read_text()).get("name", directory.name)
        if project_file.exists()
        else directory.name
    )
    upstream = {p.stack: p.outputs for p in plan_environment(settings, list(ORDER), repo_root)}
    mocks = PlanMocks(settings, upstream)

    def program() -> dict[str, Any]:
        previous_cwd, previous_path = os.getcwd(), list(sys.path)
        os.chdir(directory)
        sys.path.insert(0, str(directory.resolve()))
        try:
            runpy.run_path(str(entry.resolve()), run_name="__main__")
        finally:
            os.chdir(previous_cwd)
            sys.path[:] = previous_path
        return {}

    started = time.perf_counter()
    try:
        run_program(program, mocks, str(project), settings.name)
    except Exception as exc:
        raise UserError(f"{directory}: the program failed under mocks: {type(exc).__name__}: {exc}") from None
    return StackPlan(settings.name, str(project), mocks.resources, {}, seconds=time.perf_counter() - started)


def plan_and_check(
    settings: list[Any], stacks: list[str] | None, repo_root: Any, program: Any = None
) -> list[StackPlan]:
    """Plan each environment's stacks (or a program as a stack of each) offline and judge every
    plan with the pack under that environment's policy config (`config_file`). The bootstrap and
    github stacks (planned with the rest unless stacks are named) are judged under
    ``config/<stack>.json`` or else the strictest tier's config of the environments they serve."""
    from mlwf.policy.evaluate import evaluate
    from mlwf.policy.pack import config_file, resolved_config
    from mlwf.settings import load_environments
    from mlwf.stacks.programs import DELIVERY_STACKS, check_stacks, delivery_served

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
