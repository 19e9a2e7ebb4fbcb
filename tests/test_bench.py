"""`mlwf bench` end to end at toy sizes: every measurement runs and the JSON has its keys.
(The figures themselves are measured by `mlwf bench`, never asserted in tests.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.storm import prepare
from workflows.storm.bench import Sizes, run_bench, table

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_bench_runs_every_measurement_at_toy_sizes(sample_1995: Path, sample_dir: Path, tmp_path: Path) -> None:
    sizes = Sizes(
        scoring=20_000, training=20_000, scaling_base=5_000, out_of_core=60_000, worker_memory="450MiB", repeats=1
    )
    results = run_bench(True, sample_dir, tmp_path / "cache", REPO, log=lambda message: None, sizes=sizes)
    for key in (
        "scoring_speedup_vs_sklearn",
        "scoring_vs_io_floor",
        "training_ratio_vs_sklearn",
        "out_of_core_ok",
        "scaling_growth_per_4x",
        "orchestration_overhead_s",
        "plan_all_s",
        "rows",
    ):
        assert key in results
    assert results["rows"]["scaling"] == [5_000, 20_000, 80_000]
    assert results["plan"]["plans"] == 16  # 4 stacks x 3 environments, bootstrap x 3 accounts, github
    assert results["scoring"]["platform"]["rows_per_s"] > 0
    assert results["out_of_core"]["error"] == ""
    assert results["out_of_core"]["workers_restarted"] == []
    assert 0 < results["out_of_core"]["peak_memory_worker_mib"] <= 450
    assert not results["out_of_core_ok"], "60,000 rows are not 3x the workers' memory: not a pass"
    assert results["training"]["platform_engine"] == "sklearn"
    assert "| Batch scoring speedup vs pandas+sklearn |" in table(results)
    # The cached enlarged data is reused, not rewritten.
    marker = tmp_path / "cache" / f"v{prepare.SCHEMA_VERSION}-rows-20000" / "_DONE"
    assert marker.exists()
