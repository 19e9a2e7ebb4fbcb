"""Pulumi program of the prefect-agent stack (one stack per environment of environments/)."""

from mlwf.stacks.programs import run

run("prefect-agent")
