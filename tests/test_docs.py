"""The README stays the map: every page of docs/ is linked from it, every relative link of the
README and the pages resolves, and every command of `mlwf` is in its CLI table."""

from __future__ import annotations

import re
from pathlib import Path

from mlwf.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_page_of_docs_is_linked_from_the_readme() -> None:
    linked = set(LINK.findall((REPO / "README.md").read_text()))
    assert {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")} <= linked


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []


def test_every_command_is_in_the_readmes_cli_table() -> None:
    table = (REPO / "README.md").read_text().split("## The CLI", 1)[1]
    _, commands = build_parser()
    missing = [name for name in commands.choices if f"`mlwf {name}" not in table]
    assert missing == []
    assert "`mlwf storm validate" in table, "a workload's own commands too"
