"""Prefect flows of the storm-damage workload. Each flow is a thin composition of small tasks;
the logic they call lives in the `mlwf` package and is tested without Prefect."""
