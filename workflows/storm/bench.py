"""`mlwf bench`: the platform against the single-machine baseline, measured side by side.

Data: the real NOAA events (the full set from ../shared when present, else the shipped sample),
cleaned once and enlarged by resampling rows with small jitter to each size, written as Parquet
once and cached. Every figure is the median of ``repeats`` runs, with rows/s and peak memory
(summed over the client and worker processes, and the largest one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
import psutil
from distributed import Client, LocalCluster

from workflows.storm import ingest, model_store, prepare, score
from workflows.storm.features import INPUT_COLUMNS
from workflows.storm.model import TrainConfig, fit_classifier, fit_in_memory, predict_proba, with_target
from workflows.storm.parse import clean_details
from workflows.storm.scorer import LinearScorer

ROWS_PER_FILE = 250_000
OUT_OF_CORE_ROWS_PER_FILE = 100_000
# The cleaned real events, cached per curated schema (a new schema has other columns).
BASE = f"base-v{prepare.SCHEMA_VERSION}.parquet"
JITTER = (
    ("wind_speed_kt", 0.05),
    ("hail_size_in", 0.05),
    ("duration_minutes", 0.1),
    ("begin_lat", 0.01),
    ("begin_lon", 0.01),
)
SCORED_COLUMNS = list(dict.fromkeys([*score.KEY_COLUMNS, *INPUT_COLUMNS]))
TARGETS = {
    "scoring_speedup_vs_sklearn": (">=", 1.8),
    "scoring_vs_io_floor": ("<=", 1.3),
    "training_ratio_vs_sklearn": ("<=", 1.2),
    "scaling_growth_per_4x": ("<=", 4.4),
    "orchestration_overhead_s": ("<", 5.0),
    "plan_all_s": ("<", 5.0),
}


@dataclass(frozen=True)
class Sizes:
    scoring: int
    training: int
    scaling_base: int
    out_of_core: int
    worker_memory: str
    repeats: int

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(2_000_000, 500_000, 125_000, 20_000_000, "600MiB", 3)
        return cls(5_000_000, 2_000_000, 500_000, 20_000_000, "600MiB", 3)


class PeakMemory:
    """Samples the RSS of this process and its children (the Dask workers) every 50 ms."""

    def __init__(self) -> None:
        self.total = 0
        self.largest = 0
        self.by_pid: dict[int, int] = {}
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            sizes = []
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    sizes.append(process.memory_info().rss)
                    self.by_pid[process.pid] = max(self.by_pid.get(process.pid, 0), sizes[-1])
            self.total = max(self.total, sum(sizes))
            self.largest = max(self.largest, max(sizes, default=0))
            time.sleep(0.05)

    @contextlib.contextmanager
    def watch(self) -> Iterator[PeakMemory]:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def measure(run: Callable[[int], Any], repeats: int, rows: int) -> dict[str, Any]:
    """Median wall time of ``run(i)`` over ``repeats`` runs after one untimed warm-up run, rows/s
    and peak memory (MiB). The first run of every path here was 1.5-4x slower than the next
    (first reads of the files, first imports and allocations in the workers): a start-up
    cost reported as ``warmup_s``, not throughput."""
    started = time.perf_counter()
    run(-1)
    warmup = time.perf_counter() - started
    times = []
    with PeakMemory().watch() as memory:
        for attempt in range(repeats):
            started = time.perf_counter()
            run(attempt)
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {
        "seconds": round(median, 3),
        "runs": [round(t, 3) for t in times],
        "warmup_s": round(warmup, 3),
        "rows_per_s": round(rows / median),
        "peak_memory_total_mib": round(memory.total / 2**20),
        "peak_memory_largest_mib": round(memory.largest / 2**20),
    }


def base_events(source: Path, cache: Path) -> pd.DataFrame:
    """The real events, cleaned once (cached as Parquet)."""
    path = cache / BASE
    if not path.exists():
        files = [f.url for f in ingest.list_source(str(source))]
        frame = pd.concat([clean_details(prepare.read_raw_file(url)) for url in files], ignore_index=True)
        cache.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path)
    return pd.read_parquet(path)


def enlarged(base: pd.DataFrame, rows: int, cache: Path, rows_per_file: int = ROWS_PER_FILE) -> Path:
    """``rows`` events resampled from the real ones with small jitter, as Parquet files."""
    name = f"rows-{rows}" if rows_per_file == ROWS_PER_FILE else f"rows-{rows}-by-{rows_per_file}"
    folder = cache / f"v{prepare.SCHEMA_VERSION}-{name}"
    if (folder / "_DONE").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(rows)
    for index, start in enumerate(range(0, rows, rows_per_file)):
        count = min(rows_per_file, rows - start)
        part = base.iloc[rng.integers(0, len(base), count)].reset_index(drop=True)
        part["event_id"] = np.arange(start, start + count, dtype="int64")
        for column, scale in JITTER:
            part[column] = part[column] * (1 + rng.normal(0, scale, count))
        part.to_parquet(folder / f"part-{index:04d}.parquet", index=False)
    (folder / "_DONE").write_text("")
    return folder


def _single_process_score(stored: model_store.StoredModel, source: Path, target: Path) -> None:
    """pandas + scikit-learn in one process: the pipeline's own predict_proba."""
    frame = pd.read_parquet(source, columns=SCORED_COLUMNS)
    out = frame[list(score.KEY_COLUMNS)].copy()
    out["p_damage"] = predict_proba(stored.model, frame)
    out["predicted_damage"] = out["p_damage"] >= score.THRESHOLD
    out.to_parquet(target, index=False)


