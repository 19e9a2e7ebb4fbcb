"""Pulumi program of the prefect-agent stack (one stack per environment: dev, staging, prod)."""

from mlwf.infra.stacks import run

run("prefect-agent")
