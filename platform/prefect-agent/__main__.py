"""Pulumi program of the prefect-agent stack (one stack per environment of environments/)."""

from mlwf.infra.stacks import run

run("prefect-agent")
