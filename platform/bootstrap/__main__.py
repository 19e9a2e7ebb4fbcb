"""Pulumi program of the bootstrap stack (see mlwf.infra.bootstrap)."""

from mlwf.infra.stacks import run

run("bootstrap")
