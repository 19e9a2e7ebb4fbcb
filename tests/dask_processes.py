"""Start `dask-scheduler` / `dask-worker` processes from a given environment's bin folder, with
the arguments dask-cloudprovider's ECS task definitions pass, bound to 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import free_port
from distributed import Client


def start(bin_dir: Path, *command: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(bin_dir / command[0]), *command[1:]],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def scheduler_command(port: int, *extra: str) -> list[str]:
    return ["dask-scheduler", *extra, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0"]


def worker_command(address: str) -> list[str]:
    """The worker task definition's arguments (one thread, its memory limit, death timeout)."""
    return [
        "dask-worker",
        "--nthreads",
        "1",
        "--memory-limit",
        "1024MB",
        "--death-timeout",
        "60",
        "--host",
        "127.0.0.1",
        address,
    ]


@contextmanager
def cluster_of(scheduler_bin: Path, worker_bin: Path) -> Iterator[Client]:
    """A scheduler and one worker as separate processes, and a client of this project on them."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = start(scheduler_bin, *scheduler_command(port, "--idle-timeout", "5 minutes"))
    worker = start(worker_bin, *worker_command(address))
    try:
        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
            yield client
    finally:
        worker.terminate()
        scheduler.terminate()
        worker.wait(timeout=30)
        scheduler.wait(timeout=30)
