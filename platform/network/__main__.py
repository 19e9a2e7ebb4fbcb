"""Pulumi program of the network stack (one stack per environment of environments/)."""

from mlwf.infra.stacks import run

run("network")
