"""Delivery, checked offline: the bootstrap stack (roles GitHub's jobs assume, the boundary, the
image's replication), the github stack (environments, protections, the variables the workflows
read), `delivery.yaml`'s errors, and `mlwf deploy` of the delivery stacks. The boundary against
what the environments' roles are granted is in test_aws_path.py (it shares that file's plans)."""

from __future__ import annotations

import json
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlwf.cli import main
from mlwf.delivery import Delivery, load_delivery, oidc_provider_arn
from mlwf.errors import UserError
from mlwf.infra.plan import plan_delivery
from mlwf.planned import PlannedResource, StackPlan
from mlwf.settings import load_environments
from mlwf.stacks.github_repo import environment_variables, main_only, repository_variables

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"


@pytest.fixture(scope="module")
def delivery() -> Delivery:
    return load_delivery(REPO)


@pytest.fixture(scope="module")
def plans() -> dict[tuple[str, str], StackPlan]:
    found = plan_delivery(["bootstrap", "github"], load_environments(REPO / "environments"), REPO)
    return {(p.stack, p.env): p for p in found}


def of_type(plan: StackPlan, suffix: str) -> list[PlannedResource]:
    return [r for r in plan.resources if r.type.endswith(suffix)]


def trust(role: PlannedResource) -> dict[str, Any]:
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    return dict(statement)


def test_one_bootstrap_stack_per_account_and_one_github_stack(
    plans: dict[tuple[str, str], StackPlan], delivery: Delivery
) -> None:
    assert set(plans) == {("bootstrap", a) for a in delivery.accounts()} | {("github", "repository")}


def test_each_role_trusts_exactly_its_github_environment(
    plans: dict[tuple[str, str], StackPlan], delivery: Delivery
) -> None:
    owner = delivery.settings.github.full_name
    expected: dict[str, str] = {"mlwf-github-image": f"repo:{owner}:environment:image"}
    for env in delivery.environments:
        expected[f"mlwf-github-deploy-{env.name}"] = f"repo:{owner}:environment:{env.name}"
        expected[f"mlwf-github-preview-{env.name}"] = f"repo:{owner}:environment:{env.name}-read"
    found = {}
    for (stack, account), plan in plans.items():
        if stack != "bootstrap":
            continue
        for role in of_type(plan, "iam/role:Role"):
            statement = trust(role)
            assert statement["Principal"] == {"Federated": oidc_provider_arn(account)}
            assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
            assert list(statement["Condition"]) == ["StringEquals"]  # never StringLike: no wildcard subject
            condition = statement["Condition"]["StringEquals"]
            assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
            found[role.inputs["name"]] = condition["token.actions.githubusercontent.com:sub"]
            assert role.arn.split(":")[4] == account
    assert found == expected


def test_the_image_is_replicated_to_every_other_environments_registry(
    plans: dict[tuple[str, str], StackPlan], delivery: Delivery
) -> None:
    home = delivery.image_home
    (replication,) = of_type(
        plans[("bootstrap", home.account_id)], "ecr/replicationConfiguration:ReplicationConfiguration"
    )
    (rule,) = replication.inputs["replicationConfiguration"]["rules"]
    destinations = {(d["registryId"], d["region"]) for d in rule["destinations"]}
    assert destinations == {(e.account_id, e.region) for e in delivery.environments if e.name != home.name}
    assert rule["repositoryFilters"] == [{"filter": delivery.repository, "filterType": "PREFIX_MATCH"}]
    for env in delivery.environments:
        if env.account_id == home.account_id:
            continue
        (policy,) = of_type(plans[("bootstrap", env.account_id)], "ecr/registryPolicy:RegistryPolicy")
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{home.account_id}:root"}
        assert statement["Resource"] == [f"arn:aws:ecr:{env.region}:{env.account_id}:repository/{delivery.repository}"]


def test_deploy_roles_cannot_push_images_read_the_api_key_or_shed_the_boundary(
    plans: dict[tuple[str, str], StackPlan], delivery: Delivery
) -> None:
    for env in delivery.environments:
        plan = plans[("bootstrap", env.account_id)]
        (policy,) = [p for p in of_type(plan, "iam/rolePolicy:RolePolicy") if p.name == f"{env.name}-deploy"]
        statements = json.loads(policy.inputs["policy"])["Statement"]
        denied = {a for s in statements if s["Effect"] == "Deny" for a in s["Action"]}
        assert {"ecr:PutImage", "secretsmanager:GetSecretValue", "iam:DeleteRolePermissionsBoundary"} <= denied
        role_writes = [s for s in statements if s["Effect"] == "Allow" and "iam:CreateRole" in s["Action"]]
        (writes,) = role_writes
        assert writes["Condition"] == {
            "StringEquals": {
                "iam:PermissionsBoundary": f"arn:aws:iam::{env.account_id}:policy/mlwf-{env.name}-boundary"
            }
        }


