"""`mlwf rollback`'s choice and checks, against a moto server over HTTP: the deploy history is
the compute stack's runtime parameter's versions; the target must still be in the registry.
What the rollback then deploys is shown on the emulated AWS (tests/test_rehearsal.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from registry import push_image

from mlwf.contract import runtime_parameter_name
from mlwf.errors import UserError
from mlwf.rollback import choose, deployed_images, prepare
from mlwf.settings import Settings, load_environment

REPO = Path(__file__).resolve().parents[1]
MLWF = str(Path(sys.executable).parent / "mlwf")
ONE, TWO, THREE = ("sha256:" + c * 64 for c in "123")
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlwf"


def by(digest: str) -> str:
    return f"{REGISTRY}@{digest}"


def test_the_default_target_is_the_newest_earlier_digest() -> None:
    images = [f"{REGISTRY}:py3.11-aaaa", by(ONE), by(TWO), by(TWO), by(THREE)]
    assert choose("dev", images, None) == (THREE, TWO), "a redeploy of the same digest is not a release"
    assert choose("dev", images[:-1], None) == (TWO, ONE)
    assert choose("dev", [*images, by(TWO)], None) == (TWO, THREE), "a second rollback undoes the first"
    assert choose("dev", images, ONE) == (THREE, ONE)


@pytest.mark.parametrize(
    ("images", "to", "message"),
    [
        ([by(ONE)], None, "dev was never deployed by another image digest: nothing to roll back to"),
        ([f"{REGISTRY}:py3.11-aaaa", by(ONE)], None, "dev was never deployed by another image digest"),
        ([by(ONE), by(TWO)], TWO, f"dev already runs {TWO}: nothing to roll back"),
        ([by(ONE), by(TWO)], "sha256:abc", "not an image digest: 'sha256:abc'"),
    ],
)
def test_nothing_to_roll_back_to_is_one_line(images: list[str], to: str | None, message: str) -> None:
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(")):
        choose("dev", images, to)


@pytest.fixture
def dev(aws_env: str) -> tuple[Settings, Any, Any]:
    """dev, its registry, and three deploys of the compute stack (by tag, then two digests)."""
    import boto3

    settings = load_environment("dev", REPO / "environments")
    ssm = boto3.client("ssm", region_name=settings.region)
    ecr = boto3.client("ecr", region_name=settings.region)
    ecr.create_repository(repositoryName=settings.image.repository)
    for image in (f"{REGISTRY}:py3.11-aaaa", by(ONE), by(TWO)):
        value = json.dumps({"image": image, "cluster_arn": "arn:aws:ecs:us-east-1:123456789012:cluster/c"})
        ssm.put_parameter(Name=runtime_parameter_name(settings.name_prefix), Value=value, Type="String", Overwrite=True)
    return settings, ssm, ecr


def test_the_previous_digest_is_read_from_the_deploy_history_and_found_in_the_registry(
    dev: tuple[Settings, Any, Any],
) -> None:
    settings, ssm, ecr = dev
    pushed = push_image(ecr, settings.image.repository, "py3.11-bbbb")
    step = prepare(settings, pushed, ssm, ecr)
    assert (step.current, step.target, step.tag) == (TWO, pushed, "py3.11-bbbb")
    with pytest.raises(UserError) as gone:
        prepare(settings, None, ssm, ecr)  # ONE, deployed before TWO, was never pushed here
    assert str(gone.value) == (
        f"image {ONE} is gone from {settings.image.repository} (its lifecycle policy keeps the newest images): "
        "cannot roll back to it"
    )


def test_an_environment_never_deployed_has_no_history(aws_env: str) -> None:
    import boto3

    settings = load_environment("staging", REPO / "environments")
    ssm, ecr = (boto3.client(s, region_name=settings.region) for s in ("ssm", "ecr"))
    with pytest.raises(UserError, match=r"^staging has no deploy history \(/mlwf-staging/compute does not exist\)"):
        prepare(settings, None, ssm, ecr)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--env", "qa"], "unknown environment 'qa'"),
        (["--env", "dev", "--to", "latest"], "not an image digest: 'latest' (expected sha256: and 64 hex digits)"),
        (["--env", "dev"], "PREFECT_API_URL is not set: point it at dev's Prefect workspace"),
    ],
)
def test_bad_rollback_input_is_one_line_before_anything_is_read(args: list[str], line: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")}
    result = subprocess.run([MLWF, "rollback", *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    (error,) = result.stderr.strip().splitlines()
    assert line in error
    assert result.stdout == ""


def test_a_version_naming_no_image_counts_as_none_but_the_newest_must_name_one(aws_env: str) -> None:
    import boto3

    settings = load_environment("prod", REPO / "environments")
    ssm = boto3.client("ssm", region_name=settings.region)
    name = runtime_parameter_name(settings.name_prefix)
    for value in (json.dumps({"image": by(ONE)}), "not json", json.dumps(["a list"]), json.dumps({"image": by(TWO)})):
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    assert deployed_images(settings, ssm) == [by(ONE), "", "", by(TWO)]
    assert choose("prod", deployed_images(settings, ssm), None) == (TWO, ONE)
    ssm.put_parameter(Name=name, Value="{}", Type="String", Overwrite=True)
    with pytest.raises(UserError, match=r"^the newest version of /mlwf-prod/compute names no image"):
        deployed_images(settings, ssm)
