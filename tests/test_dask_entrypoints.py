"""The `dask-scheduler` / `dask-worker` commands the ECS task definitions run: they start a
working cluster, and schedulers never outlive their idle timeout or the maximum lifetime."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port
from distributed import Client

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def start(command: list[str], **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / command[0]), *command[1:]],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_the_task_definition_commands_start_a_cluster_that_runs_work() -> None:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # The same arguments dask-cloudprovider's scheduler and worker task definitions pass.
    scheduler = start(
        [
            "dask-scheduler",
            "--idle-timeout",
            "5 minutes",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            "127.0.0.1:0",
        ]
    )
    worker = start(
        [
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
    )
    try:
        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
            assert client.submit(sum, range(10)).result() == 45
    finally:
        worker.terminate()
        scheduler.terminate()
        worker.wait(timeout=30)
        scheduler.wait(timeout=30)


@pytest.mark.reliability
def test_an_idle_scheduler_exits_by_itself() -> None:
    scheduler = start(
        [
            "dask-scheduler",
            "--idle-timeout",
            "2s",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            "127.0.0.1:0",
        ]
    )
    assert scheduler.wait(timeout=60) == 0


@pytest.mark.reliability
def test_no_scheduler_outlives_the_maximum_lifetime() -> None:
    """Even with clients attached (never idle), MLWF_MAX_LIFETIME ends it."""
    port = free_port()
    started = time.monotonic()
    scheduler = start(
        [
            "dask-scheduler",
            "--idle-timeout",
            "1 hour",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            "127.0.0.1:0",
        ],
        MLWF_MAX_LIFETIME="6s",
    )
    client = Client(f"tcp://127.0.0.1:{port}", timeout=30)
    try:
        assert scheduler.wait(timeout=60) == 0
        assert time.monotonic() - started >= 6
    finally:
        client.close()