def github_environment_of(job: dict[str, Any]) -> list[str]:
    """The GitHub environments a job runs in (a matrix over the environments expanded)."""
    name = job.get("environment")
    if name is None:
        return []
    name = name if isinstance(name, str) else name["name"]
    for chosen in ("${{ matrix.env }}", "${{ inputs.environment }}"):  # a matrix, or a choice of every environment
        if chosen in name:
            return [name.replace(chosen, e.name) for e in load_environments(REPO / "environments")]
    return [name]


def test_every_variable_a_job_reads_is_set_in_its_github_environment(delivery: Delivery) -> None:
    variables = environment_variables(delivery)
    shared = set(repository_variables(delivery))
    jobs = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            read = set(re.findall(r"vars\.(\w+)", yaml.safe_dump(job)))
            environments = github_environment_of(job)
            for environment in environments:
                assert read <= set(variables[environment]) | shared, f"{path.name}: {name} in {environment}"
                jobs += 1
            if not environments:
                assert read <= shared, f"{path.name}: {name} reads {read - shared} outside an environment"
    assert jobs >= 6


def test_environments_take_main_only_and_prod_takes_a_reviewer(
    plans: dict[tuple[str, str], StackPlan], delivery: Delivery
) -> None:
    plan = plans[("github", "repository")]
    environments = {r.inputs["environment"]: r for r in of_type(plan, "repositoryEnvironment:RepositoryEnvironment")}
    assert set(environments) == set(environment_variables(delivery))
    branches = {
        r.inputs["environment"]: r.inputs["branchPattern"]
        for r in of_type(plan, "repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy")
    }
    assert branches == {name: "main" for name in environments if main_only(name)}
    assert "dev-read" not in branches
    assert "prod-read" in branches
    prod = environments["prod"].inputs
    assert prod["preventSelfReview"] is True
    (reviewers,) = prod["reviewers"]
    assert [int(t) for t in reviewers["teams"]] == [1234567]  # the mocks pass numbers as floats
    (protection,) = of_type(plan, "branchProtection:BranchProtection")
    checks = protection.inputs["requiredStatusChecks"][0]["contexts"]
    pull_request_jobs = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())["jobs"]
    assert checks
    assert set(checks) <= set(pull_request_jobs)
    assert protection.inputs["enforceAdmins"] is True
    set_variables = {
        (r.inputs["environment"], r.inputs["variableName"]): r.inputs["value"]
        for r in of_type(plan, "actionsEnvironmentVariable:ActionsEnvironmentVariable")
    }
    assert set_variables == {
        (e, k): v for e, values in environment_variables(delivery).items() for k, v in values.items()
    }


def copy_repo(tmp_path: Path, delivery: dict[str, Any] | str) -> Path:
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    text = delivery if isinstance(delivery, str) else yaml.safe_dump(delivery)
    (tmp_path / "delivery.yaml").write_text(text)
    return tmp_path


GOOD = yaml.safe_load((REPO / "delivery.yaml").read_text())


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({**GOOD, "image_environment": "qa"}, "image_environment: 'qa' is not an environment"),
        ({**GOOD, "github": {**GOOD["github"], "owner": "-bad"}}, "github.owner"),
        ({**GOOD, "github": {**GOOD["github"], "required_checks": []}}, "github.required_checks"),
        ({**GOOD, "extra": 1}, "extra"),
        ("github: [", "not valid YAML"),
        ("- a list", "expected a mapping"),
    ],
    ids=["unknown-image-environment", "bad-owner", "no-checks", "unknown-key", "bad-yaml", "not-a-mapping"],
)
def test_a_bad_delivery_file_is_one_line_naming_it(tmp_path: Path, document: Any, words: str) -> None:
    with pytest.raises(UserError) as caught:
        load_delivery(copy_repo(tmp_path, document))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "delivery.yaml"))
    assert words in message


