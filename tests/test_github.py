"""The GitHub Actions workflows, checked offline: schema, actionlint, zizmor, the promotion graph,
and what no pull request can reach: secrets outside GitHub environments, OIDC tokens where no
role is assumed, actions by tag, template expansions in shell."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlwf.stacks.programs import ORDER, STACKS

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.yml"))
BIN = Path(sys.executable).parent
DEPLOY_ACTION = "$/.github/actions/deploy-environment"


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as True
    return document


def action(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / ".github" / "actions" / name / "action.yml").read_text()))


def every_job() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in WORKFLOWS for name, job in load(path.name)["jobs"].items()]


def steps_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    """A job's steps, with the steps of the repository's own composite actions it uses."""
    steps = []
    for step in job.get("steps", []):
        steps.append(step)
        if step.get("uses", "").startswith("$/.github/actions/"):
            steps += steps_of({"steps": action(step["uses"].rsplit("/", 1)[-1])["runs"]["steps"]})
    return steps


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
    assert any('uv run --locked mlwf plan --base "origin/${GITHUB_BASE_REF}" --format markdown' in r for r in runs)
    assert any("--body-file comment.md" in r for r in runs), "the comment is the --base diff, not the full plan"
    artifacts = [s for job in jobs.values() for s in job["steps"] if s.get("uses", "").startswith("actions/upload")]
    assert artifacts, "the full plan is an artifact"
    assert "plan.json" in artifacts[0]["with"]["path"]
    assert any("mlwf affected --base" in r for r in runs)
    assert "vars.DEV_PREVIEW == 'true'" in jobs["preview-dev"]["if"], "real previews only where AWS access is set up"
    assert any("--mode preview" in r for r in runs)


def test_environments_are_promoted_in_order_with_one_image() -> None:
    jobs = load("main.yml")["jobs"]
    assert jobs["build-image"]["needs"] == "checks"
    previous = "build-image"
    for env in ("dev", "staging", "prod"):
        job = jobs[f"deploy-{env}"]
        needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
        assert previous in needs, f"{env} must wait for {previous}"
        assert job["environment"] == env, "GitHub environments gate each deployment (prod: reviewers)"
        (deploy,) = [step for step in job["steps"] if step.get("uses") == DEPLOY_ACTION]
        assert deploy["with"]["environment"] == env
        assert deploy["with"]["image-tag"] == "${{ needs.build-image.outputs.tag }}", "the same image, never rebuilt"
        assert deploy["with"]["image-digest"] == "${{ needs.build-image.outputs.digest }}", "deployed by digest"
        previous = f"deploy-{env}"
    builds = [
        name for name, job in jobs.items() for step in job.get("steps", []) if "docker build" in step.get("run", "")
    ]
    assert builds == ["build-image"]


def test_each_environment_deploys_stacks_then_flows_then_smokes() -> None:
    steps = action("deploy-environment")["runs"]["steps"]
    runs = [step["run"] for step in steps if "run" in step and "mlwf" in step["run"]]
    assert '--image-digest "$IMAGE_DIGEST"' in runs[0]
    assert [r.split("mlwf ", 1)[1].split()[:2] for r in runs] == [
        ["deploy", "--env"],
        ["flows", "deploy"],
        ["flows", "smoke"],
    ]


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


def test_zizmor_finds_nothing_offline() -> None:
    """The default persona, no inline ignores."""
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--quiet", "--format", "plain", ".github"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "zizmor: ignore" not in "".join(p.read_text() for p in [*WORKFLOWS, *ACTIONS])


def test_hadolint_passes_the_dockerfile_and_catches_a_floating_base(tmp_path: Path) -> None:
    clean = subprocess.run([str(BIN / "hadolint"), "image/Dockerfile"], capture_output=True, text=True, cwd=REPO)
    assert clean.returncode == 0, clean.stdout
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    found = subprocess.run([str(BIN / "hadolint"), str(bad)], capture_output=True, text=True)
    assert found.returncode != 0
    assert "DL3007" in found.stdout


DEPENDABOT_ONLY = "github.event.pull_request.user.login == 'dependabot[bot]'"
DEPENDABOT_SECRETS = {"LOCK_APP_CLIENT_ID", "LOCK_APP_PRIVATE_KEY"}  # Dependabot secrets: only its runs read them


def test_no_job_outside_a_github_environment_references_a_secret() -> None:
    """Jobs without an environment (every pull-request job but dev's preview, the checks, the
    build) can read no secret but the job's own GITHUB_TOKEN, except Dependabot's own job, which
    reads the lock App's Dependabot secrets; nothing inherits secrets."""
    for workflow, name, job in every_job():
        text = yaml.safe_dump(job)
        assert job.get("secrets") != "inherit", f"{workflow}: {name}"
        if "environment" not in job:
            used = set(re.findall(r"secrets\.(\w+)", text))
            allowed = {"GITHUB_TOKEN"} | (DEPENDABOT_SECRETS if DEPENDABOT_ONLY in job.get("if", "") else set())
            assert used <= allowed, f"{workflow}: {name} reads {used} outside an environment"


