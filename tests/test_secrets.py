"""`mlwf secrets set`: the Prefect API key put by an administrator into the secret the
prefect-agent stack created (never Pulumi config), against a moto server over HTTP."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from mlwf.cli import main
from mlwf.contract import api_key_secret_name

REPO = Path(__file__).resolve().parents[1]
KEY = "pnu_rehearsal0123456789abcdef"  # not a real key


def created_secret(region: str = "us-east-1") -> str:
    """The stack's secret as `pulumi up` leaves it: no value yet."""
    name = api_key_secret_name("mlwf-dev")
    boto3.client("secretsmanager", region_name=region).create_secret(Name=name)
    return name


def put(monkeypatch: pytest.MonkeyPatch, text: str) -> int:
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    return main(["secrets", "set", "--env", "dev"])


def test_the_key_read_from_standard_input_becomes_the_current_value(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = created_secret()
    assert put(monkeypatch, KEY + "\n") == 0
    value = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(SecretId=name)
    assert value["SecretString"] == KEY
    out, err = capsys.readouterr()
    assert out.startswith("put the Prefect API key of dev (version ")
    assert KEY not in out + err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "the Prefect API key is empty: pass it on standard input"),
        ("  \n", "the Prefect API key is empty"),
        ("pnu_a pnu_b\n", "the Prefect API key holds whitespace"),
    ],
    ids=["nothing", "blank", "two-words"],
)
def test_a_bad_key_is_one_line_and_puts_nothing(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    name = created_secret()
    assert put(monkeypatch, text) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert words in err
    versions = boto3.client("secretsmanager", region_name="us-east-1").list_secret_version_ids(SecretId=name)
    assert versions["Versions"] == []


def test_before_the_stack_is_deployed_it_says_so_in_one_line(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert put(monkeypatch, KEY) == 2
    err = capsys.readouterr().err
    assert err == (
        "mlwf: error: secret mlwf-dev/prefect-api-key does not exist in us-east-1: "
        "deploy the prefect-agent stack first\n"
    )
    assert KEY not in err


def test_the_cli_reads_the_key_from_a_pipe(aws_env: str) -> None:
    """As a shell pipeline runs it (not a terminal: no prompt)."""
    name = created_secret()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlwf"), "secrets", "set", "--env", "dev"],
        input=KEY,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stdout + result.stderr
    value = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(SecretId=name)
    assert value["SecretString"] == KEY
