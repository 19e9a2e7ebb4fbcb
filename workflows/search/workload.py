"""The search workload's declaration."""

from mlwf.workloads import Deployment, Workload
from workflows.storm.workload import CURATED

REPORTS = "reports/damage_search"

WORKLOAD = Workload(
    name="search",
    reads=(CURATED,),  # the storm workload's curated events
    writes=(REPORTS,),
    deployments=(Deployment("flows.py:damage_model_search"),),
    # small: the rehearsal checks the path, not the model
    rehearsal=(Deployment("flows.py:damage_model_search", parameters={"max_rows": 20_000, "c_values": [0.01, 1.0]}),),
    demo="demo.py:run",
    demo_options="commands.py:demo_options",
)
