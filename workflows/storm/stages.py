"""The pipeline's stages as Prefect tasks, shared by the single-stage flows and the pipeline.

Retries are declared here. Every stage publishes through `mlwf.storage.publish`, so a retried
or repeated task never leaves duplicate or partial output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from prefect import get_run_logger

from mlwf import progress, storage
from mlwf.tasks import stage
from workflows.storm import gate, ingest, model_store, prepare, report, score
from workflows.storm.model import TrainConfig, train
from workflows.storm.workload import PROMOTION_GATE
from workflows.storm.zones import Zones


@stage(retries=3, retry_delay_seconds=[2, 10, 30])
def list_source_files(source: str, years: list[int] | None) -> list[ingest.SourceFile]:
    return ingest.list_source(source, years)


@stage(retries=3, retry_delay_seconds=[2, 10, 30], task_run_name="ingest {source.name}")
def ingest_one(source: ingest.SourceFile, raw_url: str) -> tuple[str, str, str]:
    return ingest.ingest_file(source, raw_url)


def ingest_all(source: str, years: list[int] | None, zones: Zones) -> ingest.IngestReport:
    logger = get_run_logger()
    with progress.stage("ingest") as step:
        files = list_source_files(source, years)
        step.total(len(files), "files")
        result = ingest.IngestReport()
        for number, item in enumerate(files, start=1):
            outcome = ingest_one(item, zones.raw)
            result.merge(outcome)
            step.advance()
            logger.info("[%d/%d] %s: %s %s", number, len(files), outcome[0], outcome[1], outcome[2])
        result.releases = ingest.releases(zones.raw)
        older = f", {len(result.superseded)} older than the release held" if result.superseded else ""
        step.note(
            f"{len(result.ingested)} new, {len(result.skipped)} unchanged{older}, {len(result.quarantined)} quarantined"
        )
    return result


@stage(retries=1, retry_delay_seconds=5)
def prepare_curated(zones: Zones) -> storage.Published:
    with progress.stage("prepare") as step:
        published = prepare.prepare(ingest.raw_files(zones.raw), zones.curated)
        line = (
            f"curated version {published.version} ({'new' if published.written else 'unchanged'}): "
            f"{published.meta.get('rows', 0):,} events"
        )
        step.note(line)
    get_run_logger().info(line)
    return published


@dataclass(frozen=True)
class Training:
    """What training decided: the candidate, the model that scores (the candidate if it was
    published, else the champion, if it can score this data) and the gate's verdict in a line."""

    candidate: model_store.StoredModel
    serving: model_store.StoredModel | None
    refused: bool
    line: str
    unscored: str = ""  # why nothing scores, when ``serving`` is None
    decayed: str = ""  # the champion is worse than the baseline on the newest rows: says so, in a line


@stage(retries=1, retry_delay_seconds=5)
def train_model(
    zones: Zones,
    curated: storage.Published,
    config: TrainConfig,
    force_promote: bool = False,
    stop_when_decayed: bool = False,
) -> Training:
    """Train, gate and store a model. A refused candidate leaves the champion serving, unless
    the champion is worse than the baseline on the same (newest) rows and ``stop_when_decayed``."""
    with progress.stage("train") as step:
        training = _train(zones, curated, config, force_promote, stop_when_decayed)
        metrics = training.candidate.metadata["metrics"]
        step.note(
            f"ROC AUC {metrics['model']['roc_auc']:.3f} (baseline {metrics['baseline']['roc_auc']:.3f}): "
            + training.candidate.metadata.get("promotion", {}).get("decision", "stored")
        )
    get_run_logger().info(training.line)  # a refusal also ends the flow run Refused, with this line
    if training.decayed:
        get_run_logger().warning(training.decayed)
    return training


def _train(
    zones: Zones,
    curated: storage.Published,
    config: TrainConfig,
    force_promote: bool = False,
    stop_when_decayed: bool = False,
) -> Training:
    existing = model_store.find(zones.models, curated.version, config)
    if existing is not None:
        return Training(
            existing, existing, False, f"model {existing.version} already trained on these inputs: unchanged"
        )
    champion, note = model_store.champion(zones.models)
    notes = [note] if note else []
    columns = list(prepare.read_curated(curated).columns)
    missing = [] if champion is None else [c for c in _inputs(champion) if c not in columns]
    if champion is not None and missing:
        notes.append(
            f"champion {champion.version} cannot score these events (no column {', '.join(missing)}): "
            "compared with the baseline only"
        )
    rival = champion if champion is not None and not missing else None
    result = train(prepare.read_curated(curated), config, rival.model if rival else None)
    notes.append(f"trained on {result.train_window}")  # the gate says which window it judged
    decision = gate.decide(result.metrics, PROMOTION_GATE, tuple(notes), force_promote)
    images = {
        "curves": report.curves_png(result.test_labels, result.test_scores),
        "drift": report.drift_png(result.drift),
    }
    stored = model_store.save(
        zones.models,
        result,
        curated.version,
        config,
        {f"{name}.png": png for name, png in images.items()},
        decision,
        champion.version if champion else None,
        render=lambda meta: "\n".join(["# Storm damage model", "", *report.model_section(meta, images), ""]),
    )
    line = decision.line(stored.version, champion.version if champion else None)
    if decision.publishes:
        return Training(stored, stored, False, line)
    unscored = (
        ""
        if rival
        else "no model is current"
        if champion is None and not note
        else "the current model cannot score these events"
    )
    decayed = _decayed(rival, result.metrics)
    if decayed and stop_when_decayed:
        return Training(stored, None, True, line, f"{decayed}: scoring stopped", f"{decayed}: scoring stopped")
    if decayed:
        return Training(stored, rival, True, line, unscored, f"{decayed}: it scored anyway (stopping is off)")
    return Training(stored, rival, True, line, unscored)


def _decayed(champion: model_store.StoredModel | None, metrics: dict[str, dict[str, float]]) -> str:
    """A line when the champion ranks the newest rows no better than the constant baseline."""
    if champion is None or "champion" not in metrics:
        return ""
    ours, baseline = metrics["champion"]["roc_auc"], metrics["baseline"]["roc_auc"]
    if ours >= baseline:
        return ""
    return (
        f"current model {champion.version} is worse than the baseline on the newest rows "
        f"(ROC AUC {ours:.3f} against {baseline:.3f})"
    )


def _inputs(stored: model_store.StoredModel) -> list[str]:
    return list(stored.model.named_steps["features"].input_columns())


@stage(retries=1, retry_delay_seconds=5)
def score_events(
    zones: Zones, curated: storage.Published, stored: model_store.StoredModel, years: list[int] | None
) -> storage.Published:
    with progress.stage("score") as step:
        published = score.score(prepare.read_curated(curated), curated.version, stored, zones.scores, years)
        line = f"scores version {published.version}: {published.meta.get('rows', 0):,} events, model {stored.version}"
        step.note(line)
    get_run_logger().info(line)
    return published


@stage(retries=2, retry_delay_seconds=5)
def write_report(
    zones: Zones, training: Training, scores: storage.Published | None, ingested: ingest.IngestReport
) -> storage.Published:
    with progress.stage("report"):
        return _write_report(zones, training, scores, ingested)


def _write_report(
    zones: Zones, training: Training, scores: storage.Published | None, ingested: ingest.IngestReport
) -> storage.Published:
    return report.write_report(
        zones.reports,
        training.candidate.metadata,
        None if scores is None else scores.meta,
        asdict(ingested),
        model_store.images(training.candidate),
        training.serving.version if training.serving else None,
        training.unscored,
        training.decayed,
    )
