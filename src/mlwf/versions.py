"""What code and libraries produced an artefact: recorded with models, compared across a cluster."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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