def test_dependabot_updates_the_lock_and_its_job_exports_the_requirements_with_it() -> None:
    from mlwf.image import EXPORT_COMMAND, REQUIREMENTS

    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "uv", "docker"}
    job = load("dependabot-lock.yml")["jobs"]["requirements"]
    assert job["if"].startswith(DEPENDABOT_ONLY)
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert job["permissions"] == {"contents": "read"}  # writes only through the App's token
    runs = [s.get("run", "") for s in job["steps"]]
    export = " ".join([*EXPORT_COMMAND, "-o", str(REQUIREMENTS), "-q"])
    assert export in runs, "the same export as nox -s export and pre-commit"
    assert not any("uv run" in r or "uv sync" in r for r in runs), "no package's code runs next to the token"


def test_pull_requests_hold_no_staging_or_prod_credential() -> None:
    """A pull request's code runs with dev's read-only environment at most."""
    jobs = load("pull-request.yml")["jobs"]
    environments = {name: job["environment"] for name, job in jobs.items() if "environment" in job}
    assert environments == {"preview-dev": "dev-read"}
    assert "matrix" not in yaml.safe_dump(jobs["preview-dev"])
    assert "--env dev --mode preview" in jobs["preview-dev"]["steps"][-1]["run"]


def test_oidc_tokens_only_where_a_role_is_assumed() -> None:
    for path in WORKFLOWS:
        assert load(path.name)["permissions"] == {}, f"{path.name}: each job names its own permissions"
    for workflow, name, job in every_job():
        assumes = any(s.get("uses", "").startswith("aws-actions/configure-aws-credentials@") for s in steps_of(job))
        has_token = job.get("permissions", {}).get("id-token") == "write"
        assert has_token == assumes, f"{workflow}: {name}"
    checks = [job for _, name, job in every_job() if name == "checks"]
    assert checks
    assert all(job["permissions"] == {"contents": "read"} for job in checks)


def test_every_external_action_is_pinned_to_a_commit_with_its_version() -> None:
    for path in [*WORKFLOWS, *ACTIONS]:
        for line in path.read_text().splitlines():
            found = re.search(r"uses: (\S+)(.*)", line)
            if not found:
                continue
            reference, rest = found.groups()
            if reference.startswith("$/"):
                assert (REPO / reference[2:] / "action.yml").is_file(), reference
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", reference), f"{path.name}: {reference}"
            assert re.fullmatch(r" # v\d+\.\d+\.\d+", rest), f"{path.name}: {reference} names no version"


def test_shell_steps_take_expressions_through_the_environment_and_run_the_lock() -> None:
    """No ${{ }} inside a `run:` (template injection); every `uv run` is --locked; the Pulumi
    CLI is the version of the locked SDK."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    sdk = next(p["version"] for p in lock["package"] if p["name"] == "pulumi")
    for workflow, name, job in every_job():
        for step in steps_of(job):
            run = step.get("run", "")
            assert "${{" not in run, f"{workflow}: {name}: {run}"
            assert all(call.startswith("uv run --locked") for call in re.findall(r"uv run[^\n]*", run)), run
            if step.get("uses", "").startswith("pulumi/actions@"):
                assert step["with"]["pulumi-version"] == sdk


def test_an_existing_tag_is_promoted_only_at_the_digest_this_pipeline_recorded() -> None:
    (push,) = [s for s in load("main.yml")["jobs"]["build-image"]["steps"] if s.get("id") == "push"]
    exists, pushed = push["run"].split("else")
    assert 'mlwf image verify "$TAG" "$digest"' in exists
    assert "docker push" not in exists
    assert pushed.index("docker push") < pushed.index('mlwf image record "$TAG" "$digest"')
    assert 'echo "digest=$digest" >> "$GITHUB_OUTPUT"' in push["run"]


def test_a_rollback_runs_inside_the_chosen_environment_then_smokes() -> None:
    """Run by hand, in the environment's GitHub environment (its deploy role; prod's reviewers),
    never at the same time as a deploy of that environment; a smoke run after, as after a deploy."""
    from mlwf.settings import environment_names

    document = load("rollback.yml")
    choice = document["on"]["workflow_dispatch"]["inputs"]["environment"]
    assert choice["options"] == environment_names(REPO / "environments")
    job = document["jobs"]["rollback"]
    assert job["environment"] == "${{ inputs.environment }}"
    deploys = load("main.yml")["jobs"]
    assert document["concurrency"]["group"] == "deploy-${{ inputs.environment }}"
    assert {deploys[f"deploy-{env}"]["concurrency"]["group"] for env in choice["options"]} == {
        f"deploy-{env}" for env in choice["options"]
    }
    runs = [step["run"] for step in job["steps"] if "mlwf" in step.get("run", "")]
    assert [r.split("mlwf ", 1)[1].split()[:2] for r in runs] == [["rollback", '"${args[@]}"'], ["flows", "smoke"]]
    assert 'args+=(--to "$DIGEST")' in runs[0]


def test_jobs_that_load_flows_install_the_workloads_groups() -> None:
    """`mlwf flows deploy|smoke` and `mlwf rollback` import the workloads' flows (their own
    libraries are dependency groups, not the platform's); the image's requirements include them."""
    loading = []
    for workflow, name, job in every_job():
        for step in steps_of(job):
            for call in re.findall(r"uv run[^\n]*", step.get("run", "")):
                if re.search(r"mlwf (flows|rollback)", call):
                    loading.append(call)
                    assert "--group workloads" in call, f"{workflow}: {name}: {call}"
    assert len(loading) >= 4
    from mlwf.image import EXPORT_COMMAND

    assert "workloads" in EXPORT_COMMAND
