"""Shared fixtures: real local parts only (a LocalCluster, a moto server, an HTTP server, a
Prefect test server), each started once per session where it is slow to start."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from collection_guard import pytest_collection_modifyitems

__all__ = ["pytest_collection_modifyitems"]  # the guard: test IDs stay the same on every collection

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(str(files("workflows.storm") / "sample_data"))
FULL_DATA = REPO.parent / "shared" / "data" / "noaa-storm-events"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def full_data_dir() -> Path:
    """All 46 years of real NOAA files, when ../shared is laid beside the repository."""
    if not FULL_DATA.is_dir():
        pytest.skip(f"the full NOAA data set is not at {FULL_DATA} (only shipped with the workspace)")
    return FULL_DATA


@pytest.fixture(scope="session")
def sample_1995(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with just one real year (fast end-to-end runs need two; see two_years)."""
    folder = tmp_path_factory.mktemp("one-year")
    for path in SAMPLE.glob("*d1995*.csv.gz"):
        shutil.copy(path, folder)
    return folder


@pytest.fixture(scope="session")
def dask_client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server on 127.0.0.1 (HTTP, as s3fs/boto3/aiobotocore see AWS)."""
    port = free_port()
    server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    recording = tmp_path_factory.mktemp("moto") / "recording"  # /moto-api/recorder, per server
    process = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_RECORDER_FILEPATH": str(recording)},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point every AWS client of this process (and of Dask workers started after) at moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"))
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()
    return moto_endpoint


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A folder served over real HTTP on 127.0.0.1, like NCEI's directory listing."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """Prefect's own test harness: a temporary API server on a fresh SQLite database."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
