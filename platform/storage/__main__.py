"""Pulumi program of the storage stack (one stack per environment of environments/)."""

from mlwf.infra.stacks import run

run("storage")
