"""Pulumi program of the github stack (see mlwf.infra.github_repo)."""

from mlwf.infra.stacks import run

run("github")
