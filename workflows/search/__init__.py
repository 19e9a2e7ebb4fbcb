"""The damage-model search workload: a dask-ml grid search over the regularisation and class
weighting of scikit-learn's logistic regression on the storm features, spread over the run's
cluster, with its own flow, deployment and report. A second tenant of the platform, added in
this folder only (see docs/adding-a-flow.md)."""
