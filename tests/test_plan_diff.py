"""`mlwf plan --base REF` on real git histories: a temporary repository holding this checkout's
files, a base commit, and a change on top (committed or in the working tree)."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_cli import REPO, assert_one_line_error, run

from mlwf.cost.estimate import environment_costs
from mlwf.cost.prices import load_prices
from mlwf.infra.diff import PlanDiff, plan_against
from mlwf.infra.diff_report import markdown, text
from mlwf.infra.plan import plan_environment
from mlwf.settings import load_environment
from mlwf.stacks.programs import ORDER

HOURS = 730
PROGRAM = "infra-test"  # a small Pulumi program inside the temporary repository


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """This checkout's files (tracked and new, not ignored) as the first commit of a new repository."""
    return new_repository(tmp_path / "repo", tmp_path / "repo")


def new_repository(git_root: Path, root: Path) -> Path:
    """This checkout's files in ``root`` (``git_root`` or a folder of it), committed in ``git_root``."""
    files = git(REPO, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    git(git_root, "init", "-q", "-b", "main")
    git(git_root, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    commit(git_root, "base")
    return root


def commit(root: Path, message: str) -> None:
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", message)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def diff_json(root: Path, *args: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """`mlwf plan --base main --json` as a user runs it."""
    result = run("plan", "--base", "main", "--json", *args, cwd=root)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout), result


def diff(root: Path, envs: list[str], stacks: list[str] | None = None, program: str | None = None) -> PlanDiff:
    """The same, in this process (each call plans both sides; the tests keep them few)."""
    return plan_against("main", root, envs, stacks, Path(program) if program else None)


def stack(document: dict[str, Any], env: str, name: str) -> dict[str, Any]:
    return next(s for s in document["stacks"] if s["env"] == env and s["stack"] == name)


def names(entries: list[dict[str, Any]], type_: str) -> set[str]:
    return {e["name"] for e in entries if e["type"] == type_}


def write_program(root: Path, body: str) -> None:
    folder = root / PROGRAM
    folder.mkdir(exist_ok=True)
    (folder / "Pulumi.yaml").write_text(f"name: {PROGRAM}\nruntime: python\n")
    (folder / "__main__.py").write_text("import pulumi\nimport pulumi_aws as aws\n\n" + body)


@pytest.mark.slow
def test_nat_gateways_in_prod_show_as_removed_or_added_with_their_routes_and_the_monthly_difference(
    repo: Path,
) -> None:
    prices = load_prices()
    rate = {
        name: prices[(name, "us-east-1")].usd
        for name in ("nat-gateway-hour", "public-ipv4-hour", "interface-endpoint-az-hour")
    }
    # by hand from the price table: a NAT gateway, its public IPv4 address, 6 interface endpoints in one AZ
    per_az = HOURS * (rate["nat-gateway-hour"] + rate["public-ipv4-hour"] + 6 * rate["interface-endpoint-az-hour"])
    two_azs = ("az_count: 3\n  nat_gateways: 3", "az_count: 2\n  nat_gateways: 2")

    edit(repo / "environments/prod.yaml", *two_azs)  # in the working tree, against main
    document, _ = diff_json(repo, "--env", "prod", "--stack", "network")
    network = stack(document, "prod", "network")
    assert names(network["removed"], "aws:ec2/natGateway:NatGateway") == {"nat-2"}
    assert names(network["removed"], "aws:ec2/eip:Eip") == {"nat-2"}
    assert names(network["removed"], "aws:ec2/routeTable:RouteTable") == {"private-2"}
    assert names(network["removed"], "aws:ec2/routeTableAssociation:RouteTableAssociation") == {
        "private-2",
        "public-2",
    }
    assert not network["added"]
    assert network["monthly_usd_difference"] == pytest.approx(-per_az, abs=0.01)
    (nat,) = [r for r in network["removed"] if r["type"] == "aws:ec2/natGateway:NatGateway"]
    assert nat["monthly_before"] == pytest.approx(HOURS * rate["nat-gateway-hour"])
    assert nat["urn"] == "urn:pulumi:prod::mlwf-network::mlwf:network:Network$aws:ec2/natGateway:NatGateway::nat-2"
    endpoints = names(network["changed"], "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoints == {"ecr-api", "ecr-dkr", "logs", "secretsmanager", "ssm", "sts", "s3"}, "one AZ fewer each"

    commit(repo, "prod: two AZs")  # committed; the working tree goes back to three AZs
    edit(repo / "environments/prod.yaml", *reversed(two_azs))
    result = diff(repo, ["prod"], ["network"])
    network = stack(result.to_json(), "prod", "network")
    assert names(network["added"], "aws:ec2/natGateway:NatGateway") == {"nat-2"}
    assert names(network["added"], "aws:ec2/routeTable:RouteTable") == {"private-2"}
    assert not network["removed"]
    assert network["monthly_usd_difference"] == pytest.approx(per_az, abs=0.01)
    shown = text(result)
    assert f"+ aws:ec2/natGateway:NatGateway nat-2  (+${HOURS * rate['nat-gateway-hour']:.2f}/month)" in shown
    assert f"(+${per_az:,.2f})" in shown


@pytest.mark.slow
def test_a_resource_added_to_a_stack_shows_with_its_cost_and_unchanged_stacks_are_one_line(repo: Path) -> None:
    edit(
        repo / "src/mlwf/stacks/storage.py",
        '    return {\n        "data_bucket"',
        '    aws.kms.Key("extra", enable_key_rotation=True, opts=ctx.opts)\n    return {\n        "data_bucket"',
    )
    result = diff(repo, ["dev"])
    storage = stack(result.to_json(), "dev", "storage")
    (added,) = storage["added"]
    assert (added["type"], added["name"]) == ("aws:kms/key:Key", "extra")
    assert added["monthly_after"] == pytest.approx(load_prices()[("kms-key-month", "us-east-1")].usd)
    assert storage["monthly_usd_difference"] == pytest.approx(added["monthly_after"])
    assert not storage["removed"]
    assert not storage["changed"]

    shown = text(result)
    assert "+ aws:kms/key:Key extra  (+$1.00/month)" in shown
    assert "dev/network: no changes ($" in shown  # image inputs are not touched: the other stacks stand still
    comment = markdown(result)
    # the new key has no key policy of its own: the pack says so
    assert "| dev/storage | 1 | 0 | 0 | +1 (mandatory) | $1.00 | $2.00 | +$1.00 |" in comment
    assert "+ policy [mandatory] kms-key-policy: extra:" in comment
    assert "<details><summary>dev/storage: 1 added, 0 changed, 0 removed" in comment
    assert "Unchanged: dev/network ($" in comment
    assert "the policy pack itself changed" not in comment


@pytest.mark.slow
def test_a_change_that_breaks_a_policy_shows_the_new_violation_and_fails(repo: Path) -> None:
    write_program(repo, 'aws.ec2.SecurityGroup("db", description="database", vpc_id="vpc-1")\n')
    git(repo, "add", "-A")
    commit(repo, "program")
    write_program(
        repo,
        'aws.ec2.SecurityGroup("db", description="database", vpc_id="vpc-1", ingress=[aws.ec2.SecurityGroupIngressArgs('
        'protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/0"])])\n',
    )
    document, result = diff_json(repo, "--env", "dev", "--program", PROGRAM)
    assert result.returncode == 1, "a mandatory violation fails the plan"
    (program,) = document["stacks"]
    assert {v["policy"] for v in program["violations_added"]} >= {"no-ssh-rdp-from-internet"}
    assert all(v["resource"].endswith("::db") for v in program["violations_added"])
    assert not program["violations_removed"]
    change = next(c for c in program["changed"] if c["name"] == "db")
    assert any(ch["path"].startswith("ingress") for ch in change["changes"])


@pytest.mark.slow
def test_a_changed_secret_is_reported_and_never_printed(repo: Path) -> None:
    old, new = f"old-{secrets.token_hex(16)}", f"new-{secrets.token_hex(16)}"
    body = 'aws.ssm.Parameter("token", type="SecureString", value=pulumi.Output.secret("{}"))\n'
    write_program(repo, body.format(old))
    git(repo, "add", "-A")
    commit(repo, "program")
    write_program(repo, body.format(new))
    result = diff(repo, ["dev"], program=PROGRAM)
    rendered = [text(result), markdown(result), json.dumps(result.to_json(), default=str)]
    for output in rendered:
        assert old not in output
        assert new not in output
    assert "    value: [secret] -> [secret]" in rendered[0]
    (program,) = result.to_json()["stacks"]
    (change,) = program["changed"]
    assert [c.__dict__ for c in result.stacks[0].resources[0].changes] == [
        {"path": "value", "old": "[secret]", "new": "[secret]"}
    ]
    assert change["name"] == "token"
    for extra in ([], ["--json"]):  # the plain plan, as text and as data
        plain = run("plan", "--program", PROGRAM, "--env", "dev", *extra, cwd=repo)
        assert new not in plain.stdout + plain.stderr
    assert '"value": "[secret]"' in plain.stdout


@pytest.mark.slow
def test_a_rename_is_a_remove_and_an_add_unless_an_alias_maps_it(repo: Path) -> None:
    write_program(repo, 'aws.sqs.Queue("jobs", sqs_managed_sse_enabled=True)\n')
    git(repo, "add", "-A")
    commit(repo, "program")
    write_program(repo, 'aws.sqs.Queue("work", sqs_managed_sse_enabled=True)\n')
    (program,) = diff_json(repo, "--env", "dev", "--program", PROGRAM)[0]["stacks"]
    assert [r["name"] for r in program["removed"]] == ["jobs"]
    assert [r["name"] for r in program["added"]] == ["work"]

    write_program(
        repo,
        'aws.sqs.Queue("work", sqs_managed_sse_enabled=True, '
        'opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="jobs")]))\n',
    )
    (program,) = diff_json(repo, "--env", "dev", "--program", PROGRAM)[0]["stacks"]
    assert not program["removed"]
    assert not program["added"]
    (renamed,) = program["changed"]
    assert renamed["name"] == "work"
    assert renamed["renamed_from"].endswith("::jobs")


@pytest.mark.slow
def test_a_changed_policy_pack_is_said_and_an_unknown_base_is_one_line(repo: Path) -> None:
    edit(repo / "policies/config/dev.json", "{", "{\n")
    text = run("plan", "--base", "main", "--env", "dev", "--stack", "storage", cwd=repo)
    assert text.returncode == 0, text.stderr
    assert "the policy pack itself changed" in text.stdout
    assert "dev/storage: no changes ($" in text.stdout
    assert_one_line_error(run("plan", "--base", "no-such-branch", cwd=repo), "'no-such-branch' is not a revision")
    assert git(repo, "worktree", "list").count("\n") == 1, "the base's worktree is removed"


@pytest.mark.reliability
def test_base_outside_a_git_repository_is_one_line(tmp_path: Path) -> None:
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    assert_one_line_error(run("plan", "--base", "main", cwd=tmp_path), "not in a git repository")
    assert_one_line_error(run("plan", "--format", "markdown", cwd=tmp_path), "add --base REF")


@pytest.mark.slow
def test_the_platform_may_be_a_folder_of_a_larger_repository(tmp_path: Path) -> None:
    root = new_repository(tmp_path / "monorepo", tmp_path / "monorepo" / "ml-platform")
    edit(root / "environments/dev.yaml", "versioning: false", "versioning: true")
    result = diff(root, ["dev"], ["storage"])
    (storage,) = result.stacks
    (change,) = storage.resources
    assert (change.name, [c.path for c in change.changes]) == ("data", ["versioningConfiguration.status"])
    assert not result.pack_changed


@pytest.mark.slow
def test_the_fixed_cost_budget_is_advisory_in_dev_and_blocks_prod(repo: Path) -> None:
    edit(repo / "environments/dev.yaml", "monthly_budget_usd: 175", "monthly_budget_usd: 50")
    edit(repo / "environments/prod.yaml", "monthly_budget_usd: 400", "monthly_budget_usd: 100")
    prices = load_prices()
    fixed = {
        env: round(sum(c.monthly for c in environment_costs(plan_environment(s, list(ORDER), REPO), s, prices)), 2)
        for env in ("dev", "prod")
        if (s := load_environment(env, REPO / "environments"))
    }
    both = run("plan", "--env", "dev", "--env", "prod", cwd=repo)
    assert (
        f"budget dev: fixed ${fixed['dev']:.2f}/month of a $50.00 budget: OVER by ${fixed['dev'] - 50:.2f} (advisory)"
    ) in both.stdout
    assert both.returncode == 1, "prod blocks"
    assert both.stderr.strip().splitlines()[-1] == "mlwf: error: over the fixed-cost budget in prod", "dev does not"
    diff = run("plan", "--base", "main", "--env", "prod", "--format", "markdown", cwd=repo)
    assert diff.returncode == 1
    assert f"OVER by ${fixed['prod'] - 100:.2f} (mandatory) (was ${fixed['prod']:.2f})" in diff.stdout
