"""Tasks as Fargate runs them (`mlwf.rehearsal.fargate`): real processes inside the image's
environment, as its user, on a read-only root with only the task definition's volumes writable,
each owned as Fargate makes it. These are the rehearsal's runtime, tested one process at a time;
`test_rehearsal.py` runs every task of the AWS path this way."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlwf.image import DOCKERFILE, REQUIREMENTS
from mlwf.rehearsal.checks import import_failures
from mlwf.rehearsal.dockerfile import PathState, read_image, unwritable_volumes
from mlwf.rehearsal.fargate import Sandbox, prepare
from mlwf.stacks.containers import SCRATCH, container

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE_TEXT = (REPO / DOCKERFILE).read_text()
WITHOUT_VOLUME = DOCKERFILE_TEXT.replace('VOLUME ["/tmp", "/home/mlwf"]\n', "")
TASK = container("flow-run", "image", "group", "us-east-1", "prefix", cpu=1024, memory=2048, command=["x"])


def test_the_image_declares_every_scratch_volume_writable_by_its_user() -> None:
    """The live Fargate bug: a volume the image does not declare is root-owned 0755 on Fargate."""
    image = read_image(DOCKERFILE_TEXT)
    assert image.uid == 10001
    assert set(image.volumes) == set(SCRATCH.values())
    assert unwritable_volumes(image, TASK) == []
    assert image.volume_state("/tmp") == PathState(0, 0, 0o1777)
    assert image.volume_state("/home/mlwf") == PathState(10001, 10001, 0o755)


def test_without_the_volume_line_each_scratch_path_is_one_line_naming_path_and_uid() -> None:
    assert WITHOUT_VOLUME != DOCKERFILE_TEXT
    assert unwritable_volumes(read_image(WITHOUT_VOLUME), TASK) == [
        "flow-run: /tmp is not writable by uid 10001 on Fargate (the volume is 0:0 0755: VOLUME not declared "
        "in the image)",
        "flow-run: /home/mlwf is not writable by uid 10001 on Fargate (the volume is 0:0 0755: VOLUME not "
        "declared in the image)",
    ]


INSTALL = "RUN install -d -o 10001 -g 10001 -m 0700 /scratch"


@pytest.mark.parametrize(
    ("lines", "state"),
    [
        pytest.param([INSTALL, 'VOLUME ["/scratch"]'], (10001, 10001, 0o700), id="install -d"),
        pytest.param(
            ["RUN mkdir -p /scratch && chown 10001 /scratch", "VOLUME /scratch"], (10001, 0, 0o755), id="chown"
        ),
        pytest.param(["RUN mkdir /scratch && chmod 1777 /scratch", "VOLUME /scratch"], (0, 0, 0o1777), id="chmod"),
        # A change after the VOLUME line is discarded, as Docker discards it.
        pytest.param(['VOLUME ["/scratch"]', "RUN chown 10001:10001 /scratch"], (0, 0, 0o755), id="after VOLUME"),
        pytest.param(["RUN chown 10001:10001 /scratch"], (0, 0, 0o755), id="not declared"),
    ],
)
def test_how_a_dockerfile_sets_a_volumes_owner(lines: list[str], state: tuple[int, int, int]) -> None:
    image = read_image("\n".join(["FROM python:3.11.7-slim-bookworm", *lines, "USER 10001"]))
    assert image.volume_state("/scratch") == PathState(*state)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return prepare(REPO, tmp_path_factory.mktemp("fargate"), REPO / DOCKERFILE, REPO / REQUIREMENTS)


def run_in(sandbox: Sandbox, task_id: str, code: str) -> subprocess.CompletedProcess[str]:
    argv = sandbox.command(task_id, TASK, ["python", "-c", code])
    return subprocess.run(argv, env=sandbox.environment(), capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_task_runs_as_the_image_user_in_its_workdir_from_its_environment(sandbox: Sandbox) -> None:
    result = run_in(
        sandbox,
        "who",
        "import os, sys, tempfile, mlwf; print(os.getuid(), os.getgid(), os.getcwd(), sys.prefix, "
        "os.environ['HOME'], tempfile.mkdtemp(), sorted(os.listdir('.')))",
    )
    assert result.returncode == 0, result.stderr
    uid, gid, cwd, prefix, home, temporary, listing = result.stdout.split(" ", 6)
    assert (uid, gid, cwd, home) == ("10001", "10001", "/opt/mlwf", "/home/mlwf")
    assert prefix == str(sandbox.venv), "the image's environment, not the development one"
    assert temporary.startswith("/tmp/")
    copied = "['environments', 'image', 'pyproject.toml', 'src', 'workflows']"
    assert listing.strip() == copied, "what the COPY lines copy"


@pytest.mark.slow
def test_the_root_filesystem_is_read_only_and_only_the_volumes_are_writable(sandbox: Sandbox) -> None:
    code = (
        "import os\n"
        "for path in ('/opt/mlwf/x', '/etc/x', '/usr/x', '/tmp/x', '/home/mlwf/x'):\n"
        "    try:\n"
        "        open(path, 'w').close(); print(path, 'written')\n"
        "    except OSError as error:\n"
        "        print(path, error.strerror)\n"
    )
    result = run_in(sandbox, "write", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "/opt/mlwf/x Read-only file system",
        "/etc/x Read-only file system",
        "/usr/x Read-only file system",
        "/tmp/x written",
        "/home/mlwf/x written",
    ]


@pytest.mark.slow
def test_without_the_volume_line_the_image_user_cannot_make_a_temporary_folder(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """What every task would hit on its first Fargate run without the fix."""
    broken = Sandbox(read_image(WITHOUT_VOLUME), sandbox.venv, sandbox.workdir_tree, tmp_path / "volumes")
    result = run_in(broken, "broken", "import tempfile; tempfile.mkdtemp()")
    assert result.returncode == 1
    assert "FileNotFoundError: [Errno 2] No usable temporary directory found in ['/tmp'" in result.stderr


@pytest.mark.slow
def test_a_package_missing_from_the_image_is_named_by_the_import_that_failed(sandbox: Sandbox) -> None:
    """moto is a development dependency only: the image does not have it, whatever this process has."""
    import moto  # noqa: F401  (present here)

    result = run_in(sandbox, "imports", "import pandas, distributed, prefect_aws\nimport moto")
    assert result.returncode == 1
    assert import_failures(result.stderr) == ["ModuleNotFoundError: No module named 'moto'"]
