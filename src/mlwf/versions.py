"""What code and libraries produced an artefact: recorded with models, compared across a cluster.

`guard_versions(client, ...)` is the cluster's version guard: it waits for the expected workers,
compares client, scheduler and every worker, and keeps checking workers that join later (an
adaptive cluster's, or a replacement): a late worker whose versions differ refuses to work
(it closes itself before it computes anything) and the guarded block fails when it ends.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

log = logging.getLogger(__name__)
GUARD_TOPIC = "mlwf-version-guard"

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
    """The package version plus a digest of the platform's and the workloads' source: changes
    whenever the code that produced an artefact does."""
    from mlwf.workloads import WORKFLOWS, installed_root

    digest = hashlib.sha256()
    for name, root in (("mlwf", Path(__file__).parent), (WORKFLOWS, installed_root() / WORKFLOWS)):
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{name}/{path.relative_to(root).as_posix()}".encode())
            digest.update(path.read_bytes())
    release = package_versions(("ml-workflows",))["ml-workflows"]  # mlwf.__version__, read the same way
    return f"{'0.0.0' if release == 'not installed' else release}+{digest.hexdigest()[:12]}"


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


def describe(found: dict[str, dict[str, str]]) -> str:
    details = "; ".join(
        f"{package}: " + ", ".join(f"{role} {version}" for role, version in seen.items())
        for package, seen in found.items()
    )
    return f"client, scheduler and workers run different versions of {', '.join(found)} ({details})"


def check_versions(client: Any) -> None:
    """Fail fast, before any work, when the cluster does not run the client's versions
    (distributed itself only warns)."""
    found = mismatches(cluster_versions(client))
    if found:
        raise VersionMismatchError(describe(found))


class WorkersDidNotJoinError(RuntimeError):
    """Fewer workers than expected joined the cluster in time."""


def wait_for_workers(client: Any, expected: int, timeout: float) -> None:
    """Wait until ``expected`` workers have joined; one line naming how many did otherwise."""
    if expected <= 0:
        return
    try:
        client.wait_for_workers(expected, timeout=timeout)
    except TimeoutError:
        joined = len(client.scheduler_info(n_workers=-1)["workers"])
        raise WorkersDidNotJoinError(
            f"only {joined} of {expected} Dask worker(s) joined within {timeout:.0f} s"
        ) from None


class LateWorkerGuard(WorkerPlugin):
    """Runs on every worker, those present and those that join later. A worker whose tracked
    package versions differ from the client's reports it (an event the client subscribes to)
    and closes itself, nanny included, so it never computes anything."""

    name = GUARD_TOPIC

    def __init__(self, expected: dict[str, str]) -> None:
        self.expected = expected

    def setup(self, worker: Any) -> None:
        found = mismatches({"client": self.expected, f"worker {worker.address}": package_versions()})
        if not found:
            return
        message = describe(found)
        log.error("refusing to work: %s", message)
        worker.log_event(GUARD_TOPIC, {"worker": worker.address, "message": message})
        worker.loop.add_callback(worker.close, reason="mlwf: package versions differ from the client's")


@contextmanager
def guard_versions(client: Any, expected_workers: int, timeout: float) -> Iterator[None]:
    """The version guard around a block of work on ``client``'s cluster (see the module doc)."""
    wait_for_workers(client, expected_workers, timeout)
    check_versions(client)
    refused: list[str] = []
    client.subscribe_topic(GUARD_TOPIC, lambda event: refused.append(event[1]["message"]))
    client.register_plugin(LateWorkerGuard(package_versions()), name=GUARD_TOPIC)
    try:
        yield
    except BaseException as exc:
        if refused:
            raise VersionMismatchError(refused[0]) from exc
        raise
    if refused:
        raise VersionMismatchError(refused[0])