@pytest.mark.reliability
def test_environments_holding_different_image_repositories_are_refused(tmp_path: Path) -> None:
    root = copy_repo(tmp_path, GOOD)
    staging = root / "environments" / "staging.yaml"
    document = yaml.safe_load(staging.read_text())
    document["image"] = {**document.get("image", {}), "repository": "other/flows"}
    staging.write_text(yaml.safe_dump(document))
    with pytest.raises(UserError, match=r"image\.repository of staging differs"):
        load_delivery(root)


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["deploy"], "--env is required"),
        (["deploy", "--stack", "bootstrap"], "--stack bootstrap needs --env"),
        (["deploy", "--stack", "github", "--env", "dev"], "the github stack is the repository's"),
        (["deploy", "--stack", "github", "--stack", "network", "--env", "dev"], "on its own"),
        (["deploy", "--stack", "bootstrap", "--env", "qa"], "unknown environment 'qa'"),
        (["deploy", "--stack", "github", "--image-digest", "sha256:" + "0" * 64], "--image-tag and --image-digest"),
    ],
    ids=["no-env", "bootstrap-without-env", "github-with-env", "github-with-others", "unknown-env", "github-image"],
)
def test_deploying_a_delivery_stack_wrongly_is_one_line(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("mlwf: error: ")
    assert words in err


@pytest.fixture
def pulumi_ready(tmp_path: Path) -> dict[str, str]:
    """An environment in which the preflight's first checks pass: a program named ``pulumi`` on
    PATH (it is never run; the preflight only looks it up) and a backend."""
    folder = tmp_path / "bin"
    folder.mkdir()
    program = folder / "pulumi"
    program.write_text("#!/bin/sh\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return {"PATH": str(folder), "PULUMI_BACKEND_URL": f"file://{tmp_path}"}


@pytest.mark.reliability
def test_the_github_stack_needs_a_github_token(pulumi_ready: dict[str, str]) -> None:
    from mlwf.infra.deploy import preflight

    with pytest.raises(UserError, match="no GitHub token: the github stack needs GITHUB_TOKEN"):
        preflight("github", REPO, pulumi_ready)
    preflight("github", REPO, {**pulumi_ready, "GITHUB_TOKEN": "x"})


@pytest.mark.reliability
def test_credentials_of_another_account_are_refused_before_pulumi_runs(
    aws_env: str, pulumi_ready: dict[str, str]
) -> None:
    """moto's STS answers as account 123456789012: prod's stacks are not deployed with them."""
    from mlwf.infra.deploy import preflight

    with pytest.raises(UserError, match="credentials are account 123456789012's, but prod is in account 333333333333"):
        preflight("prod", REPO, pulumi_ready, account_id="333333333333")
    preflight("prod", REPO, pulumi_ready, account_id="123456789012")


def test_a_deploy_waits_for_the_replicated_image_and_names_replication_when_it_never_comes(aws_env: str) -> None:
    import boto3

    from mlwf.image_digests import wait_for_image

    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.create_repository(repositoryName="mlwf/flows")

    def manifest(n: int) -> str:
        layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{n:064d}"}]
        return json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": layers}
        )

    pushed = ecr.put_image(repositoryName="mlwf/flows", imageManifest=manifest(1), imageTag="t1")
    said: list[str] = []
    wait_for_image("mlwf/flows", pushed["image"]["imageId"]["imageDigest"], ecr, timeout_s=0, say=said.append)
    assert said == []  # already there: no wait, no message

    never = "sha256:" + "1" * 64
    with pytest.raises(UserError) as caught:
        wait_for_image("mlwf/flows", never, ecr, timeout_s=0, say=said.append)
    assert "did not reach mlwf/flows within 0 s" in str(caught.value)
    assert "ECR replication" in str(caught.value)
    assert "\n" not in str(caught.value)

    said.clear()
    # the image account's push, in effect: the same manifest, the same digest
    ecr.create_repository(repositoryName="source")
    later = ecr.put_image(repositoryName="source", imageManifest=manifest(2), imageTag="t2")["image"]["imageId"]
    later = later["imageDigest"]

    def replicated_meanwhile(seconds: float) -> None:
        ecr.put_image(repositoryName="mlwf/flows", imageManifest=manifest(2), imageTag="t2")

    wait_for_image("mlwf/flows", later, ecr, timeout_s=60, say=said.append, sleep=replicated_meanwhile)
    assert said == [
        f"waiting for image {later} to be replicated to mlwf/flows",
        f"image {later} has reached mlwf/flows",
    ]


def test_the_delivery_stacks_plan_clean_under_the_pack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "bootstrap", "--stack", "github", "--json"]) == 0
    documents = json.loads(capsys.readouterr().out)
    assert sorted((d["stack"], d["env"]) for d in documents) == [
        ("bootstrap", "111111111111"),
        ("bootstrap", "222222222222"),
        ("bootstrap", "333333333333"),
        ("github", "repository"),
    ]
    assert [v for d in documents for v in d["violations"]] == []


def test_an_environment_sharing_a_registry_adds_no_replication(tmp_path: Path) -> None:
    root = copy_repo(tmp_path, GOOD)
    qa = (root / "environments" / "staging.yaml").read_text().replace("name: staging", "name: qa")
    (root / "environments" / "qa.yaml").write_text(qa.replace("name_prefix: mlwf-staging", "name_prefix: mlwf-qa"))
    delivery = load_delivery(root)
    assert sorted(e.name for e in delivery.environments) == ["dev", "prod", "qa", "staging"]
    assert delivery.registries() == [("222222222222", "us-east-1"), ("333333333333", "us-east-1")]
