"""Pulumi program of the bootstrap stack (see mlwf.stacks.bootstrap)."""

from mlwf.stacks.programs import run

run("bootstrap")
