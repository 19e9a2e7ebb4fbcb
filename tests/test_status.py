"""`mlwf status`'s own rules, without an environment (the rehearsal shows it against one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlwf.status import DeploymentStatus, Status

MLWF = str(Path(sys.executable).parent / "mlwf")
REPO = Path(__file__).resolve().parents[1]
IMAGE = "222222222222.dkr.ecr.us-east-1.amazonaws.com/mlwf/flows@sha256:"


def test_one_digest_everywhere_is_one_line_and_several_are_named() -> None:
    status = Status(
        "staging",
        images={"flow runs": IMAGE + "a" * 64, "Dask workers": IMAGE + "a" * 64},
        deployments=[DeploymentStatus("storm-damage-pipeline/staging", "2026-12-07 00:00Z", IMAGE, ["Decayed x"])],
        models={"storm": ["current model v1 (promoted): ROC AUC 0.700 against the baseline's 0.500", "trained on x"]},
        alerts=["alarm mlwf-staging-reaper-silent since 2026-12-07 00:00Z: the reaper has not reported"],
    )
    lines = status.lines()
    assert lines[:2] == ["== staging", f"image        sha256:{'a' * 64}"]
    assert "model        storm: current model v1 (promoted): ROC AUC 0.700 against the baseline's 0.500" in lines
    assert "   trained on x" in lines
    assert lines[-1].startswith("alert        alarm mlwf-staging-reaper-silent")
    status.images["Dask scheduler"] = IMAGE + "b" * 64
    assert status.lines()[1].startswith("image        2 different images: ")
    assert Status("dev", images={"flow runs": "repo:tag"}).lines()[1] == "image        repo:tag", "a tag, unpinned"


def test_status_needs_the_environments_prefect_api_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path)  # no profile that sets it either
    result = subprocess.run(
        [MLWF, "status", "--env", "staging"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mlwf: error: PREFECT_API_URL is not set: point it at staging's Prefect workspace"
    ]


def test_status_of_an_unknown_environment_is_one_line() -> None:
    result = subprocess.run([MLWF, "status", "--env", "nowhere"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("mlwf: error: unknown environment 'nowhere'")
