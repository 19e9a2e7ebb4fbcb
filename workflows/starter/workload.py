"""The starter workload's declaration."""

from mlwf.workloads import Deployment, Workload

RESULTS = "results/starter"  # under the environment's data root; the stacks grant exactly this

WORKLOAD = Workload(
    name="starter",
    writes=(RESULTS,),
    deployments=(Deployment("flows.py:starter_flow"),),
    rehearsal=(Deployment("flows.py:starter_flow", parameters={"size": 200_000}),),
    demo="demo.py:run",
)
