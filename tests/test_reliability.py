"""Fault injection: a worker killed mid-scoring, a stage that fails and is retried, S3 that
throttles and resets connections or fails for good, and two pipeline runs at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import boto3
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from faulty_s3 import Faults, faulty_proxy

from mlwf import storage
from workflows.storm import ingest, model_store, prepare, score
from workflows.storm.model import TrainConfig, train
from workflows.storm.zones import Zones

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
MLWF = str(Path(sys.executable).parent / "mlwf")


@pytest.fixture(scope="module")
def scored_inputs(
    sample_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[storage.Published, model_store.StoredModel]:
    root = tmp_path_factory.mktemp("scoring-inputs")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster):
        for item in ingest.list_source(str(sample_dir)):
            ingest.ingest_file(item, str(root / "raw"))
        curated = prepare.prepare(ingest.raw_files(str(root / "raw")), str(root / "curated"))
        result = train(prepare.read_curated(curated), TrainConfig())
    stored = model_store.save(str(root / "models"), result, curated.version, TrainConfig(), {"curves.png": b"png"})
    return curated, stored


def test_scoring_survives_a_worker_killed_mid_run(scored_inputs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    curated, stored = scored_inputs
    frame = lambda: prepare.read_curated(curated).repartition(npartitions=60)  # noqa: E731 - many tasks to land in
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        calm = score.score(frame(), curated.version, stored, str(tmp_path / "calm"))
        outcome: dict[str, object] = {}

        def run() -> None:
            outcome["published"] = score.score(frame(), curated.version, stored, str(tmp_path / "disturbed"))

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 60
        while not client.run_on_scheduler(
            lambda dask_scheduler: sum(ts.state == "memory" for ts in dask_scheduler.tasks.values())
        ):
            assert time.monotonic() < deadline, "scoring never started"
            time.sleep(0.02)
        victim = next(iter(client.scheduler_info()["workers"]))
        pid = client.run(os.getpid, workers=[victim])[victim]
        killed_while_running = thread.is_alive()
        os.kill(pid, signal.SIGKILL)  # an abrupt death, as an OOM kill or a lost Spot task
        thread.join(timeout=300)
        assert killed_while_running, "the worker must die while scoring is under way"
        assert victim not in client.scheduler_info()["workers"]
    disturbed = outcome["published"]
    expected = pd.read_parquet(calm.url).sort_values("event_id").reset_index(drop=True)
    actual = pd.read_parquet(disturbed.url).sort_values("event_id").reset_index(drop=True)  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(actual, expected)
    assert len(actual) == 44_752


@pytest.mark.usefixtures("prefect_server")
def test_a_retried_stage_leaves_one_complete_output(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The score stage's first attempt dies after its files are written, before the switch."""
    from workflows.storm.flows import storm_damage_pipeline

    real = storage.write_json
    failures = []

    def flaky_write_json(url: str, document: object) -> None:
        if "/scores/" in url and url.endswith(storage.POINTER) and not failures:
            failures.append(url)
            raise ConnectionResetError("injected: connection reset while switching the scores pointer")
        real(url, document)

    monkeypatch.setattr(storage, "write_json", flaky_write_json)
    root = tmp_path / "data"
    result = storm_damage_pipeline(source=str(sample_dir), data_root=str(root))
    assert failures, "the fault was injected"
    folders = [p for p in Path(Zones(str(root)).scores).iterdir() if p.is_dir()]
    assert [p.name for p in folders] == [Path(result["scores"]).name], "one complete output, no partial attempt"
    assert len(pd.read_parquet(result["scores"])) == result["scored_rows"] == 44_752


def _pipeline_on_s3(sample_dir: Path, bucket: str) -> dict[str, object]:
    from workflows.storm.flows import storm_damage_pipeline

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    for year in (1994, 1995):
        path = next(sample_dir.glob(f"*_d{year}_*"))
        s3.upload_file(str(path), bucket, f"source/{path.name}")
    return storm_damage_pipeline(source=f"s3://{bucket}/source/", data_root=f"s3://{bucket}/storm")


@pytest.mark.usefixtures("prefect_server")
def test_transient_s3_faults_are_retried_to_the_same_result(
    sample_dir: Path, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = _pipeline_on_s3(sample_dir, "clean-run")
    faults = Faults(transient=True)
    with faulty_proxy(aws_env, faults) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)  # the flow process and the Dask workers it starts
        import fsspec

        fsspec.filesystem("s3").clear_instance_cache()
        flaky = _pipeline_on_s3(sample_dir, "flaky-run")
    assert faults.injected["slowdown"] > 5
    assert faults.injected["reset"] > 5
    assert flaky["model_version"] == clean["model_version"]
    assert flaky["metrics"] == clean["metrics"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    read = lambda url: pd.read_parquet(url).sort_values("event_id").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(read(flaky["scores"]), read(clean["scores"]))


@pytest.mark.usefixtures("prefect_server")
def test_s3_that_keeps_failing_ends_in_a_clear_failure_with_nothing_published(
    sample_dir: Path, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(transient=False, broken_prefix="/storm/scores/")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")  # fewer retries of a fault that never heals: a faster test
    with faulty_proxy(aws_env, faults) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)
        import fsspec

        fsspec.filesystem("s3").clear_instance_cache()
        # s3fs turns S3's SlowDown into OSError(EBUSY) with S3's own message.
        with pytest.raises(OSError, match="Please reduce your request rate"):
            _pipeline_on_s3(sample_dir, "broken-run")
    assert faults.injected["broken"] > 0
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    zones = Zones("s3://broken-run/storm")
    assert storage.current(zones.scores) is None, "readers must see no scores at all"
    assert storage.current(zones.curated) is not None, "the stages before it completed"


def test_two_runs_at_once_keep_separate_clusters_and_complete_outputs(tmp_path: Path) -> None:
    out = tmp_path / "shared-root"
    runs = []
    for name in ("a", "b"):
        env = {
            **os.environ,
            "PREFECT_HOME": str(tmp_path / f"prefect-{name}"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        runs.append(
            subprocess.Popen(
                [MLWF, "demo", "--output", str(out), "--json"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    summaries = []
    for process in runs:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-2000:]
        summaries.append(json.loads(stdout[stdout.index("{") :]))
    assert summaries[0]["cluster"] != summaries[1]["cluster"], "each run has a cluster of its own"
    opened = [datetime.fromisoformat(s["cluster_open"][0]) for s in summaries]
    closed = [datetime.fromisoformat(s["cluster_open"][1]) for s in summaries]
    assert max(opened) < min(closed), "the two runs' clusters were up at the same time"
    assert summaries[0]["model_version"] == summaries[1]["model_version"]
    zones = Zones(str(out))
    current = storage.current(zones.scores)
    assert current is not None
    scores = pd.read_parquet(current.url)
    assert len(scores) == 44_752
    assert scores["event_id"].is_unique, "no file of one run mixed into the other's output"
