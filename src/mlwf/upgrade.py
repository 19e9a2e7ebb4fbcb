"""`mlwf upgrade`: a later release of the template into a platform made from it (copier update,
three-way: the adopter's answers, settings, workloads and edits kept), and every file where the
adopter's change and the release's meet reported, with both sides written into it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlwf.errors import UserError

ANSWERS = ".copier-answers.yml"
MARKER = "<<<<<<< "


@dataclass(frozen=True)
class Upgraded:
    version: str  # the release now applied (the answers file's _commit)
    conflicts: list[str]  # files holding both sides of a change, to resolve


def upgrade(repo: Path, to: str | None = None) -> Upgraded:
    answers = _answers(repo)
    changed = _git(repo, "status", "--porcelain")
    if changed.strip():
        raise UserError(f"{repo}: commit or stash your changes first (an upgrade merges into a clean tree)")
    args = ["update", "--defaults", "--conflict", "inline", *(["--vcs-ref", to] if to else [])]
    result = subprocess.run([_copier(), *args], cwd=repo, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise UserError(f"copier update from {answers.get('_src_path')}: {lines[-1] if lines else 'failed'}")
    return Upgraded(str(_answers(repo).get("_commit")), _conflicts(repo))


def _answers(repo: Path) -> dict[str, object]:
    path = repo / ANSWERS
    if not path.is_file():
        raise UserError(f"no {ANSWERS} in {repo}: upgrade works in a platform made with `copier copy`")
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or "_src_path" not in document:
        raise UserError(f"{path}: not copier's answers (no _src_path)")
    return document


def _conflicts(repo: Path) -> list[str]:
    """Changed files with a conflict marker at the start of a line."""
    listed = _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    found = []
    for name in sorted({line[3:].split(" -> ")[-1] for line in listed}):
        path = repo / name
        if path.is_file() and any(line.startswith(MARKER) for line in path.read_text(errors="replace").splitlines()):
            found.append(name)
    return found


def _copier() -> str:
    beside = Path(sys.executable).parent / "copier"
    found = str(beside) if beside.is_file() else shutil.which("copier")
    if found is None:
        raise UserError("copier is not installed: run `uv sync` (it is in the dev group)")
    return found


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(f"{repo}: git {args[0]} failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return result.stdout
