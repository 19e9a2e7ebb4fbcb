"""Deploy by digest: the build job records the digest it pushed under each tag (`mlwf image
record`), an existing tag is promoted only when it still points there (`mlwf image verify`), and
every task definition in the plan takes the image by digest when one is given. Against a moto
server over HTTP for SSM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlwf.cli import main
from mlwf.image_digests import digest_of, image_config
from mlwf.infra.plan import plan_environment
from mlwf.planned import StackPlan
from mlwf.settings import load_environment
from mlwf.stacks.programs import ORDER

REPO = Path(__file__).resolve().parents[1]
PUSHED = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
TAG = "py3.11-0123456789ab"


def mlwf(*args: str) -> int:
    return main(["image", *args])


def test_a_recorded_tag_is_verified_and_a_foreign_digest_refused(
    aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mlwf("record", TAG, PUSHED) == 0
    assert mlwf("record", TAG, PUSHED) == 0, "recording the same digest again changes nothing"
    assert mlwf("verify", TAG, PUSHED) == 0
    capsys.readouterr()
    assert mlwf("verify", TAG, OTHER) == 2
    assert capsys.readouterr().err == (
        f"mlwf: error: image tag {TAG} points at {OTHER}, but this pipeline pushed {PUSHED}: not promoted\n"
    )
    assert mlwf("record", TAG, OTHER) == 2, "a tag's record is written once"
    assert "tags are never reused" in capsys.readouterr().err


def test_a_tag_this_pipeline_never_pushed_is_not_promoted(aws_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert mlwf("verify", TAG, PUSHED) == 2
    assert "exists but this pipeline never pushed it" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("verify", TAG, "sha256:abc"), "not an image digest: 'sha256:abc'"),
        (("record", TAG, "latest"), "not an image digest: 'latest'"),
        (("record", "../x", PUSHED), "not an image tag: '../x'"),
    ],
    ids=["short-digest", "a-tag-for-a-digest", "path-in-tag"],
)
def test_bad_input_is_one_line(
    aws_env: str, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], words: str
) -> None:
    assert mlwf(*args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert words in err


def images(plans: list[StackPlan]) -> list[str]:
    return [
        container["image"]
        for plan in plans
        for r in plan.resources
        if r.type == "aws:ecs/taskDefinition:TaskDefinition"
        for container in json.loads(r.inputs["containerDefinitions"])
    ]


def test_every_task_definition_takes_the_image_by_digest_when_one_is_given() -> None:
    """(Without one they take it by tag: tests/test_platform.py reads the published runtime.)"""
    settings = load_environment("staging", REPO / "environments")
    by_digest = images(plan_environment(settings, list(ORDER), REPO, image_digest=PUSHED))
    assert len(by_digest) >= 5
    assert all(image.endswith(f"@{PUSHED}") and ".dkr.ecr." in image for image in by_digest)


def test_without_a_region_it_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert mlwf("verify", TAG, PUSHED) == 2
    assert capsys.readouterr().err == "mlwf: error: cannot reach SSM: You must specify a region.\n"


def test_a_deploy_without_a_digest_removes_a_stale_one_and_previews_read_what_runs() -> None:
    """Deploying by tag clears a digest an earlier deploy left in the stack's config; previews
    and drift checks take the digest the running image was deployed with (from the compute
    stack's published runtime)."""
    assert image_config(TAG, None) == {"mlwf:imageTag": TAG, "mlwf:imageDigest": None}
    assert image_config(TAG, PUSHED) == {"mlwf:imageTag": TAG, "mlwf:imageDigest": PUSHED}
    repository = "333333333333.dkr.ecr.us-east-1.amazonaws.com/mlwf/flows"
    assert digest_of(f"{repository}@{PUSHED}") == PUSHED
    assert digest_of(f"{repository}:{TAG}") is None
    assert digest_of(f"{repository}@sha256:short") is None
