"""The Pulumi side of the platform: one ComponentResource module per stack, the stack registry
(`stacks.py`) that the thin `platform/<stack>/__main__.py` entry points call, and the offline
plan (`plan.py`) that runs those same programs under Pulumi's mocks."""
