"""The starter workload: the smallest complete workload, one flow that runs a Dask computation on
its run's cluster and writes the result. A generated platform without the example workloads
starts from it (copier.yml); copy the folder to begin a new workload (docs/adding-a-flow.md)."""
