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
from dask_processes import cluster_of, start, worker_command
from distributed import Client

from mlwf.contract import IMAGE_HOME, IMAGE_WORKDIR
from mlwf.image import EXPORT_COMMAND, REQUIREMENTS, copied_sources, image_inputs, image_tag, is_image_input
from mlwf.versions import VersionMismatchError, check_versions, guard_versions

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
    dockerfile = (REPO / "image" / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r image/requirements.txt" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile, "the backend from the requirements"
    base = re.search(r"^FROM python:(\d+\.\d+)\.\d+-slim-\w+@sha256:[0-9a-f]{64}$", dockerfile, re.MULTILINE)
    assert base is not None, "the base image by its full version tag and its digest"
    assert base[1] == f"{sys.version_info.major}.{sys.version_info.minor}", "the image runs the client's Python"
    assert re.search(r"^USER \d+", dockerfile, re.MULTILINE), "not root"


def test_the_build_backend_is_pinned_and_hashed_in_the_image_requirements() -> None:
    """The project is built in the image with the backend the requirements installed (by hash),
    the one pyproject.toml names: nothing is fetched unverified at build time."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    (backend,) = project["build-system"]["requires"]
    name, version = backend.split("==")
    committed = (REPO / REQUIREMENTS).read_text()
    assert pins(committed)[name] == version
    lines = committed.splitlines()
    at = lines.index(f"{name}=={version} \\")
    assert lines[at + 1].strip().startswith("--hash=sha256:")
    assert version in project["dependency-groups"]["build"][0]


def test_the_image_works_where_the_platform_says_it_does() -> None:
    """The task definitions start in its WORKDIR and mount scratch volumes on its user's home."""
    dockerfile = (REPO / "image" / "Dockerfile").read_text()
    assert re.findall(r"^WORKDIR (\S+)", dockerfile, re.MULTILINE) == [IMAGE_WORKDIR]
    (user,) = re.findall(r"useradd .*--create-home (\w+)", dockerfile)
    assert f"/home/{user}" == IMAGE_HOME


DOCKERFILE_SOURCES = copied_sources((REPO / "image" / "Dockerfile").read_text())


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """A repository with this one's Dockerfile and .dockerignore and a file in every place the
    Dockerfile copies from, and in places it does not."""
    shutil.copy(REPO / ".dockerignore", tmp_path / ".dockerignore")
    (tmp_path / "image").mkdir()
    shutil.copy(REPO / "image" / "Dockerfile", tmp_path / "image" / "Dockerfile")
    for path in [*map(file_in, DOCKERFILE_SOURCES), *NOT_IN_THE_IMAGE]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("v1\n")
    return tmp_path


def file_in(source: str) -> str:
    """A file the Dockerfile copies through ``source`` (the file itself, or one inside it)."""
    return source if Path(REPO / source).is_file() else f"{source}/some_module.py"


NOT_IN_THE_IMAGE = (
    "README.md",
    "uv.lock",
    "tests/test_x.py",
    "platform/compute/__main__.py",
    "policies/__main__.py",
    "src/mlwf/stacks/compute.py",
    "src/mlwf/policy/pack.py",
    "src/mlwf/__pycache__/compute.cpython-311.pyc",
)


def test_the_dockerfile_copies_what_flows_and_dask_need() -> None:
    assert set(DOCKERFILE_SOURCES) >= {
        "image/requirements.txt",
        "pyproject.toml",
        "src",
        "workflows",
        "environments",
    }


@pytest.mark.parametrize("source", DOCKERFILE_SOURCES)
def test_changing_any_copied_file_changes_the_tag_and_affected(image_tree: Path, source: str) -> None:
    before = image_tag(image_tree)
    assert re.fullmatch(r"py3\.11-[0-9a-f]{12}", before)
    (image_tree / file_in(source)).write_text("v2\n")
    assert image_tag(image_tree) != before
    assert is_image_input(file_in(source), image_tree), "mlwf affected must see the image change too"


@pytest.mark.parametrize("path", NOT_IN_THE_IMAGE)
def test_files_outside_the_build_leave_the_tag_alone(image_tree: Path, path: str) -> None:
    before = image_tag(image_tree)
    (image_tree / path).write_text("v2\n")
    assert image_tag(image_tree) == before
    assert not is_image_input(path, image_tree)


def test_a_new_copy_line_is_part_of_the_tag(image_tree: Path) -> None:
    before = image_tag(image_tree)
    dockerfile = image_tree / "image" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPY tests tests\n")
    assert image_tag(image_tree) != before
    assert is_image_input("tests/test_x.py", image_tree)


def test_this_repositorys_image_inputs() -> None:
    inputs = {p.relative_to(REPO).as_posix() for p in image_inputs(REPO)}
    assert {
        "image/Dockerfile",
        "image/requirements.txt",
        "src/mlwf/dask_cluster.py",
        "environments/dev.yaml",
    } <= inputs
    assert not any(
        p.startswith(("src/mlwf/stacks/", "src/mlwf/infra/", "src/mlwf/policy/")) or "__pycache__" in p for p in inputs
    )


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


@pytest.fixture(scope="module")
def odd_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's environment with one tracked package at another version."""
    odd = build_image_venv(tmp_path_factory.mktemp("odd") / "venv")
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(odd / "bin" / "python"), "--no-deps", "msgpack==1.1.0"], check=True
    )
    return odd


@pytest.mark.slow
@pytest.mark.reliability
def test_a_version_mismatch_is_caught_before_any_work(image_venv: Path, odd_venv: Path) -> None:
    with (
        cluster_of(image_venv / "bin", odd_venv / "bin") as client,
        pytest.raises(VersionMismatchError, match=r"different versions of msgpack \(msgpack: client 1\.2\.4"),
    ):
        check_versions(client)


@pytest.mark.slow
@pytest.mark.reliability
def test_a_late_worker_with_other_versions_refuses_work_and_fails_the_block(image_venv: Path, odd_venv: Path) -> None:
    """An adaptive cluster's new worker (or a replacement) is checked when it joins: it closes
    itself before computing anything, and the guarded block fails naming the mismatch."""
    late: list[subprocess.Popen[bytes]] = []

    def work_while_a_late_worker_joins(client: Client) -> None:
        with guard_versions(client, expected_workers=1, timeout=60):
            assert client.submit(sum, [1, 2]).result() == 3
            late.append(start(odd_venv / "bin", *worker_command(client.scheduler.address)))
            assert late[0].wait(timeout=120) is not None, "the mismatched worker must close itself"
            # It never joined the work: every task ran on the original worker.
            assert len(client.scheduler_info()["workers"]) == 1
            assert client.submit(sum, [3, 4]).result() == 7

    with (
        cluster_of(image_venv / "bin", image_venv / "bin") as client,
        pytest.raises(VersionMismatchError, match=r"different versions of msgpack"),
    ):
        work_while_a_late_worker_joins(client)
    assert late
    assert late[0].poll() is not None
