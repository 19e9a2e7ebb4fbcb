"""A pytest plugin that keeps test IDs readable and the same on every collection.

pytest-xdist's workers each collect the suite and must agree on every test ID. A parameter built
at collection time from bytes (gzip's header carries the current time) or from anything else that
changes between runs puts that value in the ID; when two workers collect in different seconds the
whole run errors before a test runs, at random. Such IDs are unreadable too. So a test whose
parameter ID holds escaped bytes, non-ASCII or control characters, or runs past 200 characters,
is replaced by a stand-in with a stable ID (every worker then collects the same tests) that
fails, saying why: name the case with `pytest.param(..., id=...)` or `ids=` instead.
"""

from __future__ import annotations

import re

import pytest

# What pytest writes for bytes and for non-printable or non-ASCII text (`\x1f`, `\u00e9`), and raw
# characters outside printable ASCII.
UNREADABLE = re.compile(r"\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|[^\x20-\x7e]")
LONGEST_PARAMETER_ID = 200


def unreadable_reason(parameter_id: str) -> str | None:
    if UNREADABLE.search(parameter_id):
        return "holds escaped bytes or non-printable characters"
    if len(parameter_id) > LONGEST_PARAMETER_ID:
        return f"is longer than {LONGEST_PARAMETER_ID} characters"
    return None


class UnreadableId(pytest.Item):
    """Stands in for a test whose ID is not readable text: a stable ID, and a failure naming why."""

    def __init__(self, *, reason: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.reason = reason

    def runtest(self) -> None:
        pytest.fail(self.reason, pytrace=False)

    def reportinfo(self) -> tuple[str, int, str]:
        return str(self.path), 0, self.name


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for index, item in enumerate(items):
        callspec = getattr(item, "callspec", None)
        reason = callspec and unreadable_reason(callspec.id)
        if reason and isinstance(item, pytest.Function):
            items[index] = UnreadableId.from_parent(
                item.parent,
                name=f"{item.originalname}[unreadable-parameter-id-{index}]",
                reason=f"{item.nodeid[:120]}: its parameter ID {reason}; name the case with pytest.param(id=...)",
            )
