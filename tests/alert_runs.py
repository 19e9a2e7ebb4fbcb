"""Flow runs for tests/test_alerts.py, each in a process of its own against the alerts test's
Prefect server (``PREFECT_API_URL``), so the test process's own Prefect workers (logs, events)
never hold anything for that server once it stops. Prints ``RESULT <json>`` last.

    python tests/alert_runs.py failing|timing-out|refusing TAG
    python tests/alert_runs.py slow TAG SECONDS
    python tests/alert_runs.py decayed TAG WORKDIR
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, tags
from prefect.client.orchestration import get_client
from prefect.utilities.asyncutils import run_coro_as_sync

import mlwf


@flow(name="alerts-failing")
def failing() -> None:
    raise RuntimeError("the disk is full")


@flow(name="alerts-timing-out", timeout_seconds=1)
def timing_out() -> None:
    time.sleep(5)


@flow(name="alerts-refusing")
def refusing() -> Any:
    return mlwf.refused("model m2 refused by the promotion gate: ROC AUC 0.51 (model m1 stays current)")


@flow(name="alerts-slow")
def slow(seconds: float) -> None:
    time.sleep(seconds)


def described(state: Any) -> dict[str, Any]:
    async def name() -> str:
        async with get_client() as client:
            return str((await client.read_flow_run(state.state_details.flow_run_id)).name)

    return {"type": state.type.value, "name": state.name, "message": state.message, "run": run_coro_as_sync(name())}


def decayed(workdir: Path) -> dict[str, Any]:
    """A model promoted; then the relation turns around: the champion ranks the newest rows worse
    than the baseline, and with stopping on it scores nothing."""
    from synthetic import Relation, write_year

    from mlwf import storage
    from workflows.storm.flows import storm_damage_pipeline
    from workflows.storm.zones import Zones

    source, root = workdir / "source", workdir / "data"
    for year in (2010, 2011, 2012):
        write_year(source, year, Relation(), events=1000)
    champion = storm_damage_pipeline(source=str(source), data_root=str(root))["model_version"]
    before = storage.current(Zones(str(root)).scores)
    write_year(source, 2013, Relation().inverted(), events=1000)
    state = storm_damage_pipeline(source=str(source), data_root=str(root), stop_when_decayed=True, return_state=True)
    details = state.result(raise_on_failure=False).details
    after = storage.current(Zones(str(root)).scores)
    report = Path(details["report"]).read_text()
    return {
        **described(state),
        "champion": champion,
        "serving_model": details["serving_model"],
        "scores": details["scores"],
        "scores_unchanged": before is not None and after is not None and before.version == after.version,
        "report_says_decayed": "- **Decayed**: current model" in report,
    }


def main(argv: list[str]) -> dict[str, Any]:
    scenario, tag, *rest = argv
    with tags(tag):
        if scenario == "decayed":
            return decayed(Path(rest[0]))
        runs = {"failing": failing, "timing-out": timing_out, "refusing": refusing}
        state = slow(float(rest[0]), return_state=True) if scenario == "slow" else runs[scenario](return_state=True)
        return described(state)


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1:])))
