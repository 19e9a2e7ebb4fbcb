"""Pulumi program of the github stack (see mlwf.stacks.github_repo)."""

from mlwf.stacks.programs import run

run("github")
