"""The template (copier.yml, docs/template.md): this repository rendered back from its own answers
(the round trip that keeps the template and the working project one thing); a platform for a
fictitious company, checked with its own commands and its adopter suite, in this environment; an
upgrade across two template releases that keeps the adopter's settings and edits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OWN_ANSWERS = REPO / "tests" / "template_answers.yml"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "mlwf tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "mlwf tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
FJORD: dict[str, Any] = {
    "company": "Fjord Analytics",
    "prefix": "fjord",
    "region": "eu-west-1",
    "pulumi_organization": "fjord-analytics",
    "dev_account_id": "404040404040",
    "staging_account_id": "505050505050",
    "prod_account_id": "606060606060",
    "dev_vpc_cidr": "10.40.0.0/16",
    "staging_vpc_cidr": "10.50.0.0/16",
    "prod_vpc_cidr": "10.60.0.0/16",
    **{
        f"{env}_prefect_api_url": f"https://api.prefect.cloud/api/accounts/a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d/workspaces/f0e1d2c3-b4a5-4968-8776-65544332211{n}"
        for n, env in enumerate(("dev", "staging", "prod"))
    },
    "github_owner": "fjord-analytics",
    "github_repository": "fjord-ml",
    "prod_reviewer_teams": [7654321],
    "prod_reviewer_users": [],
    "cost_tags": {"CostCenter": "analytics", "Owner": "fjord-data", "Project": "fjord-ml"},
    "include_examples": False,
}
# This repository's example values: none may reach a platform generated with other answers.
EXAMPLE_VALUES = (
    "111111111111",
    "222222222222",
    "333333333333",
    "00000000-0000-0000-0000-00000000000",
    "10.10.0.0/16",
    "10.20.0.0/16",
    "10.30.0.0/16",
    "example-org",
    "[1234567]",
    "data-ml-team",
    "ml-platform",
    "mlwf-dev",
    "mlwf-staging",
    "mlwf-prod",
    "mlwf/flows",
)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def copier(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "copier"), *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def release(template: Path, tag: str) -> None:
    git(template, "add", "-A")
    git(template, "commit", "-q", "--allow-empty", "-m", f"release {tag}")
    git(template, "tag", tag)


def working_tree_files(root: Path) -> list[str]:
    """The files of this working tree as a clean clone plus uncommitted work would have them."""
    listed = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return sorted(f for f in listed if f and (root / f).is_file() and not (root / f).is_symlink())


def snapshot(destination: Path) -> Path:
    for name in working_tree_files(REPO):
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, destination / name)
    git(destination, "init", "-q", "-b", "main")
    return destination


def version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def generate(template: Path, answers: dict[str, Any], destination: Path, *extra: str) -> None:
    data = destination.parent / f"{destination.name}-answers.yml"
    data.write_text(yaml.safe_dump(answers))
    result = copier(
        destination.parent,
        "copy",
        "--defaults",
        "--quiet",
        "--data-file",
        str(data),
        *extra,
        str(template),
        str(destination),
    )
    assert result.returncode == 0, result.stderr[-3000:]


def in_platform(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A command of this environment run inside a generated platform: its own `mlwf` package and
    workloads first on the path (the same locked libraries, nothing installed again)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    return subprocess.run(list(args), cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree as a template release, tagged as copier reads releases (PEP 440)."""
    root = snapshot(tmp_path_factory.mktemp("template") / "ml-workflows")
    release(root, f"v{version()}")
    return root


