"""Dask traffic of a run with ``dask.tls``: its scheduler and worker, started with the task
definitions' commands, read the run's certificates from the run's secret (on a moto server) and
speak TLS; a client holding the certificates works, any other cannot connect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from conftest import free_port
from dask_processes import scheduler_command, start, worker_command
from distributed import Client

from mlwf import dask_tls
from mlwf.contract import DASK_TLS_VARIABLE, dask_tls_secret_name

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture
def tls_cluster(aws_env: str) -> object:
    certificates = dask_tls.Certificates.new()
    secrets = boto3.client("secretsmanager")
    arn = dask_tls.store(secrets, dask_tls_secret_name("mlwf-dev", "run-1"), certificates, {"mlwf:flow-run": "run-1"})
    port = free_port()
    env = {DASK_TLS_VARIABLE: arn}
    scheduler = start(BIN, *scheduler_command(port, "--idle-timeout", "5 minutes"), **env)
    address = f"tls://127.0.0.1:{port}"
    worker = start(BIN, *worker_command(address), **env)
    try:
        yield certificates, address
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=30)
        dask_tls.delete(secrets, arn)


def test_only_a_client_with_the_runs_certificates_can_use_the_cluster(tls_cluster: object) -> None:
    certificates, address = tls_cluster  # type: ignore[misc]
    with Client(address, security=certificates.security(), timeout=30) as client:
        client.wait_for_workers(1, timeout=60)
        assert client.submit(sum, range(10)).result() == 45
        (worker,) = client.scheduler_info()["workers"]
        assert worker.startswith("tls://"), "the worker speaks TLS too"
    stranger = dask_tls.Certificates.new()
    with pytest.raises(OSError, match=r"TLS certificate does not match"):
        Client(address, security=stranger.security(), timeout=5)
    with pytest.raises(OSError, match=r"Timed out|[Cc]onnection"):
        Client(address.replace("tls://", "tcp://"), timeout=5)


def test_without_a_secret_the_commands_stay_plain() -> None:
    assert dask_tls.command_arguments("scheduler", {}) == []


def test_the_certificates_never_reach_the_command_line(tls_cluster: object) -> None:
    """They are read into files only the process can read; its arguments name the files."""
    # -ww: never cut at 80 columns (a clone in a deep folder pushes the script name past it)
    out = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if "dask-scheduler" in line or "dask-worker" in line]
    assert lines
    assert not any("BEGIN" in line for line in lines)
