"""The search workload: dask-ml's grid search over the cluster scores exactly as scikit-learn's,
its flow publishes one report per inputs, and bad parameters are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlwf import storage
from mlwf.errors import UserError
from workflows.search import search
from workflows.storm import ingest, prepare
from workflows.storm.zones import Zones

MLWF = str(Path(sys.executable).parent / "mlwf")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_root(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory, dask_client: object) -> str:
    """A data root holding the storm workload's curated sample (what the search reads)."""
    zones = Zones(str(tmp_path_factory.mktemp("search-root")))
    for item in ingest.list_source(str(sample_dir)):
        ingest.ingest_file(item, zones.raw)
    prepare.prepare(ingest.raw_files(zones.raw), zones.curated)
    return zones.root


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"c_values": (0.0, 1.0)}, "c_values must be positive numbers"),
        ({"class_weights": ("heavy",)}, "class_weights must be 'none' or 'balanced'"),
        ({"folds": 1}, "folds must be at least 2"),
    ],
)
def test_bad_search_parameters_are_one_line(changes: dict[str, object], words: str) -> None:
    with pytest.raises(UserError, match=words):
        search.SearchConfig(**changes)  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_grid_search_over_the_cluster_scores_exactly_as_scikit_learns(data_root: str) -> None:
    """Every candidate x fold is a task on the cluster; the scores are scikit-learn's own."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    config = search.SearchConfig(max_rows=4_000, c_values=(0.01, 1.0))
    curated = storage.current(Zones(data_root).curated)
    assert curated is not None
    data = search.design(prepare.read_curated(curated), config)
    assert data.train_years == [1993, 1994]
    assert data.test_years == [1995]
    assert 3_000 < len(data.y_train) <= 4_400, "a sample of the training years, on the cluster"
    ours = search.search(data, config)
    reference = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        search.grid(config),
        scoring="roc_auc",
        cv=config.folds,
    ).fit(data.x_train, data.y_train)
    # lbfgs stops at a tolerance, and dask-ml fits each fold's scaler once for every candidate:
    # the same fits to within a few 1e-7 of ROC AUC.
    for key in ("mean_test_score", *(f"split{i}_test_score" for i in range(config.folds))):
        np.testing.assert_allclose(ours.cv_results_[key], reference.cv_results_[key], rtol=0, atol=5e-6)
    assert ours.best_params_ == reference.best_params_
    rows = search.results(ours)
    assert len(rows) == 4
    assert rows[0]["rank"] == 1
    assert {(r["C"], r["class_weight"]) for r in rows} == {(c, w) for c in (0.01, 1.0) for w in ("none", "balanced")}
    assert 0.5 < search.held_out_auc(ours, data) < 1.0


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_the_search_flow_publishes_one_report_per_inputs(data_root: str) -> None:
    from workflows.search.flows import damage_model_search

    summary = damage_model_search(data_root=data_root, max_rows=5_000, c_values=[0.1, 1.0])
    report = Path(summary["report"])
    folder = report.parent
    text = report.read_text()
    best = summary["best"]
    assert f"Best: C = {best['C']:g}, class weight = {best['class_weight']}" in text
    assert "![ROC AUC against C](scores.png)" in text
    assert (folder / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((folder / "results.json").read_text())["candidates"] == summary["candidates"]
    assert summary["config"]["c_values"] == [0.1, 1.0]
    again = damage_model_search(data_root=data_root, max_rows=5_000, c_values=[0.1, 1.0])
    assert again["report"] == summary["report"], "the same inputs publish nothing new"
    versions = [p for p in folder.parent.iterdir() if p.is_dir()]
    assert versions == [folder]


@pytest.mark.reliability
def test_the_search_demo_says_what_to_run_first(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    result = subprocess.run(
        [MLWF, "demo", "--workload", "search", "--output", str(tmp_path / "empty")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("mlwf: error: no curated storm data under ")
    assert lines[-1].endswith(": run the storm pipeline first")


@pytest.mark.reliability
def test_the_search_demo_refuses_options_it_does_not_take(tmp_path: Path) -> None:
    result = subprocess.run(
        [MLWF, "demo", "--workload", "search", "--engine", "sklearn"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "mlwf: error: unrecognized arguments: --engine sklearn"
