"""The one exception type that means "the user gave us something wrong".

The CLI prints it as a single line and exits non-zero; everything else is a bug and keeps
its traceback.
"""

EXIT_USER_ERROR = 2
EXIT_REFUSED = 3  # the run finished, but a check (the promotion gate) refused to publish its result


def one_line(error: Exception | str) -> str:
    """An error's message on one line: a line break or control character inside it (a name from
    a file or an argument) is shown escaped, as Python writes it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(error))


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
