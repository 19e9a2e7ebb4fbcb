"""Pulumi program of the storage stack (one stack per environment of environments/)."""

from mlwf.stacks.programs import run

run("storage")
