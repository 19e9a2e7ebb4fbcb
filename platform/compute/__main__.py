"""Pulumi program of the compute stack (one stack per environment of environments/)."""

from mlwf.stacks.programs import run

run("compute")
