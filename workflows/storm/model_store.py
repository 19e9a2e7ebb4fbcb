"""The model store: versioned models with their metadata, under ``<models>/<name>/<version>/``.

A version is keyed by the training data's version, the training parameters and the code
version, so retraining on the same inputs publishes nothing new. Each version folder holds
``model.pkl`` (the fitted pipeline), ``metadata.json`` (data fingerprint, code and library
versions, metrics, the promotion gate's decision, the input columns scoring needs), the
evaluation plots and ``report.md``. A model the promotion gate refused is stored the same way
under ``<models>/<name>/_rejected/``, where it never becomes current. Pickles run code when
loaded: load only from the platform's own store.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sklearn.pipeline import Pipeline

from mlwf import storage
from mlwf.errors import UserError
from mlwf.versions import code_version, package_versions
from workflows.storm.features import INPUT_COLUMNS
from workflows.storm.gate import Decision
from workflows.storm.model import TrainConfig, TrainResult
from workflows.storm.workload import MODEL_NAME

REJECTED = "_rejected"  # under the model's folder: refused candidates, kept for inspection
IMAGES = ("curves", "drift")  # <name>.png in a version folder


@dataclass(frozen=True)
class StoredModel:
    model: Pipeline
    version: str
    url: str
    metadata: dict[str, Any]


def version_for(data_version: str, config: TrainConfig) -> str:
    """The version a model trained on this data with these parameters by this code gets."""
    return storage.fingerprint(data_version, asdict(config), code_version())


def find(models_url: str, data_version: str, config: TrainConfig) -> StoredModel | None:
    """The current model if it was trained on exactly these inputs (then training is skipped)."""
    current = storage.current(storage.join(models_url, MODEL_NAME))
    if current is None or current.version != version_for(data_version, config):
        return None
    return load(models_url, current.version)


UNGATED = Decision(True, (), "nothing: stored without the promotion gate")


def save(
    models_url: str,
    result: TrainResult,
    data_version: str,
    config: TrainConfig,
    files: dict[str, bytes],
    decision: Decision = UNGATED,
    champion: str | None = None,
    render: Callable[[dict[str, Any]], str] | None = None,
) -> StoredModel:
    """Publish a trained model, its metadata and ``files`` (plots) as a version: the current
    one if ``decision`` publishes it, else a rejected one that never becomes current.
    ``render(metadata)`` is the model's report.md."""
    base = storage.join(models_url, MODEL_NAME)
    if not decision.publishes:
        base = storage.join(base, REJECTED)
    version = version_for(data_version, config)
    metadata = {
        "name": MODEL_NAME,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "data_version": data_version,
        "code_version": code_version(),
        "library_versions": package_versions(),
        "params": asdict(config),
        "input_columns": list(INPUT_COLUMNS),
        "features": list(result.model.named_steps["features"].feature_names_),
        "train_years": result.train_years,
        "train_window": result.train_window,
        "test_years": result.test_years,
        "rows": result.rows,
        "engine": result.engine,
        "metrics": result.metrics,
        "drift": result.drift,
        "promotion": {**decision.as_json(), "champion": champion},
    }

    def write(target: str) -> dict[str, Any]:
        storage.write_bytes(storage.join(target, "model.pkl"), pickle.dumps(result.model))
        for name, data in files.items():
            storage.write_bytes(storage.join(target, name), data)
        if render is not None:
            storage.write_bytes(storage.join(target, "report.md"), render(metadata).encode())
        storage.write_json(storage.join(target, "metadata.json"), metadata)
        return {"metrics": result.metrics, "promotion": decision.verdict}

    published = storage.publish(base, version, write)
    if not published.written:  # refused before on the same inputs: what is stored stays as it was
        metadata = storage.read_json(storage.join(published.url, "metadata.json"))
    return StoredModel(result.model, version, published.url, metadata)


def champion(models_url: str) -> tuple[StoredModel | None, str | None]:
    """The current model, if any, or why it cannot be used (unreadable)."""
    try:
        return load(models_url), None
    except UserError as exc:
        if storage.current(storage.join(models_url, MODEL_NAME)) is None:
            return None, None
        return None, f"the current model cannot be loaded ({exc})"


def load(models_url: str, version: str | None = None) -> StoredModel:
    """The current model (or a given version); a clear error if there is none or it is broken."""
    base = storage.join(models_url, MODEL_NAME)
    if version is None:
        published = storage.current(base)
    else:  # a rejected version can be scored when asked for by name
        published = storage.find(base, version) or storage.find(storage.join(base, REJECTED), version)
    if published is None:
        raise UserError(
            f"no model in {base}: run train first"
            if version is None
            else f"model version {version} not found in {base}"
        )
    version, url = published.version, published.url
    if not storage.exists(storage.join(url, "model.pkl")):
        raise UserError(f"model version {version} in {base} has no model.pkl")
    try:
        metadata = storage.read_json(storage.join(url, "metadata.json"))
        model = _Unpickler(io.BytesIO(storage.read_bytes(storage.join(url, "model.pkl")))).load()
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, AttributeError, ImportError) as exc:
        raise UserError(f"model {url} is unreadable: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, Pipeline) or "features" not in model.named_steps:
        raise UserError(f"model {url} is not a storm-damage pipeline")
    return StoredModel(model, version, url, metadata)


# Models stored before the workload moved out of the platform package name these modules.
_MOVED = {f"mlwf.{m}": f"workflows.storm.{m}" for m in ("features", "encoding", "model", "scorer")}
_MOVED.update({"mlwf.storm.parse": "workflows.storm.parse", "mlwf.storm.schema": "workflows.storm.schema"})


class _Unpickler(pickle.Unpickler):
    """Reads models pickled under the old module paths as well as current ones."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(_MOVED.get(module, module), name)


def images(stored: StoredModel) -> dict[str, bytes]:
    """The plots stored with a model, by name (older models have the curves only)."""
    out = {}
    for name in IMAGES:
        url = storage.join(stored.url, f"{name}.png")
        if storage.exists(url):
            out[name] = storage.read_bytes(url)
    return out


def check_schema(stored: StoredModel, columns: list[str]) -> None:
    """Fail before scoring if the data lacks a column the model was trained on."""
    missing = [c for c in stored.metadata.get("input_columns", []) if c not in columns]
    if missing:
        raise UserError(f"model {stored.version} does not match the data: missing column(s) {', '.join(missing)}")
