"""Workloads are tenants of the platform: each is a folder under ``workflows/`` whose
``workload.py`` declares it (`Workload`): its name, the data prefixes it reads and writes under
an environment's data root, its flows' deployments, the local run `mlwf demo` starts and its own
commands (`mlwf.workload_commands`).

The platform never lists them: `discover` reads every ``workflows/*/workload.py`` by path (no
reinstall when one is added), the stacks grant IAM on exactly the declared prefixes, and
`mlwf flows deploy` deploys the declared flows. Workloads share the flow-run and Dask task roles:
one workload's code can reach every other workload's prefixes (there is no isolation between
tenants; see docs/adding-a-flow.md).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlwf.errors import UserError

WORKFLOWS = "workflows"
DECLARATION = "workload.py"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
FLOW = re.compile(r"^[A-Za-z_][\w/]*\.py:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Deployment:
    """One flow deployed to every environment: ``flow`` is ``<file in the workload's folder>:<function>``."""

    flow: str
    cron: str | None = None  # UTC
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    name: str
    writes: tuple[str, ...] = ()  # data prefixes its flows write (and read), under the data root
    reads: tuple[str, ...] = ()  # data prefixes of other workloads it only reads
    cluster_writes: tuple[str, ...] = ()  # of its writes, those its Dask workers write into (never delete)
    deployments: tuple[Deployment, ...] = ()
    smoke: Deployment | None = None  # a short run that must complete before a promotion goes on
    rehearsal: tuple[Deployment, ...] = ()  # the runs `mlwf rehearse` makes, in order
    demo: str | None = None  # ``<file>:<function>`` run by `mlwf NAME demo` (returns a `Demo`)
    # ``<file>:<function>`` given an environment's data root, returning lines about its current
    # model (the first one a summary) for `mlwf status`
    status: str | None = None
    # ``<file>:<function>`` given the `mlwf <name> demo` parser, adding the demo's own flags (each
    # flag's dest a keyword of the demo function)
    demo_options: str | None = None
    # ``<file>:<function>`` given the subparsers of `mlwf <name>`, adding the workload's own
    # commands; each sets ``run`` (a function of the parsed arguments returning the exit status)
    commands: str | None = None
    folder: Path = Path()  # set by `discover`

    def entrypoint(self, target: str, repo_root: Path) -> str:
        """A flow's entrypoint as Prefect loads it: a file path relative to the repository (the
        image's working directory), so nothing needs installing when a workload is added."""
        file, function = target.split(":")
        return f"{(self.folder / file).relative_to(repo_root).as_posix()}:{function}"

    def load(self, target: str) -> Any:
        """The object ``<file>:<function>`` names in this workload's folder, loaded by path."""
        file, function = target.split(":")
        path = self.folder / file
        module = _load_module(path, f"_mlwf_workload_{self.name}_{path.stem}")
        try:
            return getattr(module, function)
        except AttributeError:
            raise UserError(f"{path}: no {function} (declared by the {self.name} workload)") from None


def _load_module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_prefix(where: Path, prefix: str) -> None:
    path = PurePosixPath(prefix)
    if not prefix or path.is_absolute() or ".." in path.parts or prefix != path.as_posix() or "*" in prefix:
        raise UserError(f"{where}: data prefix {prefix!r} must be a relative path like 'raw/my_data'")


def _check(workload: Any, where: Path) -> Workload:
    if not isinstance(workload, Workload):
        raise UserError(f"{where}: expected WORKLOAD = Workload(...)")
    if not NAME.match(workload.name):
        raise UserError(f"{where}: name {workload.name!r} must be lower case letters, digits or _")
    for prefix in (*workload.writes, *workload.reads):
        _check_prefix(where, prefix)
    if set(workload.cluster_writes) - set(workload.writes):
        raise UserError(f"{where}: cluster_writes must be among its writes")
    deployed = {d.flow for d in workload.deployments}
    for run in [*([workload.smoke] if workload.smoke else []), *workload.rehearsal]:
        if run.flow not in deployed:
            raise UserError(f"{where}: {run.flow!r} runs but is not one of its deployments")
    hooks = [h for h in (workload.demo, workload.status, workload.demo_options, workload.commands) if h]
    for target in [d.flow for d in workload.deployments] + hooks:
        if not FLOW.match(target) or not (where.parent / target.split(":")[0]).is_file():
            raise UserError(f"{where}: {target!r} is not '<file>.py:<function>' of a file in {where.parent}")
    return workload


def discover(repo_root: Path) -> list[Workload]:
    """Every workload under ``workflows/``, by name."""
    found: dict[str, Workload] = {}
    for declaration in sorted((repo_root / WORKFLOWS).glob(f"*/{DECLARATION}")):
        module = _load_module(declaration, f"_mlwf_declaration_{declaration.parent.name}")
        workload = _check(getattr(module, "WORKLOAD", None), declaration)
        if workload.name in found:
            raise UserError(f"{declaration}: workload name {workload.name!r} is taken by {found[workload.name].folder}")
        found[workload.name] = Workload(**{**workload.__dict__, "folder": declaration.parent})
    return list(found.values())


def checkout_root() -> Path:
    """The checkout (or the image's working directory) holding environments/: the current
    folder or a parent."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "environments").is_dir():
            return folder
    raise UserError("run mlwf inside the ml-workflows repository (no environments/ here or above)")


def installed_root() -> Path:
    """The folder holding the installed ``workflows`` package: this checkout when it is
    installed editable (as `uv sync` does), the image's packages in the image. Found, not
    imported: the platform imports no workload."""
    spec = importlib.util.find_spec(WORKFLOWS)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"no {WORKFLOWS} package is installed: run `uv sync` in the checkout")
    return Path(next(iter(spec.submodule_search_locations))).parent


def in_order(workloads: list[Workload]) -> list[Workload]:
    """Producers before consumers: a workload that reads a prefix another writes comes after it."""
    pending, ordered = list(workloads), []
    while pending:
        ready = [w for w in pending if not any(set(w.reads) & set(o.writes) for o in pending if o is not w)]
        if not ready:
            raise UserError(f"workloads read each other's data in a cycle: {', '.join(w.name for w in pending)}")
        ordered.extend(ready)
        pending = [w for w in pending if w not in ready]
    return ordered


@dataclass(frozen=True)
class Demo:
    """What a workload's demo returns: the summary as data (``mlwf demo --json``) and as lines."""

    data: dict[str, Any]
    lines: list[str]
    refused: str | None = None  # the run finished but refused to publish its result: why, in a line


@dataclass(frozen=True)
class DataAccess:
    """What the task roles may do under the data root: every workload's prefixes together."""

    writes: tuple[str, ...]
    reads: tuple[str, ...]
    cluster_writes: tuple[str, ...] = ()

    @classmethod
    def of(cls, workloads: list[Workload]) -> DataAccess:
        writes = sorted({p for w in workloads for p in w.writes})
        reads = sorted({p for w in workloads for p in w.reads} - set(writes))
        cluster_writes = sorted({p for w in workloads for p in w.cluster_writes})
        return cls(tuple(writes), tuple(reads), tuple(cluster_writes))
