"""The storm workload's account of its current model for `mlwf status`: read from the model
store's metadata alone (no model is unpickled, no Dask or scikit-learn is imported)."""

from __future__ import annotations

from mlwf import storage
from workflows.storm.workload import MODELS


def summary(data_root: str) -> list[str]:
    """The current model's version, how it was promoted and its metrics against the baseline on
    its evaluation rows; or that there is none."""
    base = storage.join(data_root, MODELS)
    current = storage.current(base)
    if current is None:
        return [f"no current model in {base}"]
    meta = storage.read_json(storage.join(current.url, "metadata.json"))
    metrics, promotion = meta.get("metrics", {}), meta.get("promotion", {})
    model, baseline = metrics.get("model", {}), metrics.get("baseline", {})
    lines = [
        f"current model {current.version} ({promotion.get('decision', 'stored')}): "
        f"ROC AUC {model.get('roc_auc', float('nan')):.3f} against the baseline's "
        f"{baseline.get('roc_auc', float('nan')):.3f}"
    ]
    if meta.get("train_window"):
        lines.append(f"trained on {meta['train_window']}")
    return lines
