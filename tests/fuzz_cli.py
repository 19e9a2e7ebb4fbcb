"""What the CLI fuzzer checks for one generated case (tests/test_fuzz_cli.py draws the cases).

Every case runs `mlwf.cli.main` in this process, in a folder of its own, and must end in exit 0,
2 or 3 with no traceback (no exception other than argparse's exit escapes `main`), at most one
error line per input, and nothing half-written: a case that fails leaves its folder as it found
it (a raw zone holds only whole, valid files and quarantined ones with their reason).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlwf.cli import main

ALLOWED_EXITS = {0, 2, 3}


@contextlib.contextmanager
def working_folder(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def snapshot(folder: Path) -> dict[str, int]:
    """Every path under ``folder`` with its size (a folder's is -1; a link's, its own)."""
    return {
        str(path.relative_to(folder)): -1 if path.is_dir() and not path.is_symlink() else path.lstat().st_size
        for path in folder.rglob("*")
    }


def run_cli(argv: Sequence[str], folder: Path) -> tuple[int, str, str]:
    """``mlwf ARGV`` in ``folder``: (exit status, stdout, stderr). An exception other than
    SystemExit propagates: that is the traceback a user would have seen."""
    # Prefect's console handler takes sys.stderr when logging is first set up: set it up against
    # this process's stream, not the case's (later tests in this worker log through it).
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()
    out, err = io.StringIO(), io.StringIO()
    with working_folder(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse: a usage error (2) or --help (0)
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def assert_clean_ending(argv: Sequence[str], folder: Path, inputs: int = 1) -> tuple[int, str, str]:
    """Run the case and check its ending: an allowed exit, no traceback, at most one error line
    per input, and on failure nothing written in ``folder``."""
    before = snapshot(folder)
    code, out, err = run_cli(argv, folder)
    assert code in ALLOWED_EXITS, f"mlwf {' '.join(argv)} exited {code}: {err[-500:]}"
    assert "Traceback" not in out + err, f"mlwf {' '.join(argv)} printed a traceback"
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) <= inputs, f"mlwf {' '.join(argv)}: more than one line per input: {errors[:5]}"
    if code != 0:
        assert snapshot(folder) == before, f"mlwf {' '.join(argv)} failed but wrote into {folder}"
    return code, out, err
