"""The flows under Prefect's test harness (a real temporary API server), on real NOAA data and a
real LocalCluster; the S3 path against a real moto server."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import boto3
import fsspec
import pandas as pd
import pytest

from mlwf import storage
from mlwf.errors import UserError
from workflows.storm.flows import ingest_flow, prepare_flow, score_flow, storm_damage_pipeline, train_flow
from workflows.storm.zones import Zones

from badfiles import write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def _version_folders(root: Path) -> dict[str, list[str]]:
    zones = Zones(str(root))
    out = {}
    for zone in ("curated", "models", "scores", "reports"):
        fs, path = storage.url_to_fs(getattr(zones, zone))
        if zone == "models":
            path = f"{path}/storm-damage"
        out[zone] = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
    return out


async def _artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {a.key for a in await client.read_artifacts() if a.key}


def test_the_pipeline_runs_end_to_end_and_a_rerun_changes_nothing(sample_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    first = storm_damage_pipeline(source=str(sample_dir), data_root=str(root))
    metrics = first["metrics"]
    assert first["engine"] == "sklearn"
    assert metrics["model"]["roc_auc"] > 0.7 > metrics["baseline"]["roc_auc"]
    assert first["scored_rows"] == 44_752
    report_dir = Path(first["report"]).parent
    assert {p.name for p in report_dir.iterdir() if not p.name.startswith("_")} == {
        "report.md",
        "metrics.json",
        "curves.png",
        "drift.png",
    }
    assert (report_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| storm-damage model |" in (report_dir / "report.md").read_text()
    assert "Fitted with scikit-learn on one worker (chosen by the size" in (report_dir / "report.md").read_text()
    assert {"storm-damage-metrics", "storm-damage-report"} <= asyncio.run(_artifact_keys())

    before = _version_folders(root)
    scores_before = pd.read_parquet(first["scores"])
    second = storm_damage_pipeline(source=str(sample_dir), data_root=str(root))
    assert second["model_version"] == first["model_version"]
    assert second["scores"] == first["scores"]
    assert _version_folders(root) == before, "a re-run must not add a second copy of anything"
    pd.testing.assert_frame_equal(pd.read_parquet(second["scores"]), scores_before)


def test_stage_flows_run_one_after_another(sample_dir: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    ingested = ingest_flow(source=str(sample_dir), years=[1994, 1995], data_root=root)
    assert len(ingested["ingested"]) == 2
    curated_version = prepare_flow(data_root=root)
    metadata = train_flow(data_root=root)
    assert metadata["data_version"] == curated_version
    assert metadata["train_years"] == [1994]
    assert metadata["test_years"] == [1995]
    scores_url = score_flow(years=[1995], data_root=root)
    assert len(pd.read_parquet(scores_url)) == 20_461


def test_train_before_prepare_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run the prepare flow first"):
        train_flow(data_root=str(tmp_path / "empty"))


@pytest.mark.reliability
def test_bad_files_are_quarantined_and_the_pipeline_proceeds(sample_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for year in (1994, 1995):
        shutil.copy(next(sample_dir.glob(f"*_d{year}_*")), source)
    bad = write_corpus(next(sample_dir.glob("*_d1995_*")), source, first_year=2001)
    result = storm_damage_pipeline(source=str(source), data_root=str(tmp_path / "data"), split_year=1995)
    assert set(result["quarantined"]) == {name for name, _ in bad.values()}
    assert result["scored_rows"] == 15_627 + 20_461
    report = Path(result["report"]).read_text()
    assert "quarantined `" in report


def test_the_whole_pipeline_reads_and_writes_s3(sample_dir: Path, aws_env: str) -> None:
    s3 = boto3.client("s3")
    for bucket in ("noaa-mirror", "mlwf-dev-data"):
        s3.create_bucket(Bucket=bucket)
    for year in (1994, 1995):
        path = next(sample_dir.glob(f"*_d{year}_*"))
        s3.upload_file(str(path), "noaa-mirror", f"csvfiles/{path.name}")
    result = storm_damage_pipeline(source="s3://noaa-mirror/csvfiles/", data_root="s3://mlwf-dev-data/storm")
    assert result["scores"].startswith("s3://mlwf-dev-data/storm/scores/")
    fs = fsspec.filesystem("s3")
    keys = set(fs.find("mlwf-dev-data/storm"))
    assert any(k.endswith("raw/storm_events/" + next(sample_dir.glob("*_d1995_*")).name) for k in keys)
    assert any("/curated/storm_events/" in k and "/year=1995/" in k for k in keys)
    assert any(k.endswith("model.pkl") for k in keys)
    assert any(k.endswith("report.md") for k in keys)
    scores = pd.read_parquet(result["scores"], storage_options={})
    assert len(scores) == result["scored_rows"] == 15_627 + 20_461
