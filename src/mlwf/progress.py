"""Progress of a run for the person watching it: one line per stage with its time, and a bar
over the stage's items (files, partitions).

A workload marks its stages (``with progress.stage("prepare") as s``) and their items
(``s.total(n, "files")``, ``s.advance()``), or computes a Dask collection through
`compute`, which counts its partitions as the cluster finishes them. Where the output goes is
the caller's choice, made once at the edge: the CLI installs a `Console`; everywhere else
(a deployment's flow run) stage lines go to the Prefect run's logs, and bars are not drawn.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from mlwf.errors import UserError

log = logging.getLogger(__name__)


class Stage:
    def __init__(self, name: str, reporter: Reporter) -> None:
        self.name = name
        self.done = 0
        self.count: int | None = None
        self.unit = ""
        self.notes: list[str] = []
        self.started = time.perf_counter()
        self._reporter = reporter

    def total(self, count: int, unit: str) -> None:
        self.count, self.unit, self.done = count, unit, 0
        self._reporter.advanced(self)

    def advance(self, done: int | None = None) -> None:
        """One more item done (or ``done`` items in all)."""
        self.done = self.done + 1 if done is None else done
        self._reporter.advanced(self)

    def note(self, text: str) -> None:
        """What the stage's line says after its time ("44,752 events")."""
        self.notes.append(text)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class Reporter:
    """Logs each finished stage; draws no bars (the default outside a terminal)."""

    live = False  # draws bars while a stage runs (then `compute` follows the cluster's progress)

    def advanced(self, stage: Stage) -> None:
        pass

    def finished(self, stage: Stage, failed: bool) -> None:
        _run_logger().info("%s", line(stage, failed))

    def say(self, text: str) -> None:
        _run_logger().info("%s", text)


def _run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The Prefect run's logger inside a flow or task run (its lines reach the run's logs in the
    UI), else this module's."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return log


class Console(Reporter):
    """One line per stage on ``stream``; on a terminal, a bar redrawn in place while it runs."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()

    def advanced(self, stage: Stage) -> None:
        if self.live and stage.count:
            self.stream.write("\r" + bar(stage, self.WIDTH) + "\x1b[K")
            self.stream.flush()

    def finished(self, stage: Stage, failed: bool) -> None:
        prefix = "\r\x1b[K" if self.live else ""
        tail = f"  {bar(stage, self.WIDTH)}" if stage.count else ""
        self.stream.write(f"{prefix}{line(stage, failed)}{tail}\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def bar(stage: Stage, width: int) -> str:
    count = stage.count or 0
    filled = width * stage.done // count if count else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {stage.done}/{count} {stage.unit}"


def line(stage: Stage, failed: bool = False) -> str:
    status = "failed after" if failed else "done in"
    notes = f"  {'; '.join(stage.notes)}" if stage.notes else ""
    return f"{stage.name:<9} {status} {stage.seconds:6.1f} s{notes}"


_reporter: Reporter = Reporter()
_stage: ContextVar[Stage | None] = ContextVar("mlwf_progress_stage", default=None)


def install(reporter: Reporter) -> Reporter:
    """Send this process's stages to ``reporter`` (the CLI's `Console`); returns the previous one."""
    global _reporter
    previous, _reporter = _reporter, reporter
    return previous


@contextmanager
def stage(name: str) -> Iterator[Stage]:
    """A stage of a run: its line is reported when the block ends (also when it fails)."""
    reporter = _reporter
    current = Stage(name, reporter)
    token = _stage.set(current)
    try:
        yield current
    except BaseException:
        reporter.finished(current, failed=True)
        raise
    else:
        reporter.finished(current, failed=False)
    finally:
        _stage.reset(token)


def say(text: str) -> None:
    _reporter.say(text)


def announce_flow_run() -> None:
    """Say where this flow run is in the Prefect UI, when a Prefect API with a UI is configured
    (not for the temporary local server, which has none)."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    if PREFECT_UI_URL.value() and flow_run.get_id():
        say(f"flow run  {flow_run.ui_url}")


def current() -> Stage | None:
    return _stage.get()


def compute(collection: Any, partitions: int) -> Any:
    """Compute a Dask collection, advancing the current stage's bar as its ``partitions`` finish
    on the cluster (the last layer with one task per partition counts). Without a distributed
    client, outside a stage or where no bar is drawn, it is a plain compute."""
    from distributed import default_client

    active = current()
    try:
        client = default_client()
    except ValueError:
        client = None
    if active is None:
        return collection.compute()
    active.total(partitions, "partitions")
    if client is None or not _reporter.live:
        result = collection.compute()
    else:
        future = client.compute(collection)
        client.sync(_partition_bar([future], active, partitions).listen)
        result = future.result()
    active.advance(partitions)
    return result


def _partition_bar(keys: list[Any], stage: Stage, partitions: int) -> Any:
    """distributed's MultiProgressBar drawing into ``stage``: among the task groups with one task
    per partition, the least finished counts (defined here so importing this module imports no
    Dask)."""
    from distributed.diagnostics.progressbar import MultiProgressBar

    class PartitionBar(MultiProgressBar):
        def _draw_bar(self, remaining: dict[str, int], all: dict[str, int], **kwargs: Any) -> None:
            layers = [all[k] - remaining[k] for k in all if all[k] == partitions]
            if layers:
                stage.advance(min(layers))

    return PartitionBar(keys, interval="200ms")


def quiet_runtime(verbose: bool = False) -> None:
    """Offline-friendly Prefect defaults; on the console, Prefect's and Dask's INFO logs only if
    ``verbose``, and user errors not at all (the CLI reports them once, as one line). What
    Prefect sends to its API (the UI's run logs) is unchanged."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LOG_PRINTS", "true")
    # The temporary API server needs more than Prefect's default 20 s on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()

    logging.getLogger("distributed").setLevel(logging.INFO if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:  # Prefect's console handler is the root logger's
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(_not_a_user_error)
            if not verbose:
                handler.setLevel(logging.WARNING)


def _not_a_user_error(record: logging.LogRecord) -> bool:
    """Leave out of the console the records of a run that ended in a user error: Prefect logs the
    exception with its traceback, then the final state, and the CLI prints the one line."""
    if record.exc_info and isinstance(record.exc_info[1], UserError):
        return False
    if record.levelno < logging.ERROR:
        return True
    message = record.getMessage()
    if message.startswith(("Finished in state Refused(", "Finished in state Decayed(")):
        return False  # the CLI prints the state's line
    if "Finished in state Failed" not in message:
        return True
    return not any(f"{name}:" in message for name in _user_error_names(UserError))


def _user_error_names(kind: type[Exception]) -> set[str]:
    names = {kind.__name__}
    for sub in kind.__subclasses__():
        names |= _user_error_names(sub)
    return names
