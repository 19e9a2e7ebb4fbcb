"""Workloads' own commands, mounted under `mlwf <workload>`: its demo (`mlwf <workload> demo`,
with the flags its ``demo_options`` hook adds to the platform's ``--output``, ``--json`` and
``-v``) and whatever its ``commands`` hook adds (storm: ``validate``, ``bench``). The platform
imports no workload: each is loaded by path from its ``workload.py`` (`mlwf.workloads`).

Today's spellings stay as aliases: `mlwf demo [--workload W] ...` is `mlwf W demo ...` (W by
default: the workload with a demo whose data most others read, the first of them in
producers-first order), and a command that exactly one
workload has is reachable by its name alone (`mlwf validate` is `mlwf storm validate`).

`check_each` is for workload commands that check several inputs, one line each.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mlwf.errors import EXIT_USER_ERROR, UserError, one_line
from mlwf.workloads import Workload, in_order

T = TypeVar("T")


# What the platform parses for every demo (the rest of a demo's arguments are its own flags).
DEMO_PLATFORM_DESTS = frozenset({"command", "workload", "workload_command", "run", "output", "json", "verbose"})


def mount(
    commands: Any,
    workloads: list[Workload],
    parser_class: type[argparse.ArgumentParser],
    run_demo: Callable[[argparse.Namespace], int],
) -> dict[str, set[str]]:
    """Add `mlwf <workload> ...` to ``commands`` (the top-level subparsers) for each workload;
    returns the commands each one has. A workload whose name or commands clash with what is
    there already is one line."""
    platform = set(commands.choices)
    mounted = {}
    for workload in workloads:
        if workload.name in platform:
            raise UserError(f"workload {workload.name!r} has the name of a command of mlwf: rename it")
        parser = commands.add_parser(workload.name, help=f"the {workload.name} workload's own commands")
        own = parser.add_subparsers(dest="workload_command", required=True, parser_class=parser_class)
        parser.set_defaults(workload=workload)
        try:
            if workload.demo is not None:
                demo = own.add_parser(
                    "demo",
                    help=f"run the {workload.name} workload locally",
                    epilog=f"Also spelled: mlwf demo --workload {workload.name} [...]",
                )
                demo.add_argument(
                    "--output", default="mlwf-data", help="data root folder or URL (default: ./mlwf-data)"
                )
                demo.add_argument("--json", action="store_true", help="print the run summary as JSON")
                demo.add_argument(
                    "-v", "--verbose", action="store_true", help="also show Prefect's and Dask's INFO logs"
                )
                demo.set_defaults(run=run_demo)
                if workload.demo_options is not None:
                    workload.load(workload.demo_options)(demo)
            if workload.commands is not None:
                workload.load(workload.commands)(own)
        except argparse.ArgumentError as exc:
            raise UserError(f"the {workload.name} workload's commands clash: {exc}") from None
        mounted[workload.name] = set(own.choices)
    return mounted


def route(
    argv: Sequence[str], platform: set[str], workloads: list[Workload], mounted: dict[str, set[str]]
) -> list[str]:
    """Today's spellings as the mounted commands: `demo [--workload W]` and a command that only
    one workload has."""
    args = list(argv)
    if args[:1] == ["demo"]:
        rest, name = _take_workload(args[1:])
        if name is None:
            with_demo = [w for w in in_order(workloads) if w.demo is not None]
            if not with_demo:
                raise UserError("no workload has a demo")
            name = max(with_demo, key=lambda w: _readers(w, workloads)).name
        if name not in mounted:
            raise UserError(f"unknown workload {name!r} (known: {', '.join(sorted(mounted)) or 'none'})")
        return [name, "demo", *rest]
    if not args or args[0] in platform or args[0] in mounted:
        return args
    owners = [name for name, commands in mounted.items() if args[0] in commands]
    return [owners[0], *args] if len(owners) == 1 else args


def _readers(workload: Workload, workloads: list[Workload]) -> int:
    """How many other workloads read what this one writes (the pipeline others build on)."""
    return sum(1 for other in workloads if other is not workload and set(other.reads) & set(workload.writes))


def _take_workload(args: list[str]) -> tuple[list[str], str | None]:
    rest, name = [], None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":  # what follows is positional, as argparse reads it
            rest += args[index:]
            break
        if arg == "--workload":
            if index + 1 == len(args):
                raise UserError("argument --workload: expected one argument")
            name, index = args[index + 1], index + 2
            continue
        if arg.startswith("--workload="):
            name = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        index += 1
    return rest, name


def check_each(items: Sequence[T], check: Callable[[T], str], say: Callable[[str], None] = print) -> int:
    """``check`` every item: "ok  <what it returns>" or one error line each (on standard error);
    non-zero if any failed."""
    import sys

    failed = 0
    for item in items:
        try:
            say(f"ok  {check(item)}")
        except UserError as exc:
            failed += 1
            print(f"mlwf: error: {one_line(exc)}", file=sys.stderr)
    return EXIT_USER_ERROR if failed else 0
