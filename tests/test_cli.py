"""`mlwf` as a user runs it: real processes, exit codes, one-line errors, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MLWF = str(Path(sys.executable).parent / "mlwf")
REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run([MLWF, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mlwf")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["demo", "--years", "1899"], ["year 1899 is outside 1950-2100"]),
        (["demo", "--years", "soon"], ["'soon' is not a year"]),
        (["demo", "--split-year"], ["--split-year", "expected one argument"]),
        (["demo", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["demo", "--train-years", "2018-1996"], ["'2018-1996': the first year is after the last"]),
        (["demo", "--train-years", "1900-1990"], ["year 1900 is outside 1950-2100"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        ([], ["the following arguments are required: command"]),
    ],
)
def test_bad_arguments_are_one_line_errors(args: list[str], words: list[str], tmp_path: Path) -> None:
    assert_one_line_error(run(*args, cwd=tmp_path), *words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.reliability
def test_an_unreachable_source_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("demo", "--source", str(tmp_path / "nowhere"), "--output", str(out), cwd=tmp_path)
    assert_one_line_error(result, "cannot read source", "nowhere")
    assert not out.exists()


@pytest.mark.reliability
def test_a_source_with_no_matching_years_writes_nothing(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("demo", "--source", str(sample_dir), "--years", "2001", "--output", str(out), cwd=tmp_path)
    assert_one_line_error(result, "no StormEvents_details-*.csv.gz files for years [2001]")
    assert not out.exists()


@pytest.mark.reliability
def test_an_unwritable_output_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_one_line_error(run("demo", "--output", str(blocker / "sub"), cwd=tmp_path), "is not a writable folder")


def test_env_check_validates_the_shipped_environments() -> None:
    result = run("env", "check")
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == [
        "environments/dev.yaml",
        "environments/prod.yaml",
        "environments/staging.yaml",
    ]


@pytest.mark.reliability
def test_env_check_fails_on_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "dev.yaml"
    bad.write_text((REPO / "environments" / "dev.yaml").read_text().replace("az_count: 2", "az_count: two"))
    result = run("env", "check", str(REPO / "environments" / "prod.yaml"), str(bad))
    assert result.returncode == 2
    assert result.stdout.startswith("ok  ")
    assert_one_line_error(result, f"{bad}: network.az_count: Input should be a valid integer")


@pytest.mark.slow
def test_demo_prints_a_line_per_stage_and_where_everything_is(tmp_path: Path) -> None:
    result = run("demo", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    stages = [line.split()[0] for line in lines if " done in " in line]
    assert stages == ["ingest", "prepare", "train", "score", "report"]
    assert any(line.startswith("ingest ") and line.endswith("3/3 files") for line in lines)
    assert any(line.startswith("prepare ") and line.endswith("3/3 partitions") for line in lines)
    assert any(line.startswith("score ") and line.endswith("3/3 partitions") for line in lines)
    assert any(line.startswith("gate         model ") and " promoted" in line for line in lines)
    (model,) = [line.split() for line in lines if line.startswith("storm-damage model ")]
    (baseline,) = [line.split() for line in lines if line.startswith("baseline (prior) ")]
    assert float(model[2]) > float(baseline[2]) + 0.2, "ROC AUC well above the baseline's"
    assert "(fitted with sklearn" in result.stdout, "the sample fits one worker many times over"
    assert "(44,752 events, model " in result.stdout
    (report,) = [line.split()[1] for line in lines if line.startswith("report ") and line.endswith("report.md")]
    assert Path(report).is_file()
    # Prefect's and Dask's INFO logs only with -v.
    assert "Finished in state" not in result.stdout + result.stderr
    assert "INFO" not in result.stdout + result.stderr


@pytest.mark.slow
def test_a_refused_model_exits_3_with_one_line(tmp_path: Path) -> None:
    from synthetic import Relation, write_year

    for year in (2010, 2011):
        write_year(tmp_path / "source", year, Relation())
    write_year(tmp_path / "source", 2012, Relation().inverted())
    result = run("demo", "--source", str(tmp_path / "source"), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 3, result.stderr[-3000:]
    # One line for the refusal (a loaded machine may add Dask's WARNING lines, never the error twice).
    lines = result.stderr.strip().splitlines()
    (line,) = [text for text in lines if "refused" in text or text.startswith("mlwf")]
    assert line == lines[-1], result.stderr
    assert line.startswith("mlwf: model ")
    assert "refused by the promotion gate: ROC AUC" in line
    assert "Traceback" not in result.stdout + result.stderr
    assert "scores       none: no model is current" in result.stdout
    assert not (tmp_path / "out" / "models" / "storm-damage" / "_CURRENT.json").exists()


@pytest.mark.slow
@pytest.mark.heavy
def test_demo_over_all_46_years_of_real_data(full_data_dir: Path, tmp_path: Path) -> None:
    result = run("demo", "--source", str(full_data_dir), "--output", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["scored_rows"] == 232_242
    assert summary["quarantined"] == {}
    metrics = summary["metrics"]
    assert summary["engine"] == "sklearn"
    assert metrics["model"]["roc_auc"] > metrics["baseline"]["roc_auc"] + 0.2


def test_plan_prints_every_stack_and_environment() -> None:
    result = run("plan")
    assert result.returncode == 0, result.stderr
    assert "16 stack plans" in result.stdout  # 4 stacks x 3 environments, bootstrap x 3 accounts, github
    assert "network.nat_gateways: 1 / 2 / 3" in result.stdout
    for stack in ("network", "storage", "compute", "prefect-agent", "bootstrap", "github"):
        assert f"== {stack}" in result.stdout


def test_plan_json_is_one_document_of_stack_plans() -> None:
    result = run("plan", "--env", "prod", "--stack", "compute", "--json")
    assert result.returncode == 0, result.stderr
    (document,) = json.loads(result.stdout)
    assert (document["env"], document["stack"], document["violations"]) == ("prod", "compute", [])
    assert {"type", "name", "inputs"} <= set(document["resources"][0])
    assert "aws:ecs/cluster:Cluster" in {r["type"] for r in document["resources"]}


@pytest.mark.reliability
def test_plan_rejects_unknown_environments_and_stacks() -> None:
    assert_one_line_error(run("plan", "--env", "qa"), "unknown environment 'qa' (known: dev, prod, staging")
    assert_one_line_error(run("plan", "--stack", "database"), "unknown stack 'database' (known: network, storage,")


@pytest.mark.reliability
def test_deploy_without_the_pulumi_cli_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [MLWF, "deploy", "--env", "dev"], cwd=REPO, capture_output=True, text=True, env=env, timeout=120
    )
    assert_one_line_error(result, "the Pulumi CLI is not installed")


def test_plan_of_an_insecure_program_fails_with_its_violations() -> None:
    result = run("plan", "--program", "tests/insecure_program", "--env", "dev", "--json")
    assert result.returncode == 1
    assert result.stderr.strip().endswith("mandatory policy violation(s)")
    (document,) = json.loads(result.stdout)
    policies = {v["policy"] for v in document["violations"]}
    assert {"s3-bucket-encrypted", "no-ssh-rdp-from-internet", "iam-no-star-action-on-star-resource"} <= policies
    assert all(set(v) == {"policy", "level", "resource", "message"} for v in document["violations"])


@pytest.mark.reliability
def test_plan_of_a_folder_without_a_program_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run("plan", "--program", str(tmp_path), "--env", "dev"), "is not a Pulumi Python program")


@pytest.mark.reliability
def test_validate_reports_each_bad_file_in_one_line_and_writes_nothing(sample_dir: Path, tmp_path: Path) -> None:
    from badfiles import write_corpus

    bad = write_corpus(next(sample_dir.glob("*_d1995_*")), tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, reason in bad.values():
        result = run("validate", str(tmp_path / name), cwd=tmp_path)
        assert_one_line_error(result, name, reason)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_validate_accepts_the_real_files(sample_dir: Path) -> None:
    result = run("validate", *(str(p) for p in sorted(sample_dir.glob("*.csv.gz"))))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith("(20,461 events)")
