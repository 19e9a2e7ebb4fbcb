"""The flow/Dask image: its tag and its requirements.

The tag is a digest of everything the image is built from: the Dockerfile and every file its
``COPY`` instructions copy (read from the Dockerfile itself, minus what ``.dockerignore``
leaves out), so a change to code, settings or the locked requirements always yields a new
immutable tag and nothing else does. `mlwf affected` asks the same question of a change's paths
(`is_image_input`), so the two cannot drift. The requirements are exported from uv.lock.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path, PurePosixPath

from mlwf.errors import UserError

DOCKERFILE = Path("image") / "Dockerfile"
DOCKERIGNORE = Path(".dockerignore")
REQUIREMENTS = Path("image") / "requirements.txt"
EXPORT_COMMAND = (
    "uv",
    "export",
    "--frozen",
    "--no-default-groups",
    "--group",
    "build",
    "--group",
    "workloads",  # each shipped workload's own libraries (pyproject.toml's dependency groups)
    "--no-emit-project",
    "--format",
    "requirements-txt",
)


def python_tag() -> str:
    return f"py{sys.version_info.major}.{sys.version_info.minor}"


def instructions(dockerfile_text: str, *names: str) -> Iterator[tuple[str, list[str]]]:
    """(line, words after the instruction) of each instruction named, continuations joined."""
    logical = re.sub(r"\\\n", " ", dockerfile_text)
    for line in logical.splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if words and words[0].upper() in names:
            yield line, words[1:]


def image_environment(dockerfile_text: str) -> dict[str, str]:
    """The variables the image's ``ENV`` instructions set (``KEY=value`` form)."""
    env: dict[str, str] = {}
    for line, words in instructions(dockerfile_text, "ENV"):
        if not all("=" in w for w in words):
            raise UserError(f"{DOCKERFILE}: write ENV as KEY=value: {line.strip()!r}")
        env.update(w.split("=", 1) for w in words)  # type: ignore[misc]
    return env


def copied_sources(dockerfile_text: str) -> list[str]:
    """The build-context paths of every ``COPY``/``ADD`` (not ``--from`` another stage)."""
    sources: list[str] = []
    for line, arguments in instructions(dockerfile_text, "COPY", "ADD"):
        if any(a.startswith("--from") for a in arguments):
            continue
        paths = [a for a in arguments if not a.startswith("--")]
        if len(paths) < 2:
            raise UserError(f"{DOCKERFILE}: cannot read the sources of {line.strip()!r}")
        sources.extend(str(PurePosixPath(p)) for p in paths[:-1])
    return sources


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex on a relative POSIX path (``**`` crosses folders)."""
    glob = glob.strip().strip("/")
    out = ""
    index = 0
    while index < len(glob):
        if glob.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif glob.startswith("**", index):
            out += ".*"
            index += 2
        elif glob[index] == "*":
            out += "[^/]*"
            index += 1
        elif glob[index] == "?":
            out += "[^/]"
            index += 1
        else:
            out += re.escape(glob[index])
            index += 1
    return re.compile(out)


@lru_cache(maxsize=8)
def _ignore_rules(text: str) -> tuple[tuple[bool, re.Pattern[str]], ...]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        rules.append((negated, _pattern(line.lstrip("!"))))
    return tuple(rules)


def ignored(path: str, dockerignore_text: str) -> bool:
    """Does .dockerignore leave ``path`` (or a folder above it) out of the build context?
    The last matching rule wins, as in Docker."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for negated, pattern in _ignore_rules(dockerignore_text):
        if any(pattern.fullmatch(c) for c in candidates):
            verdict = not negated
    return verdict


def _read(repo_root: Path, relative: Path) -> str:
    path = repo_root / relative
    return path.read_text() if path.exists() else ""


def is_image_input(path: str, repo_root: Path) -> bool:
    """Is this repository path part of what the image is built from?"""
    path = str(PurePosixPath(path))
    if path == DOCKERFILE.as_posix():
        return True
    ignore = _read(repo_root, DOCKERIGNORE)
    for source in copied_sources(_read(repo_root, DOCKERFILE)):
        if source in (".", "") or path == source or path.startswith(f"{source}/"):
            return not ignored(path, ignore)
    return False


def image_inputs(repo_root: Path) -> Iterator[Path]:
    """Every file the image is built from, in a stable order."""
    ignore = _read(repo_root, DOCKERIGNORE)
    if not (repo_root / DOCKERFILE).is_file():
        raise UserError(f"{repo_root / DOCKERFILE}: not found (the image's definition)")
    yield repo_root / DOCKERFILE
    seen: set[Path] = {repo_root / DOCKERFILE}
    for source in copied_sources((repo_root / DOCKERFILE).read_text()):
        root = repo_root / source
        if not root.exists():
            raise UserError(f"{DOCKERFILE} copies {source}, which does not exist")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(repo_root).as_posix()
            if path not in seen and not ignored(relative, ignore):
                seen.add(path)
                yield path


def image_tag(repo_root: Path) -> str:
    """``py3.11-<first 12 hex of sha256 of the image's inputs>``."""
    digest = hashlib.sha256()
    for path in image_inputs(repo_root):
        digest.update(path.relative_to(repo_root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"{python_tag()}-{digest.hexdigest()[:12]}"


def export_requirements(repo_root: Path, output: Path) -> None:
    """Write the image's requirements exactly as uv.lock pins them (with hashes)."""
    subprocess.run([*EXPORT_COMMAND, "-o", str(output), "-q"], cwd=repo_root, check=True)


__all__ = ["EXPORT_COMMAND", "REQUIREMENTS", "export_requirements", "image_inputs", "image_tag", "is_image_input"]
