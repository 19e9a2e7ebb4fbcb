"""`mlwf affected` on real git histories made here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlwf.affected import classify
from mlwf.stacks.programs import ORDER

MLWF = str(Path(sys.executable).parent / "mlwf")
REPO = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for path in (
        "platform/network/__main__.py",
        "platform/compute/__main__.py",
        "workflows/storm/flows.py",
        "workflows/storm/model.py",
        "src/mlwf/stacks/compute.py",
        "README.md",
        "uv.lock",
        "image/requirements.txt",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("v1\n")
    for real in ("image/Dockerfile", ".dockerignore"):  # what the image is built from, as in this repository
        shutil.copy(REPO / real, tmp_path / real)
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    git(tmp_path, "checkout", "-q", "-b", "feature")
    return tmp_path


def affected(repo: Path, base: str = "main") -> dict[str, object]:
    result = subprocess.run([MLWF, "affected", "--base", base], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def change(repo: Path, *paths: str, commit: bool = True) -> None:
    for path in paths:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        with (repo / path).open("a") as handle:
            handle.write("# changed\n")
    if commit:
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "change")


def test_a_network_change_previews_network_and_everything_downstream(repo: Path) -> None:
    change(repo, "platform/network/__main__.py")
    assert affected(repo) == {
        "stacks": ["network", "compute", "prefect-agent"],
        "environments": ["dev", "staging", "prod"],
        "flows": False,
        "image": False,
        "policies": False,
    }


def test_a_prod_settings_change_previews_prod_and_rebuilds_the_image(repo: Path) -> None:
    """The settings are in the image (flows read them), so the new image is promoted to every
    environment; the prod file itself changes all of prod's stacks."""
    change(repo, "environments/prod.yaml")
    result = affected(repo)
    assert result["stacks"] == ["network", "storage", "compute", "prefect-agent"]
    assert (result["image"], result["flows"]) == (True, True)
    assert result["environments"] == ["dev", "staging", "prod"]


def test_a_flow_change_redeploys_flows_and_rebuilds_the_image(repo: Path) -> None:
    """A new image means new task definitions in the stacks that run it."""
    change(repo, "workflows/storm/flows.py")
    result = affected(repo)
    assert (result["stacks"], result["flows"], result["image"]) == (["compute", "prefect-agent"], True, True)


def test_a_requirements_change_means_a_new_image_for_every_stack_that_runs_it(repo: Path) -> None:
    change(repo, "image/requirements.txt")
    assert affected(repo)["stacks"] == ["compute", "prefect-agent"]
    assert affected(repo)["image"] is True


def test_infrastructure_code_is_not_in_the_image(repo: Path) -> None:
    change(repo, "src/mlwf/stacks/compute.py")
    result = affected(repo)
    assert (result["stacks"], result["image"], result["flows"]) == (["compute", "prefect-agent"], False, False)


def test_the_tooling_that_plans_the_stacks_replans_every_stack_and_builds_no_image(repo: Path) -> None:
    change(repo, "src/mlwf/infra/plan.py")
    result = affected(repo)
    assert (result["stacks"], result["image"], result["flows"]) == (list(ORDER), False, False)


def test_docs_touch_nothing_and_uncommitted_changes_count(repo: Path) -> None:
    change(repo, "README.md")
    assert affected(repo) == {"stacks": [], "environments": [], "flows": False, "image": False, "policies": False}
    change(repo, "workflows/storm/model.py", commit=False)
    assert affected(repo)["flows"] is True


def test_only_changes_since_the_merge_base_count(repo: Path) -> None:
    change(repo, "README.md")
    git(repo, "checkout", "-q", "main")
    change(repo, "platform/compute/__main__.py")  # main moves on; the feature branch did not touch it
    git(repo, "checkout", "-q", "feature")
    assert affected(repo)["stacks"] == []


def test_policy_changes_recheck_every_stack() -> None:
    result = classify(["policies/config/prod.json"], REPO).as_dict()
    assert result["policies"] is True
    assert result["stacks"] == ["network", "storage", "compute", "prefect-agent"]


@pytest.mark.reliability
def test_an_unknown_base_is_a_one_line_error(repo: Path) -> None:
    result = subprocess.run([MLWF, "affected", "--base", "no-such-branch"], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no-such-branch" in result.stderr
