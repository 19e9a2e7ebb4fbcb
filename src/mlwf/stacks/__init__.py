"""The stacks: what is deployed. One ComponentResource module per idea, and the registry
(`programs.py`) that the thin `platform/<stack>/__main__.py` entry points call. Nothing here
plans, diffs or deploys (`mlwf.infra`) or prices (`mlwf.cost`) them."""
