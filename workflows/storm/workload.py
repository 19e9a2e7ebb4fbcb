"""The storm workload's declaration: what the platform deploys, grants and demos for it."""

from mlwf.workloads import Deployment, Workload
from workflows.storm.gate import Gate

# Where it writes under an environment's data root (the stacks grant exactly these).
RAW = "raw/storm_events"
CURATED = "curated/storm_events"
MODEL_NAME = "storm-damage"
MODELS = f"models/{MODEL_NAME}"
SCORES = "scores/storm_damage"
REPORTS = "reports/storm_damage"
SAMPLE = "workflows/storm/sample_data"  # three real NOAA years, relative to the working directory
# A trained model becomes current only if its ROC AUC is 0.05 above the constant baseline's,
# its log loss below the baseline's, and its ROC AUC at most 0.01 below the current model's.
PROMOTION_GATE = Gate(min_auc_lift=0.05, max_auc_drop=0.01)

WORKLOAD = Workload(
    name="storm",
    writes=(RAW, CURATED, MODELS, SCORES, REPORTS),
    cluster_writes=(CURATED, SCORES),  # Parquet written by the workers; the rest by the flow process
    deployments=(
        Deployment("flows.py:storm_damage_pipeline", cron="0 6 * * 1"),  # weekly, Monday 06:00 UTC
        Deployment("flows.py:ingest_flow"),
        Deployment("flows.py:prepare_flow"),
        Deployment("flows.py:train_flow"),
        Deployment("flows.py:score_flow"),
    ),
    smoke=Deployment("flows.py:ingest_flow", parameters={"source": SAMPLE, "years": [1995]}),
    rehearsal=(Deployment("flows.py:storm_damage_pipeline", parameters={"source": SAMPLE}),),
    demo="demo.py:run",
    demo_options="commands.py:demo_options",
    commands="commands.py:add_commands",  # mlwf storm validate, mlwf storm bench
    status="model_status.py:summary",
)
