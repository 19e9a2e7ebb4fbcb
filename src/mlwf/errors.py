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
