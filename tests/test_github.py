"""The GitHub Actions workflows, checked offline: schema, actionlint, and the promotion graph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlwf.infra.stacks import ORDER, STACKS

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as True
    return document


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflows_match_the_github_schema(path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run(
        [str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_run_the_nox_sessions_and_the_plan() -> None:
    jobs = load("pull-request.yml")["jobs"]
    runs = [step.get("run", "") for job in jobs.values() for step in job["steps"]]
    assert any('"$(command -v uv)" run --locked nox -s lint typecheck tests' in r for r in runs)
    assert any('uv run mlwf plan --base "origin/${GITHUB_BASE_REF}" --format markdown' in r for r in runs)
    assert any("--body-file comment.md" in r for r in runs), "the comment is the --base diff, not the full plan"
    artifacts = [s for job in jobs.values() for s in job["steps"] if s.get("uses", "").startswith("actions/upload")]
    assert artifacts, "the full plan is an artifact"
    assert "plan.json" in artifacts[0]["with"]["path"]
    assert any("mlwf affected --base" in r for r in runs)
    assert "AWS_PREVIEW_ROLE_ARN" in jobs["preview"]["if"], "real previews only where AWS access is configured"
    assert any("--mode preview" in r for r in runs)


def test_environments_are_promoted_in_order_with_one_image() -> None:
    jobs = load("main.yml")["jobs"]
    assert jobs["build-image"]["needs"] == "checks"
    previous = "build-image"
    for env in ("dev", "staging", "prod"):
        job = jobs[f"deploy-{env}"]
        needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
        assert previous in needs, f"{env} must wait for {previous}"
        assert job["uses"] == "./.github/workflows/deploy-environment.yml"
        assert job["with"]["environment"] == env
        assert job["with"]["image_tag"] == "${{ needs.build-image.outputs.tag }}", "the same image, never rebuilt"
        previous = f"deploy-{env}"
    builds = [
        name for name, job in jobs.items() for step in job.get("steps", []) if "docker build" in step.get("run", "")
    ]
    assert builds == ["build-image"]


def test_each_environment_deploys_stacks_then_flows_then_smokes() -> None:
    document = load("deploy-environment.yml")
    (job,) = document["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}", (
        "GitHub environments gate each deployment (prod: reviewers)"
    )
    runs = [step["run"] for step in job["steps"] if "run" in step and "mlwf" in step["run"]]
    assert [r.split()[3:5] for r in runs] == [["deploy", "--env"], ["flows", "deploy"], ["flows", "smoke"]]


def test_the_stack_order_follows_the_dependency_graph() -> None:
    for index, name in enumerate(ORDER):
        assert set(STACKS[name].upstream) <= set(ORDER[:index]), f"{name} deployed before its upstream"


def test_drift_runs_nightly_for_every_environment() -> None:
    document = load("drift.yml")
    assert document["on"]["schedule"]
    job = document["jobs"]["drift"]
    assert job["strategy"]["matrix"]["env"] == "${{ fromJSON(needs.environments.outputs.list) }}", (
        "every file of environments/, from `mlwf env list`"
    )
    lister = document["jobs"]["environments"]
    assert any("mlwf env list" in step.get("run", "") for step in lister["steps"])
    assert any("--mode drift" in step.get("run", "") for step in job["steps"])
