"""Pulumi program of the compute stack (one stack per environment of environments/)."""

from mlwf.infra.stacks import run

run("compute")
