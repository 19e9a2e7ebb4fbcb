"""The starter workload runs on a local Dask cluster and writes its result (delete this file with
the workload)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_adopted_platform import mlwf


@pytest.mark.slow
def test_the_starter_flow_runs_on_a_local_cluster_and_writes_its_result(tmp_path: Path) -> None:
    result = mlwf("starter", "demo", "--output", str(tmp_path / "data"))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "data" / "results" / "starter" / "summary.json").read_text())
    assert summary["size"] == 10_000_000
    assert summary["chunks"] == 8
    assert abs(summary["mean"] - 0.5) < 0.001
    assert abs(summary["std"] - 12**-0.5) < 0.001
    assert "results/starter/summary.json" in result.stdout
