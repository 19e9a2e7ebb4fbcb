"""Pulumi program of the network stack (one stack per environment of environments/)."""

from mlwf.stacks.programs import run

run("network")
