"""The promotion gate's rule, on metrics built so the outcome is known."""

from __future__ import annotations

from workflows.storm.gate import Gate, decide
from workflows.storm.workload import PROMOTION_GATE

BASELINE = {"roc_auc": 0.5, "pr_auc": 0.3, "log_loss": 0.60}


def _m(auc: float, loss: float) -> dict[str, float]:
    return {"roc_auc": auc, "pr_auc": 0.5, "log_loss": loss}


def test_the_margins_are_the_workloads_settings() -> None:
    assert Gate(min_auc_lift=0.05, max_auc_drop=0.01) == PROMOTION_GATE


def test_a_model_clearly_better_than_the_baseline_is_promoted() -> None:
    decision = decide({"model": _m(0.56, 0.59), "baseline": BASELINE}, PROMOTION_GATE)
    assert decision.promote
    assert decision.verdict == "promoted"
    assert decision.line("v2", None) == "model v2 promoted: it passed the gate against the baseline"


def test_too_small_a_lift_or_a_worse_log_loss_is_refused() -> None:
    small = decide({"model": _m(0.549, 0.59), "baseline": BASELINE}, PROMOTION_GATE)
    assert not small.promote
    assert small.reasons == ("ROC AUC 0.549 is not 0.05 above the baseline's 0.500",)
    worse = decide({"model": _m(0.39, 1.40), "baseline": {**BASELINE, "log_loss": 0.41}}, PROMOTION_GATE)
    assert worse.reasons == (
        "ROC AUC 0.390 is not 0.05 above the baseline's 0.500",
        "log loss 1.400 is not below the baseline's 0.410",
    )
    assert worse.line("v2", "v1") == (
        "model v2 refused by the promotion gate: ROC AUC 0.390 is not 0.05 above the baseline's 0.500; "
        "log loss 1.400 is not below the baseline's 0.410 (model v1 stays current)"
    )
    assert "\n" not in worse.line("v2", None)


def test_the_champion_may_be_matched_within_the_margin_but_not_undercut() -> None:
    metrics = {"model": _m(0.80, 0.5), "baseline": BASELINE, "champion": _m(0.81, 0.5)}
    assert decide(metrics, PROMOTION_GATE).promote  # 0.01 below: within the margin
    metrics["champion"] = _m(0.8101, 0.5)
    refused = decide(metrics, PROMOTION_GATE)
    assert refused.reasons == ("ROC AUC 0.800 is more than 0.01 below the champion's 0.810",)
    assert refused.compared_with == "the baseline and the champion"


def test_force_promote_publishes_a_refused_model_and_says_so() -> None:
    forced = decide({"model": _m(0.5, 0.7), "baseline": BASELINE}, PROMOTION_GATE, force=True)
    assert (forced.promote, forced.forced, forced.publishes, forced.verdict) == (False, True, True, "forced")
    assert forced.as_json()["force_requested"] is True
    assert forced.line("v2", "v1").startswith("model v2 promoted by --force-promote despite the gate: ROC AUC")
    # Forcing a model the gate lets through records nothing unusual.
    passed = decide({"model": _m(0.9, 0.3), "baseline": BASELINE}, PROMOTION_GATE, force=True)
    assert (passed.forced, passed.verdict) == (False, "promoted")
    assert passed.as_json()["force_requested"] is True, "the flag is recorded even when it changed nothing"


def test_a_nan_metric_never_passes() -> None:
    assert not decide({"model": _m(float("nan"), 0.5), "baseline": BASELINE}, PROMOTION_GATE).promote
    assert not decide({"model": _m(0.8, float("nan")), "baseline": BASELINE}, PROMOTION_GATE).promote
