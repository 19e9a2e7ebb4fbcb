"""The flow/Dask image: its tag and its requirements, both derived from uv.lock."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path("workflows") / "requirements.txt"
EXPORT_COMMAND = (
    "uv",
    "export",
    "--frozen",
    "--no-default-groups",
    "--no-emit-project",
    "--format",
    "requirements-txt",
)


def python_tag() -> str:
    return f"py{sys.version_info.major}.{sys.version_info.minor}"


def image_tag(repo_root: Path) -> str:
    """``py3.11-<first 12 hex of sha256(uv.lock)>``: any dependency change gives a new tag."""
    digest = hashlib.sha256((repo_root / "uv.lock").read_bytes()).hexdigest()[:12]
    return f"{python_tag()}-{digest}"


def export_requirements(repo_root: Path, output: Path) -> None:
    """Write the image's requirements exactly as uv.lock pins them (with hashes)."""
    subprocess.run([*EXPORT_COMMAND, "-o", str(output), "-q"], cwd=repo_root, check=True)


__all__ = ["EXPORT_COMMAND", "REQUIREMENTS", "export_requirements", "image_tag"]
