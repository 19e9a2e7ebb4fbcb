"""The flow/Dask image, tested without a Docker engine: its requirements are uv.lock's, its tag
follows the lock, and an environment built from exactly its requirements runs the scheduler and
worker commands of the ECS task definitions for a client of this project; a version mismatch
is caught before any work."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dask_processes import cluster_of

from mlwf.image import EXPORT_COMMAND, REQUIREMENTS, image_tag
from mlwf.versions import VersionMismatchError, check_versions

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^ ;\\]+)")


def pins(text: str) -> dict[str, str]:
    return {m[1].lower(): m[2] for line in text.splitlines() if (m := PIN.match(line))}


def requirement_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_the_image_requirements_are_exported_from_the_lock(tmp_path: Path) -> None:
    fresh = tmp_path / "requirements.txt"
    subprocess.run([*EXPORT_COMMAND, "-o", str(fresh), "-q"], cwd=REPO, check=True)
    committed = (REPO / REQUIREMENTS).read_text()
    assert requirement_lines(committed) == requirement_lines(fresh.read_text()), "run `uv run nox -s export`"
    locked = {
        p["name"].lower(): p["version"]
        for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]
        if "version" in p
    }
    image = pins(committed)
    assert image, "no pins found"
    assert {name: locked[name] for name in image} == image
    assert "--hash=sha256:" in committed
    for tool in ("pulumi", "pulumi-aws", "pytest", "moto", "ruff"):
        assert tool not in image, f"{tool} does not belong in the image"
    for runtime in ("distributed", "dask", "dask-ml", "dask-cloudprovider", "prefect", "prefect-aws", "s3fs"):
        assert runtime in image


def test_the_dockerfile_installs_exactly_those_requirements() -> None:
    dockerfile = (REPO / "workflows" / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r workflows/requirements.txt" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    base = re.search(r"^FROM python:(\d+\.\d+)\.\d+-slim", dockerfile, re.MULTILINE)
    assert base is not None
    assert base[1] == f"{sys.version_info.major}.{sys.version_info.minor}", "the image runs the client's Python"
    assert re.search(r"^USER \d+", dockerfile, re.MULTILINE), "not root"


def test_the_tag_follows_the_lock_and_the_python_version(tmp_path: Path) -> None:
    shutil.copy(REPO / "uv.lock", tmp_path / "uv.lock")
    before = image_tag(tmp_path)
    assert re.fullmatch(r"py3\.11-[0-9a-f]{12}", before)
    with (tmp_path / "uv.lock").open("a") as handle:
        handle.write("\n")
    assert image_tag(tmp_path) != before


UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")


def build_image_venv(venv: Path) -> Path:
    """A virtual environment built from exactly the image's requirements, as the Dockerfile does."""
    uv = UV
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            python,
            "--require-hashes",
            "--no-deps",
            "-r",
            str(REPO / REQUIREMENTS),
        ],
        check=True,
    )
    subprocess.run([uv, "pip", "install", "-q", "--python", python, "--no-deps", str(REPO)], check=True)
    return venv


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_image_venv(tmp_path_factory.mktemp("image") / "venv")


@pytest.mark.slow
def test_the_image_environment_runs_the_task_definition_commands(image_venv: Path) -> None:
    bin_dir = image_venv / "bin"
    with cluster_of(bin_dir, bin_dir) as client:
        check_versions(client)
        assert client.submit(sum, range(100)).result() == 4950
        import dask.dataframe as dd
        import pandas as pd

        frame = dd.from_pandas(pd.DataFrame({"x": range(1000)}), npartitions=4)
        assert int(frame["x"].sum().compute()) == 499500


@pytest.mark.slow
@pytest.mark.reliability
def test_a_version_mismatch_is_caught_before_any_work(image_venv: Path, tmp_path: Path) -> None:
    odd = build_image_venv(tmp_path / "odd-venv")
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(odd / "bin" / "python"), "--no-deps", "msgpack==1.1.0"], check=True
    )
    with (
        cluster_of(image_venv / "bin", odd / "bin") as client,
        pytest.raises(VersionMismatchError, match=r"different versions of msgpack \(msgpack: client 1\.2\.4"),
    ):
        check_versions(client)
