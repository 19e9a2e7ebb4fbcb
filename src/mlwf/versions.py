"""What code and libraries produced an artefact: recorded with models, compared across a cluster."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlwf

# The packages whose versions must agree between client, scheduler and workers, and that a
# model's metadata records.
TRACKED_PACKAGES = (
    "dask",
    "distributed",
    "dask-ml",
    "dask-glm",
    "scikit-learn",
    "pandas",
    "numpy",
    "pyarrow",
    "cloudpickle",
    "msgpack",
    "ml-workflows",
)


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version plus a digest of its source: changes whenever the code does."""
    digest = hashlib.sha256()
    root = Path(mlwf.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{mlwf.__version__}+{digest.hexdigest()[:12]}"


class VersionMismatchError(RuntimeError):
    """Client, scheduler and workers do not run the same versions of the tracked packages."""


def cluster_versions(client: Any) -> dict[str, dict[str, str]]:
    """Tracked package versions per role: the client, the scheduler and each worker."""
    roles = {"client": package_versions(), "scheduler": client.run_on_scheduler(package_versions)}
    for address, versions in client.run(package_versions).items():
        roles[f"worker {address}"] = versions
    return roles


def mismatches(roles: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """package -> {role: version} for every tracked package whose version differs."""
    out = {}
    for package in TRACKED_PACKAGES:
        seen = {role: versions.get(package, "not installed") for role, versions in roles.items()}
        if len(set(seen.values())) > 1:
            out[package] = seen
    return out


def check_versions(client: Any) -> None:
    """Fail fast, before any work, when the cluster does not run the client's versions
    (distributed itself only warns)."""
    found = mismatches(cluster_versions(client))
    if found:
        details = "; ".join(
            f"{package}: " + ", ".join(f"{role} {version}" for role, version in seen.items())
            for package, seen in found.items()
        )
        raise VersionMismatchError(
            f"client, scheduler and workers run different versions of {', '.join(found)} ({details})"
        )
