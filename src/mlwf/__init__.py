"""ml-workflows: the platform's shared Python code (settings, stacks, policies, compute, CLI).

A workload's flows use the public API: `mlwf.cluster`, `mlwf.data_root` and the outcomes the
alerts know, `mlwf.refused` and `mlwf.decayed` (`mlwf.api`), and `mlwf.stage` (`mlwf.tasks`);
importing `mlwf` imports neither Dask nor Prefect until they are used.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlwf.api import cluster, data_root, decayed, refused
    from mlwf.tasks import stage

try:
    __version__ = version("ml-workflows")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["cluster", "data_root", "decayed", "refused", "stage"]
_API = dict.fromkeys(("cluster", "data_root", "decayed", "refused"), "mlwf.api") | {"stage": "mlwf.tasks"}


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'mlwf' has no attribute {name!r}")
