"""`mlwf flows deploy` end to end against a real local Prefect server: deployments are created
idempotently, and a real process worker picks up a run of one and completes it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

MLWF = str(Path(sys.executable).parent / "mlwf")
PREFECT = str(Path(sys.executable).parent / "prefect")
REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def api_env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }


async def deployments() -> dict[str, object]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        found = await client.read_deployments()
        return {f"{d.name}:{d.entrypoint}": d for d in found}


def test_flows_deploy_idempotently_and_a_worker_completes_a_run(tmp_path: Path) -> None:
    env = api_env()
    first = subprocess.run(
        [MLWF, "flows", "deploy", "--env", "local"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr[-2000:]
    second = subprocess.run(
        [MLWF, "flows", "deploy", "--env", "local"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert second.stdout == first.stdout, "same deployments, same IDs"
    # The server is shared by the session's tests: another may have deployed a workload of its own copy.
    found = {key: d for key, d in asyncio.run(deployments()).items() if (REPO / key.split(":")[1]).exists()}
    assert set(found) == {
        "local:workflows/storm/flows.py:storm_damage_pipeline",
        "local:workflows/storm/flows.py:ingest_flow",
        "local:workflows/storm/flows.py:prepare_flow",
        "local:workflows/storm/flows.py:train_flow",
        "local:workflows/storm/flows.py:score_flow",
        "local:workflows/search/flows.py:damage_model_search",
        "local:workflows/starter/flows.py:starter_flow",
    }, "every workload's flows, found from their folders"
    pipeline = found["local:workflows/storm/flows.py:storm_damage_pipeline"]
    assert pipeline.work_pool_name == "mlwf-local"  # type: ignore[attr-defined]
    assert pipeline.parameters == {"env": "local"}  # type: ignore[attr-defined]

    data_root = tmp_path / "smoke"
    smoke = subprocess.Popen(
        [MLWF, "flows", "smoke", "--env", "local", "--data-root", str(data_root)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "mlwf-local", "--type", "process"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stdout, stderr = smoke.communicate(timeout=300)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert smoke.returncode == 0, stderr[-2000:]
    assert stdout.strip().splitlines() == ["smoke run of storm-ingest/local completed"]
    assert [p.name for p in (data_root / "raw" / "storm_events").glob("*.csv.gz")] == [
        "StormEvents_details-ftp_v1.0_d1995_c20170522.csv.gz"
    ]
