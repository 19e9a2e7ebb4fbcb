"""What a person watching a run sees: a line per stage with its time, bars over files and
partitions (drawn live on a terminal, following a real LocalCluster's progress)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import dask
import dask.dataframe as dd
import pandas as pd
import pytest

from mlwf import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    previous = progress.install(progress.Console(stream))
    try:
        yield stream
    finally:
        progress.install(previous)


def test_a_stage_prints_one_line_with_its_time_notes_and_bar(console: io.StringIO) -> None:
    with progress.stage("ingest") as step:
        step.total(3, "files")
        for _ in range(3):
            step.advance()
        step.note("3 new")
    (line,) = console.getvalue().splitlines()
    assert re.fullmatch(r"ingest    done in +\d+\.\d s  3 new  \[#{30}\] 3/3 files", line), line


def test_a_failed_stage_says_so_and_the_error_goes_on(console: io.StringIO) -> None:
    with pytest.raises(ValueError, match="boom"), progress.stage("train"):
        raise ValueError("boom")
    assert console.getvalue().startswith("train     failed after ")


def test_without_a_console_stages_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mlwf.progress"), progress.stage("score") as step:
        step.note("10 events")
    assert any(r.getMessage().startswith("score     done in") and "10 events" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_in_a_deployed_run_stage_lines_reach_the_runs_logs_in_prefect() -> None:
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    @flow(name="progress-probe")
    def probe() -> None:
        with progress.stage("prepare") as step:
            step.note("12 events")

    state = probe(return_state=True)
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs reach the API in batches

    async def messages() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
            )
            return [entry.message for entry in logs]

    found = asyncio.run(messages())
    assert any(m.startswith("prepare   done in") and m.endswith("12 events") for m in found), found


@pytest.mark.slow
def test_the_bar_follows_the_partitions_as_the_cluster_finishes_them(dask_client: object) -> None:
    terminal = Terminal()
    previous = progress.install(progress.Console(terminal))
    frame = dd.from_pandas(pd.DataFrame({"x": range(60)}), npartitions=6)

    def slow(part: pd.DataFrame) -> pd.DataFrame:
        import time

        time.sleep(0.4)
        return part * 2

    try:
        with progress.stage("prepare"):
            total = progress.compute(frame.map_partitions(slow, meta=frame._meta)["x"].sum(), frame.npartitions)
    finally:
        progress.install(previous)
    assert total == 2 * sum(range(60))
    drawn = [int(m) for m in re.findall(r"\] (\d)/6 partitions", terminal.getvalue())]
    assert drawn[-1] == 6
    assert any(0 < n < 6 for n in drawn), f"no intermediate progress drawn: {drawn}"
    assert drawn == sorted(drawn)


def test_outside_a_stage_compute_is_a_plain_compute() -> None:
    with dask.config.set(scheduler="sync"):
        assert progress.compute(dd.from_pandas(pd.DataFrame({"x": [1, 2]}), npartitions=1)["x"].sum(), 1) == 3
