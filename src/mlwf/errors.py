"""The one exception type that means "the user gave us something wrong".

The CLI prints it as a single line and exits non-zero; everything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """Bad input: a file, a setting or an argument that the user must fix."""


class BadInputFileError(UserError):
    """A data file that cannot be used; `reason` is short enough for a quarantine note."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class RefusedError(UserError):
    """A run did its work but a check refused to publish its result (the CLI exits 3).
    ``details`` is what the run produced, for its summary."""

    def __init__(self, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class DecayedError(RefusedError):
    """A run whose serving model is worse than the constant baseline on the newest rows."""