def _single_process_folded(scorer: LinearScorer, source: Path, target: Path) -> None:
    """One process with the platform's folded scorer: what the cluster adds beyond the scorer."""
    score.score_partition(pd.read_parquet(source, columns=SCORED_COLUMNS), scorer).to_parquet(target, index=False)


def _cluster_score(scorer: LinearScorer, source: Path, target: Path) -> None:
    frame = dd.read_parquet(str(source), columns=SCORED_COLUMNS)
    frame.map_partitions(score.score_partition, scorer, meta=score.SCORE_META).to_parquet(
        str(target), write_index=False
    )


def _score_into(scorer: LinearScorer, source: Path, target: Path, attempt: int) -> None:
    _cluster_score(scorer, source, _fresh(target))


def _no_model(frame: pd.DataFrame) -> pd.DataFrame:
    """The scores' schema filled without a model: a float input column stands in for p_damage."""
    out = frame[list(score.KEY_COLUMNS)].reset_index(drop=True)
    out["p_damage"] = frame["begin_lat"].to_numpy()
    out["predicted_damage"] = False
    return out


def _cluster_copy(source: Path, target: Path) -> None:
    """The I/O floor: read what scoring reads and write what it writes, with no model."""
    frame = dd.read_parquet(str(source), columns=SCORED_COLUMNS)
    frame.map_partitions(_no_model, meta=score.SCORE_META).to_parquet(str(target), write_index=False)


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def run_bench(
    quick: bool,
    source: Path,
    cache: Path,
    repo_root: Path,
    log: Callable[[str], None] = print,
    sizes: Sizes | None = None,
) -> dict[str, Any]:
    sizes = sizes or Sizes.for_mode(quick)
    bench_started = time.perf_counter()
    out = cache / "out"
    results: dict[str, Any] = {
        "quick": quick,
        "machine": {"cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},
    }
    log(f"preparing data from {source} ...")
    base = base_events(source, cache)
    results["base_events"] = len(base)

    started = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    results["local_cluster_start_s"] = round(time.perf_counter() - started, 2)
    with cluster, Client(cluster):
        stored = _train_model(cache)
        scorer = LinearScorer.from_pipeline(stored.model)
        scoring = enlarged(base, sizes.scoring, cache)
        log(f"1. batch scoring, {sizes.scoring:,} rows")
        platform = measure(
            lambda i: _cluster_score(scorer, scoring, _fresh(out / "score")), sizes.repeats, sizes.scoring
        )
        single = measure(
            lambda i: _single_process_score(stored, scoring, out / "single.parquet"),
            sizes.repeats,
            sizes.scoring,
        )
        folded = measure(
            lambda i: _single_process_folded(scorer, scoring, out / "single.parquet"),
            sizes.repeats,
            sizes.scoring,
        )
        log("2. the I/O floor")
        floor = measure(lambda i: _cluster_copy(scoring, _fresh(out / "copy")), sizes.repeats, sizes.scoring)
        results["scoring"] = {
            "rows": sizes.scoring,
            "platform": platform,
            "sklearn_single_process": single,
            "single_process_same_scorer": folded,
            "io_floor": floor,
        }
        results["scoring_speedup_vs_sklearn"] = round(single["seconds"] / platform["seconds"], 2)
        results["scoring_vs_io_floor"] = round(platform["seconds"] / floor["seconds"], 2)

        log(f"3. training, {sizes.training:,} rows")
        results["training"] = _training(base, sizes, cache)
        results["training_ratio_vs_sklearn"] = results["training"]["ratio"]

        log("5. scaling")
        scaling = {}
        for factor in (1, 4, 16):
            rows = sizes.scaling_base * factor
            folder = enlarged(base, rows, cache)
            scaling[str(factor)] = measure(partial(_score_into, scorer, folder, out / "scale"), sizes.repeats, rows)
        growth = [scaling["4"]["seconds"] / scaling["1"]["seconds"], scaling["16"]["seconds"] / scaling["4"]["seconds"]]
        results["scaling"] = {
            "base_rows": sizes.scaling_base,
            "by_factor": scaling,
            "growth_per_4x": [round(g, 2) for g in growth],
        }
        results["scaling_growth_per_4x"] = round(max(growth), 2)

    log(f"4. out of core: {sizes.out_of_core:,} rows on workers limited to {sizes.worker_memory} each")
    results["out_of_core"] = _out_of_core(base, scorer, sizes, cache)
    results["out_of_core_ok"] = results["out_of_core"]["ok"]
    log("6. orchestration overhead")
    results["orchestration"] = _orchestration(repo_root, cache)
    results["orchestration_overhead_s"] = results["orchestration"]["overhead_s"]
    log("7. offline plan")
    results["plan"] = _plan_all(repo_root)
    results["plan_all_s"] = results["plan"]["seconds"]
    results["rows"] = {
        "scoring": sizes.scoring,
        "training": sizes.training,
        "out_of_core": sizes.out_of_core,
        "scaling": [sizes.scaling_base * f for f in (1, 4, 16)],
    }
    results["targets"] = {
        key: {"target": f"{op} {value}", "met": _met(results[key], op, value)} for key, (op, value) in TARGETS.items()
    }
    results["targets"]["out_of_core_ok"] = {"target": "True", "met": bool(results["out_of_core_ok"])}
    results["wall_s"] = round(time.perf_counter() - bench_started, 1)
    return results


def _met(value: float, op: str, target: float) -> bool:
    return {"<": value < target, "<=": value <= target, ">=": value >= target}[op]


def _train_model(cache: Path) -> model_store.StoredModel:
    """The model every scenario scores with: trained on the real events (read where they are
    cached rather than shipped inside the graph)."""
    from workflows.storm.model import train

    result = train(dd.read_parquet(str(cache / BASE)), TrainConfig())
    return model_store.save(str(cache / "models"), result, "bench", TrainConfig(), {})


def _training(base: pd.DataFrame, sizes: Sizes, cache: Path) -> dict[str, Any]:
    """The platform's training path (`fit_classifier` on the cluster, engine chosen by size) vs the
    same fit in this one process, on the same events and the same fitted encoder."""
    from workflows.storm.features import FeatureEncoder

    folder = enlarged(base, sizes.training, cache)
    columns = [*INPUT_COLUMNS, "damage_property_usd", "year"]
    frame = dd.read_parquet(str(folder), columns=columns).map_partitions(with_target).persist()
    local = pd.read_parquet(folder, columns=columns).pipe(with_target)
    encoder = FeatureEncoder().fit(frame)
    config = TrainConfig()
    engines = []

    def platform_fit(attempt: int) -> None:
        engines.append(fit_classifier(frame, encoder, config, sizes.training)[1])

    platform = measure(platform_fit, sizes.repeats, sizes.training)
    single = measure(lambda i: fit_in_memory([local], encoder, config), sizes.repeats, sizes.training)
    return {
        "rows": sizes.training,
        "features": len(encoder.feature_names_),
        "platform": platform,
        "platform_engine": engines[0],
        "sklearn_single_process": single,
        "ratio": round(platform["seconds"] / single["seconds"], 2),
    }


def _out_of_core(base: pd.DataFrame, scorer: LinearScorer, sizes: Sizes, cache: Path) -> dict[str, Any]:
    # Smaller files: dask fuses two files into one partition when scoring reads half the columns.
    folder = enlarged(base, sizes.out_of_core, cache, OUT_OF_CORE_ROWS_PER_FILE)
    in_memory = int(dd.read_parquet(str(folder)).memory_usage(deep=True).sum().compute())
    # A worker process with pandas, scikit-learn and dask-ml imported holds ~250 MiB before any
    # data: the limit must leave room above that, or the nanny kills it at start.
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        memory_limit=sizes.worker_memory,
        dashboard_address=None,
    )
    with cluster, Client(cluster) as client:
        limit = sum(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
        before = {w["name"]: w["id"] for w in client.scheduler_info()["workers"].values()}
        error = ""
        with PeakMemory().watch() as memory:
            started = time.perf_counter()
            try:
                _cluster_score(scorer, folder, _fresh(cache / "out" / "ooc"))
            except Exception as exc:  # a failure is a finding to report, not a crash of the bench
                error = f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - started
        after = {w["name"]: w["id"] for w in client.scheduler_info()["workers"].values()}
        # Sampled every 50 ms; the nanny would also have restarted a worker past its limit.
        worker_peaks = {address: memory.by_pid.get(pid, 0) for address, pid in client.run(os.getpid).items()}
    per_worker = limit / len(worker_peaks)
    restarted = sorted(str(name) for name in before if after.get(name) != before[name])
    return {
        "rows": sizes.out_of_core,
        "data_in_memory_mib": round(in_memory / 2**20),
        "worker_memory_limit_total_mib": round(limit / 2**20),
        "data_to_limit_ratio": round(in_memory / limit, 2),
        "seconds": round(seconds, 2),
        "workers_restarted": restarted,
        "peak_memory_largest_mib": round(memory.largest / 2**20),
        "peak_memory_worker_mib": round(max(worker_peaks.values()) / 2**20),
        "worker_memory_limit_mib": round(per_worker / 2**20),
        "error": error,
        "ok": not error and not restarted and in_memory >= 3 * limit and max(worker_peaks.values()) <= per_worker,
    }


def _orchestration(repo_root: Path, cache: Path) -> dict[str, Any]:
    """The pipeline flow on the sample (warm), minus the same stages called without Prefect."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from importlib.resources import files

    from mlwf.dask_cluster import LocalSpec, dask_client
    from workflows.storm.flows import storm_damage_pipeline
    from workflows.storm.model import train
    from workflows.storm.zones import Zones

    sample = str(files("workflows.storm") / "sample_data")
    root = cache / "orchestration"
    storm_damage_pipeline(source=sample, data_root=str(root / "warmup"))  # starts the temporary API
    shutil.rmtree(root / "flow", ignore_errors=True)
    started = time.perf_counter()
    storm_damage_pipeline(source=sample, data_root=str(root / "flow"))
    flow_seconds = time.perf_counter() - started

    zones = Zones(str(root / "plain"))
    shutil.rmtree(root / "plain", ignore_errors=True)
    started = time.perf_counter()
    for item in ingest.list_source(sample):
        ingest.ingest_file(item, zones.raw)
    with dask_client(LocalSpec()):
        curated = prepare.prepare(ingest.raw_files(zones.raw), zones.curated)
        result = train(prepare.read_curated(curated), TrainConfig())
        stored = model_store.save(zones.models, result, curated.version, TrainConfig(), {})
        score.score(prepare.read_curated(curated), curated.version, stored, zones.scores)
    plain_seconds = time.perf_counter() - started
    return {
        "flow_s": round(flow_seconds, 2),
        "same_stages_without_prefect_s": round(plain_seconds, 2),
        "overhead_s": round(flow_seconds - plain_seconds, 2),
    }


def _plan_all(repo_root: Path) -> dict[str, Any]:
    from mlwf.infra.plan import plan_and_check
    from mlwf.settings import load_environments

    started = time.perf_counter()
    plans = plan_and_check(load_environments(repo_root / "environments"), None, repo_root)
    return {"plans": len(plans), "seconds": round(time.perf_counter() - started, 2)}


def table(results: dict[str, Any]) -> str:
    ooc = results["out_of_core"]
    rows = [
        (
            "Batch scoring speedup vs pandas+sklearn",
            "scoring_speedup_vs_sklearn",
            f"{results['rows']['scoring']:,} rows",
        ),
        ("Scoring time / I/O floor", "scoring_vs_io_floor", f"{results['rows']['scoring']:,} rows"),
        ("Training time / scikit-learn", "training_ratio_vs_sklearn", f"{results['rows']['training']:,} rows"),
        (
            "Out-of-core scoring completes, no restart, within the limit",
            "out_of_core_ok",
            f"{results['rows']['out_of_core']:,} rows, {ooc['data_to_limit_ratio']}x the workers' memory; "
            f"worker peak {ooc['peak_memory_worker_mib']} of {ooc['worker_memory_limit_mib']} MiB",
        ),
        (
            "Scaling: time growth per 4x rows",
            "scaling_growth_per_4x",
            " / ".join(f"{rows:,}" for rows in results["rows"]["scaling"]) + " rows",
        ),
        ("Orchestration overhead (s)", "orchestration_overhead_s", "pipeline on the sample, warm"),
        (
            "Offline plan of 16 stacks with policies (s)",
            "plan_all_s",
            "4 stacks x 3 environments, bootstrap x 3 accounts, github",
        ),
    ]
    lines = ["| measure | result | target | met | data |", "|---|---:|---|---|---|"]
    for label, key, data in rows:
        target = results["targets"][key]
        lines.append(
            f"| {label} | {results[key]} | {target['target']} | {'yes' if target['met'] else '**no**'} | {data} |"
        )
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, default=str))
