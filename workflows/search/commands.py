"""The search demo's flags (`mlwf search demo`, also spelled `mlwf demo --workload search`)."""

import argparse

from workflows.storm.commands import year


def demo_options(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--split-year", type=year, help="first held-out year (default: the last year in the data)")
