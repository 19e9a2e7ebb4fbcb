"""Pulumi program of the storage stack (one stack per environment: dev, staging, prod)."""

from mlwf.infra.stacks import run

run("storage")
