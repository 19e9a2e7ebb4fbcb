"""The `dask-scheduler` / `dask-worker` commands the ECS task definitions run: they start a
working cluster, and schedulers never outlive their idle timeout or the maximum lifetime."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from conftest import free_port
from dask_processes import cluster_of, scheduler_command, start
from distributed import Client

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def test_the_task_definition_commands_start_a_cluster_that_runs_work() -> None:
    with cluster_of(BIN, BIN) as client:
        assert client.submit(sum, range(10)).result() == 45


@pytest.mark.reliability
def test_an_idle_scheduler_exits_by_itself() -> None:
    scheduler = start(BIN, *scheduler_command(0, "--idle-timeout", "2s"))
    assert scheduler.wait(timeout=60) == 0


@pytest.mark.reliability
def test_no_scheduler_outlives_the_maximum_lifetime() -> None:
    """Even with clients attached (never idle), MLWF_MAX_LIFETIME ends it."""
    port = free_port()
    started = time.monotonic()
    scheduler = start(BIN, *scheduler_command(port, "--idle-timeout", "1 hour"), MLWF_MAX_LIFETIME="6s")
    client = Client(f"tcp://127.0.0.1:{port}", timeout=30)
    try:
        assert scheduler.wait(timeout=60) == 0
        assert time.monotonic() - started >= 6
    finally:
        client.close()
