"""The storm workload's own commands (`mlwf storm validate`, `mlwf storm bench`) and its demo's
flags (`mlwf storm demo`, also spelled `mlwf demo`), mounted by the platform
(`mlwf.workload_commands`). Only arguments are checked here; the work is imported when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlwf.errors import UserError
from mlwf.workload_commands import check_each
from workflows.storm.options import ENGINES, FIRST_YEAR, LAST_YEAR


def year(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year") from None
    if not FIRST_YEAR <= value <= LAST_YEAR:
        raise argparse.ArgumentTypeError(
            f"year {value} is outside {FIRST_YEAR}-{LAST_YEAR} (the Storm Events database starts in {FIRST_YEAR})"
        )
    return value


def year_range(text: str) -> str:
    first, _, last = text.partition("-")
    year(first)
    year(last or first)
    if int(first) > int(last or first):
        raise argparse.ArgumentTypeError(f"{text!r}: the first year is after the last")
    return text


def demo_options(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--source", help="folder or fsspec URL of StormEvents_details files (default: shipped sample)")
    demo.add_argument("--years", type=year, nargs="+", metavar="YEAR", help="only these data years")
    demo.add_argument("--split-year", type=year, help="first test year (default: the last year in the data)")
    demo.add_argument("--engine", choices=ENGINES, help="training engine (default: auto, by data size)")
    demo.add_argument(
        "--train-years",
        type=year_range,
        metavar="FIRST-LAST",
        help="training years, e.g. 1996-2018 (default: the evaluation years' coverage era)",
    )
    demo.add_argument(
        "--force-promote",
        action="store_true",
        help="publish the trained model even if the promotion gate refuses it (recorded in its metadata)",
    )


def add_commands(commands: Any) -> None:
    validate = commands.add_parser("validate", help="check NOAA details files completely; write nothing")
    validate.add_argument("files", nargs="+", help="StormEvents_details-*.csv.gz paths or URLs")
    validate.set_defaults(run=lambda args: validate_files(args.files))

    bench = commands.add_parser("bench", help="measure the platform against single-process pandas + scikit-learn")
    bench.add_argument("--quick", action="store_true", help="smaller sizes (2M rows for scoring); what CI may run")
    bench.add_argument("--json", type=Path, metavar="FILE", help="write every figure to this JSON file")
    bench.add_argument(
        "--source", type=Path, help="NOAA files (default: ../shared/data/noaa-storm-events, else the sample)"
    )
    bench.add_argument(
        "--cache", type=Path, help="where the enlarged data is built once and kept (default: ./.bench-cache)"
    )
    bench.set_defaults(run=run_bench)


def validate_files(files: list[str]) -> int:
    from mlwf import storage
    from workflows.storm.ingest import validate_details

    def check(url: str) -> str:
        name = url.rstrip("/").rsplit("/", 1)[-1] or repr(url)
        try:
            rows = validate_details(name, storage.read_bytes(url))
        except OSError as exc:
            raise UserError(f"{name}: cannot read ({exc.strerror or exc})") from None
        return f"{url} ({rows:,} events)"

    return check_each(files, check)


def run_bench(args: argparse.Namespace) -> int:
    from importlib.resources import files

    from mlwf.progress import quiet_runtime
    from mlwf.workloads import checkout_root
    from workflows.storm import bench

    quiet_runtime()
    repo = checkout_root()
    shared = repo.parent / "shared" / "data" / "noaa-storm-events"
    source = args.source or (shared if shared.is_dir() else Path(str(files("workflows.storm") / "sample_data")))
    results = bench.run_bench(args.quick, source, args.cache or repo / ".bench-cache", repo)
    print()
    print(bench.table(results))
    print(f"\nthe whole run took {results['wall_s']} s ({'quick' if args.quick else 'full'} sizes)")
    if args.json:
        bench.write_json(results, args.json)
        print(f"\nall figures: {args.json}")
    return 0
