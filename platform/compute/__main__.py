"""Pulumi program of the compute stack (one stack per environment: dev, staging, prod)."""

from mlwf.infra.stacks import run

run("compute")
