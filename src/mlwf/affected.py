"""Which stacks, environments, flows and images a change touches, from the paths it changes.

Used by the pull-request workflow to preview only what a change can affect, and by anyone
locally (`mlwf affected --base origin/main`)."""

from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from mlwf.errors import UserError
from mlwf.image import is_image_input
from mlwf.stacks.programs import IMAGE_STACKS, ORDER, STACKS


@dataclass
class Affected:
    order: list[str]  # every environment, in tier order
    stacks: set[str] = field(default_factory=set)
    environments: set[str] = field(default_factory=set)
    flows: bool = False
    image: bool = False
    policies: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "stacks": [s for s in ORDER if s in self.stacks],
            "environments": [e for e in self.order if e in self.environments],
            "flows": self.flows,
            "image": self.image,
            "policies": self.policies,
        }


def _stack_feeds(stacks: Path) -> dict[str, set[str]]:
    """Module file of ``mlwf.stacks`` -> the stacks whose program imports it (directly or not),
    read from the modules' imports: a change to one re-plans exactly those stacks."""
    imports: dict[str, set[str]] = {}
    for path in stacks.glob("*.py"):
        tree = ast.parse(path.read_text())
        imports[path.stem] = {
            str(node.module).rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlwf.stacks.")
        }
    feeds: dict[str, set[str]] = {}
    for name, spec in STACKS.items():
        pending, seen = [spec.program.__module__.rsplit(".", 1)[-1]], set()
        while pending:
            module = pending.pop()
            if module not in seen:
                seen.add(module)
                pending.extend(imports.get(module, ()))
        for module in seen:
            feeds.setdefault(f"{module}.py", set()).add(name)
    return feeds


def _downstream(stacks: set[str]) -> set[str]:
    """A stack and every stack that references it, directly or not."""
    out = set(stacks)
    changed = True
    while changed:
        changed = False
        for name, spec in STACKS.items():
            if name not in out and out & set(spec.upstream):
                out.add(name)
                changed = True
    return out


def classify(paths: list[str], repo_root: Path) -> Affected:
    """What the changed ``paths`` touch. The image is whatever its Dockerfile copies (the same
    question `mlwf image tag` answers); a new image means new task definitions in the stacks
    that run it, in every environment it is promoted to, and the flows redeployed."""
    from mlwf.settings import environment_names

    names = environment_names(repo_root / "environments")
    result = Affected(names)
    every_env = set(names)
    feeds = _stack_feeds(Path(__file__).parent / "stacks")
    for path in paths:
        parts = Path(path).parts
        if not parts:
            continue
        if is_image_input(path, repo_root):
            result.image = result.flows = True
            result.stacks |= set(IMAGE_STACKS)
            result.environments |= every_env
        if parts[0] == "platform" and len(parts) > 1 and parts[1] in STACKS:
            result.stacks |= _downstream({parts[1]})
            result.environments |= every_env
        elif parts[0] == "environments" and path.endswith(".yaml"):
            result.stacks |= set(ORDER)
            result.environments.add(Path(path).stem)
            result.flows = True
        elif parts[0] == "policies" or parts[:3] == ("src", "mlwf", "policy"):
            result.policies = True
            result.stacks |= set(ORDER)
            result.environments |= every_env
        elif parts[:3] == ("src", "mlwf", "stacks"):
            module = parts[3] if len(parts) > 3 else ""
            result.stacks |= _downstream(feeds.get(module, set(ORDER)))
            result.environments |= every_env
        elif parts[:3] == ("src", "mlwf", "infra") or (parts[:2] == ("src", "mlwf") and parts[-1] == "settings.py"):
            # the tooling that plans every stack, or what every stack reads
            result.stacks |= set(ORDER)
            result.environments |= every_env
    return result


def changed_paths(base: str, repo: Path) -> list[str]:
    """Paths changed between the merge base of ``base`` and HEAD, plus uncommitted ones."""

    def git(*args: str) -> str:
        completed = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        if completed.returncode != 0:
            reason = (completed.stderr.strip().splitlines() or ["failed"])[-1]
            raise UserError(f"git {' '.join(args)}: {reason}")
        return completed.stdout

    committed = git("diff", "--name-only", f"{base}...HEAD").splitlines()
    uncommitted = git("status", "--porcelain", "--untracked-files=all").splitlines()
    return sorted({*committed, *(line[3:].split(" -> ")[-1] for line in uncommitted)} - {""})
