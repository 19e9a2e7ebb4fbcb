"""The stack registry: each stack's program and its upstream stacks.

`run(name)` is what ``platform/<name>/__main__.py`` calls under the real engine: it reads the
environment (the Pulumi stack name) and its settings once, builds the context and exports the
program's outputs. `mlwf plan` runs the same programs under mocks. No stack takes a secret from
Pulumi config: secret values are put by an administrator (`mlwf secrets set`), never in state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from mlwf.image import image_tag
from mlwf.image_digests import check_digest
from mlwf.settings import Settings, load_environment
from mlwf.stacks.compute import compute_program
from mlwf.stacks.context import StackContext, stack_reference_name, tagged_provider
from mlwf.stacks.network import network_program
from mlwf.stacks.prefect_worker import agent_program
from mlwf.stacks.storage import storage_program
from mlwf.workloads import DataAccess, discover

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class StackSpec:
    name: str
    program: Callable[[StackContext], dict[str, Any]]
    upstream: tuple[str, ...] = ()

    @property
    def project(self) -> str:
        return f"mlwf-{self.name}"


STACKS: dict[str, StackSpec] = {
    spec.name: spec
    for spec in (
        StackSpec("network", network_program),
        StackSpec("storage", storage_program),
        StackSpec("compute", compute_program, upstream=("network", "storage")),
        StackSpec("prefect-agent", agent_program, upstream=("network", "storage", "compute")),
    )
}
ORDER: tuple[str, ...] = tuple(STACKS)  # already in dependency order
IMAGE_STACKS = ("compute", "prefect-agent")  # their task definitions run the flow/Dask image
# Stacks that are not an environment's: one per AWS account (named after it) and one per
# repository, applied once by an administrator, planned only when named (`--stack bootstrap`).
DELIVERY_STACKS: tuple[str, ...] = ("bootstrap", "github")
GITHUB_STACK_NAME = "repository"


def check_stacks(names: list[str] | None, delivery: bool = False) -> list[str]:
    """The named stacks in dependency order (the environment stacks without names); one line
    naming an unknown one. With ``delivery``, the bootstrap and github stacks may be named too."""
    from mlwf.errors import UserError

    known = ORDER + DELIVERY_STACKS if delivery else ORDER
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise UserError(f"unknown stack {unknown[0]!r} (known: {', '.join(known)})")
    return [n for n in known if n in (names or ORDER)]


def delivery_stack_name(name: str, account_id: str) -> str:
    """The Pulumi stack name of a delivery stack: the account's ID, or the repository's."""
    return account_id if name == "bootstrap" else GITHUB_STACK_NAME


def delivery_served(name: str, stack_name: str, environments: list[Any]) -> list[Any]:
    """The environments a delivery stack serves, in tier order: the account's, or all of them.
    Its policy config is ``config/<name>.json``, else the last one's tier's (the strictest)."""
    return [e for e in environments if name == "github" or e.account_id == stack_name]


def delivery_program(name: str, delivery: Any, stack_name: str) -> dict[str, Any]:
    """The bootstrap program of the account ``stack_name``, or the github program."""
    from mlwf.errors import UserError
    from mlwf.stacks.bootstrap import AccountContext, bootstrap_program
    from mlwf.stacks.github_repo import github_program

    if name == "github":
        return github_program(delivery)
    accounts = delivery.accounts()
    if stack_name not in accounts:
        raise UserError(
            f"bootstrap stack {stack_name!r}: name it after an environment's AWS account ({', '.join(accounts)})"
        )
    return bootstrap_program(AccountContext(delivery, stack_name))


def build_context(
    spec: StackSpec, settings: Settings, tag: str, data: DataAccess, image_digest: str = ""
) -> StackContext:
    upstream = {
        name: pulumi.StackReference(f"{name}-ref", stack_name=stack_reference_name(settings, STACKS[name].project))
        for name in spec.upstream
    }
    return StackContext(settings, tagged_provider(settings), tag, data, upstream, image_digest)


def run(name: str, repo_root: Path = REPO_ROOT) -> None:
    """Entry point of ``platform/<name>``: the Pulumi stack name is the environment name (for
    bootstrap the account's ID, for github ``repository``)."""
    if name in DELIVERY_STACKS:
        from mlwf.delivery import load_delivery

        for key, value in delivery_program(name, load_delivery(repo_root), pulumi.get_stack()).items():
            pulumi.export(key, value)
        return
    spec = STACKS[name]
    settings = load_environment(pulumi.get_stack(), repo_root / "environments")
    config = pulumi.Config("mlwf")
    tag = config.get("imageTag") or image_tag(repo_root)
    digest = config.get("imageDigest")
    digest = check_digest(digest) if digest else ""
    data = DataAccess.of(discover(repo_root))
    for key, value in spec.program(build_context(spec, settings, tag, data, digest)).items():
        pulumi.export(key, value)
