"""Pulumi program of the network stack (one stack per environment: dev, staging, prod)."""

from mlwf.infra.stacks import run

run("network")