@pytest.fixture(scope="module")
def fjord(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    destination = tmp_path_factory.mktemp("adopter") / "fjord-ml"
    generate(template, FJORD, destination)
    return destination


@pytest.mark.slow
def test_the_template_renders_this_repository_back_from_its_own_answers(template: Path, tmp_path: Path) -> None:
    generate(template, yaml.safe_load(OWN_ANSWERS.read_text()), tmp_path / "out")
    expected = {name for name in working_tree_files(REPO) if name != "copier.yml" and not name.endswith(".jinja")}
    rendered = {str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert rendered - expected == set(), "rendered, not in the repository"
    assert expected - rendered == set(), "in the repository, not rendered"
    differing = [
        name for name in sorted(expected) if (tmp_path / "out" / name).read_bytes() != (REPO / name).read_bytes()
    ]
    assert differing == [], "the template renders these differently from the working project: edit their .jinja"


@pytest.mark.slow
def test_a_generated_platform_carries_its_answers_and_none_of_the_examples(fjord: Path) -> None:
    assert sorted(p.name for p in (fjord / "workflows").iterdir() if p.is_dir()) == ["starter"]
    assert sorted(p.name for p in (fjord / "tests").iterdir()) == ["adopted"]
    assert not (fjord / "docs" / "storm.md").exists()
    dev = yaml.safe_load((fjord / "environments" / "dev.yaml").read_text())
    assert (dev["region"], dev["account_id"], dev["name_prefix"]) == ("eu-west-1", "404040404040", "fjord-dev")
    assert dev["network"]["vpc_cidr"] == "10.40.0.0/16"
    assert dev["cost_tags"] == FJORD["cost_tags"]
    assert dev["prefect"] == {"work_pool": "fjord-dev-ecs", "api_url": FJORD["dev_prefect_api_url"]}
    assert dev["image"]["repository"] == "fjord/flows"
    delivery = yaml.safe_load((fjord / "delivery.yaml").read_text())
    assert delivery["github"]["owner"] == "fjord-analytics"
    assert delivery["github"]["repository"] == "fjord-ml"
    assert delivery["github"]["prod_reviewers"]["teams"] == [7654321]
    readme = (fjord / "README.md").read_text()
    assert readme.startswith("# fjord-ml\n")
    assert "storm" not in readme.lower()
    assert "Fjord Analytics's platform" in readme
    carried = [
        f"{p.relative_to(fjord)}: {value}"
        for p in sorted(fjord.rglob("*"))
        if p.is_file() and p.name != "uv.lock"
        for value in EXAMPLE_VALUES
        if value in p.read_text(errors="replace")
    ]
    assert carried == []


@pytest.mark.slow
def test_a_generated_platform_checks_plans_and_passes_its_adopter_suite(fjord: Path) -> None:
    where = in_platform(
        fjord, sys.executable, "-c", "import mlwf, workflows; print(mlwf.__file__, *workflows.__path__)"
    )
    assert where.stdout.split() == [str(fjord / "src/mlwf/__init__.py"), str(fjord / "workflows")]
    check = in_platform(fjord, str(BIN / "mlwf"), "env", "check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines() == [
        f"ok  environments/{env}.yaml ({env}, eu-west-1, {azs} AZs)"
        for env, azs in (("dev", 2), ("prod", 3), ("staging", 2))
    ]
    plan = in_platform(fjord, str(BIN / "mlwf"), "plan")
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert ", 0 policy violations" in plan.stdout
    # No price for eu-west-1 in the shipped table: the budgets say so rather than "within" at $0.
    assert "budget dev: the $175.00 budget is not checked" in plan.stdout
    suite = in_platform(fjord, sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "tests")
    assert suite.returncode == 0, suite.stdout[-4000:]
    assert "5 passed" in suite.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"staging_account_id": "40404040404"}, "staging_account_id must be 12 digits"),
        ({"prod_account_id": "404040404040"}, "prod_account_id must differ from dev's and staging's"),
        ({"prod_vpc_cidr": "10.300.0.0/16"}, "prod_vpc_cidr must be a 10.x.0.0/16 (x from 0 to 255)"),
        ({"staging_vpc_cidr": "10.40.0.0/16"}, "staging_vpc_cidr must differ from dev's"),
        ({"region": "eu-west"}, "region eu-west is not an AWS region name (like eu-west-1)"),
        ({"prod_reviewer_teams": []}, "prod needs a reviewer: give prod_reviewer_teams or prod_reviewer_users"),
        ({"prod_reviewer_teams": ["platform"]}, "prod_reviewer_teams must be numeric IDs, not platform"),
        ({"cost_tags": {"CostCenter": 4711, "Owner": "a", "Project": "b"}}, "cost_tags: CostCenter needs a tag name"),
        ({"cost_tags": {"Owner": "a"}}, "cost_tags lacks CostCenter Project"),
    ],
)
def test_a_bad_answer_is_named_and_generates_nothing(
    template: Path, tmp_path: Path, answers: dict[str, Any], message: str
) -> None:
    data = tmp_path / "answers.yml"
    data.write_text(yaml.safe_dump({**FJORD, **answers}))
    result = copier(
        tmp_path, "copy", "--defaults", "--quiet", "--data-file", str(data), str(template), str(tmp_path / "out")
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_generated_platform_with_the_examples_carries_them_and_their_readme(template: Path, tmp_path: Path) -> None:
    generate(template, {**FJORD, "include_examples": True, "prod_reviewer_users": [9876543]}, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "workflows").iterdir() if p.is_dir()) == ["search", "starter", "storm"]
    assert sorted(p.name for p in (out / "tests").iterdir()) == ["adopted"], "the adopter suite only"
    readme = (out / "README.md").read_text()
    assert "storm-damage pipeline" in readme
    assert "[docs/storm.md](docs/storm.md)" in readme
    assert (out / "docs" / "storm.md").is_file()
    assert "tests/adopted/" in readme
    assert "insecure_program" not in readme, "the platform's own suite is not there"
    reviewers = yaml.safe_load((out / "delivery.yaml").read_text())["github"]["prod_reviewers"]
    assert reviewers == {"teams": [7654321], "users": [9876543]}


