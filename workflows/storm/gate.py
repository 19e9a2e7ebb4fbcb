"""The promotion gate: a trained model becomes current only if it beats the constant baseline
by a margin and is not worse than the current model (the champion) on the same rows.

Pure functions of the metrics; the margins are the workload's settings
(`workflows.storm.workload.PROMOTION_GATE`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Gate:
    min_auc_lift: float = 0.05  # the candidate's ROC AUC must be at least this above the baseline's
    max_auc_drop: float = 0.01  # ... and at most this below the champion's


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]  # why the candidate failed the gate (empty if it passed)
    compared_with: str  # "the baseline" or "the baseline and champion <version>"
    notes: tuple[str, ...] = ()  # e.g. why the champion was left out
    forced: bool = False  # promoted by a person (--force-promote) despite the reasons
    force_requested: bool = False  # --force-promote was given (recorded even when not needed)

    @property
    def publishes(self) -> bool:
        return self.promote or self.forced

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "decision": self.verdict}

    @property
    def verdict(self) -> str:
        return "promoted" if self.promote else "forced" if self.forced else "rejected"

    def line(self, candidate: str, champion: str | None) -> str:
        """One line for a person: what happened to ``candidate`` and why."""
        if self.promote:
            return f"model {candidate} promoted: it passed the gate against {self.compared_with}"
        why = "; ".join(self.reasons)
        if self.forced:
            return f"model {candidate} promoted by --force-promote despite the gate: {why}"
        stays = f"model {champion} stays current" if champion else "no model is current"
        return f"model {candidate} refused by the promotion gate: {why} ({stays})"


def decide(
    metrics: dict[str, dict[str, float]], gate: Gate, notes: tuple[str, ...] = (), force: bool = False
) -> Decision:
    """Judge ``metrics["model"]`` against ``metrics["baseline"]`` and, when present,
    ``metrics["champion"]`` (all on the same evaluation rows)."""
    model, baseline = metrics["model"], metrics["baseline"]
    reasons = []
    # Each check passes only when its condition holds (a NaN fails it); 1e-12 absorbs rounding at
    # the margin itself.
    if not model["roc_auc"] >= baseline["roc_auc"] + gate.min_auc_lift - 1e-12:
        reasons.append(
            f"ROC AUC {model['roc_auc']:.3f} is not {gate.min_auc_lift:g} above "
            f"the baseline's {baseline['roc_auc']:.3f}"
        )
    if not model["log_loss"] < baseline["log_loss"]:
        reasons.append(f"log loss {model['log_loss']:.3f} is not below the baseline's {baseline['log_loss']:.3f}")
    compared_with = "the baseline"
    champion = metrics.get("champion")
    if champion is not None:
        compared_with = "the baseline and the champion"
        if not model["roc_auc"] >= champion["roc_auc"] - gate.max_auc_drop - 1e-12:
            reasons.append(
                f"ROC AUC {model['roc_auc']:.3f} is more than {gate.max_auc_drop:g} below the champion's "
                f"{champion['roc_auc']:.3f}"
            )
    return Decision(not reasons, tuple(reasons), compared_with, notes, force and bool(reasons), force)
