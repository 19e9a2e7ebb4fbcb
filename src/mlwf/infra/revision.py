"""Planning a source tree with its own code: a git worktree of a revision, or the working tree,
planned offline in a subprocess whose imports come from that tree. The plan comes back over a
pipe in full (secrets still wrapped), so the caller can compare secrets without printing them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from mlwf.errors import UserError
from mlwf.planned import PlannedResource, StackPlan

# Runs in the planned tree (cwd) with only the interpreter's libraries shared. It reads
# {"envs": [...], "stacks": [...], "program": "dir" | null} on stdin and writes the plans as JSON.
DRIVER = r"""
import json, sys
from pathlib import Path
root = Path.cwd().resolve()
sys.path[:0] = [str(root / "src"), str(root)]
out, sys.stdout = sys.stdout, sys.stderr
import mlwf
if not Path(mlwf.__file__).resolve().is_relative_to(root / "src"):
    sys.exit(f"would plan the wrong code: mlwf from {mlwf.__file__}")
from mlwf.errors import UserError
from mlwf.infra import plan as plan_module
from mlwf.infra.plan import plan_environment, plan_program
try:
    from mlwf.stacks.programs import ORDER
except ModuleNotFoundError:  # code from before the stacks had a package of their own
    from mlwf.infra.stacks import ORDER
from mlwf.settings import load_environment
if not hasattr(plan_module, "PlanMonitor"):
    # Code from before plans carried real URNs (with parents): record them as the engine forms them.
    import threading
    import pulumi.runtime.mocks as mocks_module
    lock, set_mocks = threading.Lock(), mocks_module.set_mocks
    class Recorder(mocks_module.MockMonitor):
        def make_urn(self, parent, type_, name):
            qualified = parent.split("::")[2] if parent else "pulumi:pulumi:Stack"
            type_ = type_ if qualified == "pulumi:pulumi:Stack" else f"{qualified}${type_}"
            return "urn:pulumi:" + "::".join([mocks_module.get_stack(), mocks_module.get_project(), type_, name])
        def RegisterResource(self, request):
            with lock:
                before = len(self.mocks.resources)
                response = super().RegisterResource(request)
                if len(self.mocks.resources) == before + 1:
                    planned = self.mocks.resources[-1]
                    planned.urn = self.make_urn(request.parent, request.type, request.name)
                    planned.parent = request.parent
                return response
    def recorded(mocks, **kwargs):
        set_mocks(mocks, **{**kwargs, "monitor": Recorder(mocks)})
    mocks_module.set_mocks = recorded
request = json.load(sys.stdin)
plans = []
try:
    for env in request["envs"]:
        settings = load_environment(env, root / "environments")
        if request["program"]:
            plans += [plan_program(root / request["program"], settings, root)]
        else:
            plans += plan_environment(settings, [s for s in ORDER if s in request["stacks"]], root)
except UserError as exc:
    sys.exit(str(exc))
def resource(r):
    return {
        "type": r.type, "name": r.name, "inputs": r.inputs, "urn": r.urn,
        "parent": getattr(r, "parent", ""), "custom": getattr(r, "custom", not r.type.startswith("mlwf:")),
        "aliases": getattr(r, "aliases", []), "provider": r.provider, "id": r.id, "arn": r.arn,
        "dependencies": r.dependencies,
    }
documents = [{"env": p.env, "stack": p.stack, "resources": [resource(r) for r in p.resources]} for p in plans]
json.dump(documents, out, default=str)
"""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def resolve(repo: Path, ref: str) -> str:
    """The commit a revision names; one line naming it when it names none."""
    result = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if result.returncode != 0:
        inside = _git(repo, "rev-parse", "--is-inside-work-tree").returncode == 0
        raise UserError(f"{ref!r} is not a revision of {repo}" if inside else f"{repo} is not a git repository")
    return result.stdout.strip()


def top_level(folder: Path) -> Path:
    result = _git(folder, "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        raise UserError(f"{folder} is not in a git repository (--base compares git revisions)")
    return Path(result.stdout.strip())


@contextmanager
def worktree(repo: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of `commit`, removed afterwards whatever happens."""
    holder = Path(tempfile.mkdtemp(prefix="mlwf-base-"))
    tree = holder / "tree"
    added = _git(repo, "worktree", "add", "--detach", str(tree), commit)
    if added.returncode != 0:
        shutil.rmtree(holder, ignore_errors=True)
        raise UserError(f"cannot check out {commit[:12]}: {added.stderr.strip().splitlines()[-1]}")
    try:
        yield tree
    finally:
        _git(repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(holder, ignore_errors=True)
        _git(repo, "worktree", "prune")


def changed(repo: Path, commit: str, paths: list[str]) -> bool:
    """Whether any of `paths` differs between `commit` and the working tree (untracked files too)."""
    if _git(repo, "diff", "--quiet", commit, "--", *paths).returncode != 0:
        return True
    return bool(_git(repo, "ls-files", "--others", "--exclude-standard", "--", *paths).stdout.strip())


class TreePlanner:
    """One tree's plan in a subprocess; start several, then collect them (they run in parallel)."""

    def __init__(self, tree: Path, label: str, envs: list[str], stacks: list[str], program: Path | None) -> None:
        self.tree, self.label = tree, label
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            cwd=tree,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.request = json.dumps({"envs": envs, "stacks": stacks, "program": str(program) if program else None})

    def collect(self) -> list[StackPlan]:
        out, err = self.process.communicate(self.request, timeout=900)
        if self.process.returncode != 0:
            last = (err.strip().splitlines() or ["(no output)"])[-1]
            raise UserError(f"planning {self.label} failed: {last}")
        return [_stack_plan(document) for document in json.loads(out)]


_FIELDS = {f.name for f in fields(PlannedResource)}


def _stack_plan(document: dict[str, Any]) -> StackPlan:
    resources = [PlannedResource(**{k: v for k, v in r.items() if k in _FIELDS}) for r in document["resources"]]
    return StackPlan(document["env"], document["stack"], resources)
