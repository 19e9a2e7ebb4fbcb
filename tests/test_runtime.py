"""`mlwf.runtime.resolve`: an AWS environment's IDs come from the SSM parameter the compute stack
publishes, read from a real (moto) SSM over HTTP; a missing or malformed parameter is one line."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from mlwf.contract import ClusterRuntime, runtime_parameter_name
from mlwf.errors import UserError
from mlwf.runtime import resolve

ENVIRONMENTS = Path(__file__).resolve().parents[1] / "environments"
PARAMETER = runtime_parameter_name("mlwf-dev")
KEYS = ClusterRuntime.keys()
PUBLISHED = {
    **{key: f"{key}-value" for key in KEYS},
    "private_subnets": ["subnet-a", "subnet-b"],
    "data_root": "s3://mlwf-dev-data-111111111111",
}


def test_an_aws_environment_reads_the_published_runtime(aws_env: str) -> None:
    boto3.client("ssm").put_parameter(Name=PARAMETER, Type="String", Value=json.dumps(PUBLISHED))
    runtime = resolve("dev", environments_dir=ENVIRONMENTS)
    assert runtime.cluster == ClusterRuntime(**PUBLISHED)
    assert runtime.data_root == "s3://mlwf-dev-data-111111111111"
    assert runtime.settings is not None
    assert runtime.settings.name == "dev"
    assert resolve("dev", "s3://elsewhere/x", ENVIRONMENTS).data_root == "s3://elsewhere/x", "a flow may override it"


def test_local_needs_no_aws() -> None:
    runtime = resolve("local")
    assert (runtime.env, runtime.data_root, runtime.settings, runtime.cluster) == ("local", "mlwf-data", None, None)


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, f"cannot read the compute runtime {PARAMETER}: "),
        ("not json", f"the compute runtime {PARAMETER} is malformed"),
        (json.dumps({k: v for k, v in PUBLISHED.items() if k != "cluster_arn"}), "is malformed: "),
        (json.dumps({**PUBLISHED, "surprise": 1}), "is malformed: "),
    ],
)
def test_a_missing_or_malformed_parameter_is_one_line(aws_env: str, value: str | None, words: str) -> None:
    if value is not None:
        boto3.client("ssm").put_parameter(Name=PARAMETER, Type="String", Value=value)
    with pytest.raises(UserError) as caught:
        resolve("dev", environments_dir=ENVIRONMENTS)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)
