"""ml-workflows: the shared Python code of the platform (settings, data, ML, compute, CLI)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ml-workflows")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
