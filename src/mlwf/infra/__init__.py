"""The tooling around the stacks (`mlwf.stacks`): the offline plan (`plan.py`, the same programs
under Pulumi's mocks) and its output, the diff against a git revision, the real deploy through
Pulumi's Automation API."""