@pytest.fixture
def adopted(template: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A second template release on top of the first, and a platform adopted from the first."""
    upstream = tmp_path / "upstream"
    shutil.copytree(template, upstream, symlinks=True)
    platform = tmp_path / "fjord-ml"
    generate(upstream, FJORD, platform, "--vcs-ref", f"v{version()}")
    git(platform, "init", "-q", "-b", "main")
    git(platform, "add", "-A")
    git(platform, "commit", "-q", "-m", "our platform")
    return upstream, platform


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.slow
def test_an_upgrade_brings_the_release_and_keeps_the_adopters_settings_and_edits(
    adopted: tuple[Path, Path],
) -> None:
    upstream, platform = adopted
    # The adopter's own changes: a setting, a policy level, a workload, a price row, a doc line.
    edit(platform / "environments/dev.yaml", "  n_workers: 2\n", "  n_workers: 3\n")
    edit(
        platform / "policies/config/dev.json",
        '"s3-versioning": {"enforcementLevel": "advisory"',
        '"s3-versioning": {"enforcementLevel": "mandatory"',
    )
    shutil.copytree(platform / "workflows/starter", platform / "workflows/churn")
    edit(platform / "workflows/churn/workload.py", 'name="starter"', 'name="churn"')
    edit(platform / "workflows/churn/flows.py", '@flow(name="starter")', '@flow(name="churn")')
    with (platform / "src/mlwf/cost/prices.csv").open("a") as table:
        table.write("budget-day,eu-west-1,budget-day,0.02,,,entered by us,2026-12-07\n")
    edit(platform / "docs/operations.md", "# Operations: alerts, and what to do about each", "# Operations at Fjord")
    git(platform, "add", "-A")
    git(platform, "commit", "-q", "-m", "our changes")
    # The next release changes a platform file, a rendered file, the price table and that doc line.
    later = f"v{version().rpartition('.')[0]}.{int(version().rpartition('.')[2]) + 1}"
    edit(upstream / "CHANGELOG.md", "## Unreleased\n", f"## Unreleased\n\n- {later}: a platform change.\n")
    edit(upstream / "environments/dev.yaml.jinja", "# The dev environment:", "# The dev environment (upgraded):")
    edit(
        upstream / "src/mlwf/cost/prices.csv",
        "nat-gateway-hour,us-east-1,hour,0.045,",
        "nat-gateway-hour,us-east-1,hour,0.046,",
    )
    edit(
        upstream / "docs/operations.md",
        "# Operations: alerts, and what to do about each",
        "# Operations: alerts and actions",
    )
    release(upstream, later)

    result = in_platform(platform, str(BIN / "mlwf"), "upgrade")
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == f"upgraded to {later}"

    answers = yaml.safe_load((platform / ".copier-answers.yml").read_text())
    assert answers["_commit"] == later
    assert answers["prefix"] == "fjord"
    assert f"- {later}: a platform change." in (platform / "CHANGELOG.md").read_text()
    dev = (platform / "environments/dev.yaml").read_text()
    assert dev.startswith("# The dev environment (upgraded):"), "the release's change to a rendered file"
    assert "  n_workers: 3\n" in dev, "the adopter's setting"
    assert 'account_id: "404040404040"' in dev
    assert '"s3-versioning": {"enforcementLevel": "mandatory"' in (platform / "policies/config/dev.json").read_text()
    assert (platform / "workflows/churn/workload.py").read_text().count('name="churn"') == 1
    prices = (platform / "src/mlwf/cost/prices.csv").read_text()
    assert "nat-gateway-hour,us-east-1,hour,0.046," in prices, "the release's price"
    assert "budget-day,eu-west-1,budget-day,0.02,,,entered by us,2026-12-07\n" in prices, "the adopter's row"
    # Both changed the same line: reported as a conflict, with both sides in the file.
    operations = (platform / "docs/operations.md").read_text()
    assert "<<<<<<<" in operations
    assert "# Operations at Fjord" in operations
    assert "# Operations: alerts and actions" in operations
    assert [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("conflict")] == [
        "conflict  docs/operations.md"
    ], "the one file where both changed, listed"
    again = in_platform(platform, str(BIN / "mlwf"), "upgrade")
    assert again.returncode == 2
    assert (
        again.stderr
        == f"mlwf: error: {platform}: commit or stash your changes first (an upgrade merges into a clean tree)\n"
    )


def test_upgrade_outside_a_generated_platform_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    result = subprocess.run([str(BIN / "mlwf"), "upgrade"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr == (
        f"mlwf: error: no .copier-answers.yml in {tmp_path}: upgrade works in a platform made with `copier copy`\n"
    )


def test_the_version_is_a_release_with_its_changelog_section() -> None:
    """Copier reads releases from PEP 440 tags `v<version>`: the version is one, and said."""
    from packaging.version import Version

    released = Version(version())
    assert str(released) == version()
    assert not released.is_prerelease
    assert not released.is_devrelease
    assert f"\n## {version()} (" in (REPO / "CHANGELOG.md").read_text()


@pytest.mark.slow
@pytest.mark.rehearsal
def test_a_generated_platform_passes_its_rehearsal_in_its_region(fjord: Path) -> None:
    """`mlwf rehearse` of the fictitious company's dev: its accounts, names and region (S3's
    location constraint, the region in every ARN) on the emulated AWS, its starter run on it."""
    result = in_platform(fjord, str(BIN / "mlwf"), "rehearse", "--env", "dev", timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "ok    run starter/dev: COMPLETED" in result.stdout
    assert "arn:aws:sns:eu-west-1:404040404040:fjord-dev-alerts" in result.stdout
    assert "rehearsal of dev passed" in result.stdout
