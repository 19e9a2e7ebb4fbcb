"""A workload's own commands are mounted under `mlwf <workload>` from its declaration (storm's
`validate` and `bench`, each demo's own flags); today's spellings stay."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest

from mlwf.cli import build_parser, main
from mlwf.errors import UserError
from mlwf.workload_commands import mount, route
from mlwf.workloads import discover

REPO = Path(__file__).resolve().parents[1]


TINY = {
    "workload.py": """
        from mlwf.workloads import Workload

        WORKLOAD = Workload(
            name="tiny", demo="demo.py:run", demo_options="commands.py:options", commands="commands.py:add"
        )
    """,
    "demo.py": """
        from mlwf.workloads import Demo

        def run(output: str = "mlwf-data", size: int = 1) -> Demo:
            return Demo({"size": size}, [f"size {size} into {output}"])
    """,
    "commands.py": """
        def options(demo):
            demo.add_argument("--size", type=int)

        def add(commands):
            hello = commands.add_parser("hello")
            hello.add_argument("name")
            hello.set_defaults(run=lambda args: f"hello {args.name}")
    """,
}


def test_a_workloads_commands_and_demo_flags_are_mounted_under_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "workflows" / "tiny"
    folder.mkdir(parents=True)
    for name, text in TINY.items():
        (folder / name).write_text(textwrap.dedent(text))
    workloads = discover(tmp_path)
    parser, commands = build_parser()
    platform = set(commands.choices) - {"demo"}
    mounted = mount(commands, workloads, argparse.ArgumentParser, lambda args: 0)
    assert mounted == {"tiny": {"demo", "hello"}}

    hello = parser.parse_args(route(["hello", "you"], platform, workloads, mounted))
    assert (hello.command, hello.workload_command, hello.run(hello)) == ("tiny", "hello", "hello you")
    assert route(["demo", "--size", "3"], platform, workloads, mounted) == ["tiny", "demo", "--size", "3"]
    demo = parser.parse_args(route(["demo", "--workload=tiny", "--size", "3"], platform, workloads, mounted))
    assert (demo.workload.name, demo.size, demo.output, demo.json) == ("tiny", 3, "mlwf-data", False)
    assert route(["plan", "--env", "dev"], platform, workloads, mounted) == ["plan", "--env", "dev"]
    after_dashes = route(["demo", "--", "--workload", "x"], platform, workloads, mounted)
    assert after_dashes == ["tiny", "demo", "--", "--workload", "x"], "after --, nothing is an option"


def test_demo_without_a_workload_runs_the_one_others_build_on() -> None:
    """Here the starter sorts before storm in producers-first order; `mlwf demo` is still storm's
    demo (search reads storm's data). In a platform with the starter alone, it is the starter's."""
    workloads = discover(REPO)
    _, commands = build_parser()
    platform = set(commands.choices) - {"demo"}
    mounted = mount(commands, workloads, argparse.ArgumentParser, lambda args: 0)
    assert route(["demo"], platform, workloads, mounted) == ["storm", "demo"]
    starter = [w for w in workloads if w.name == "starter"]
    assert route(["demo"], platform, starter, {"starter": {"demo"}}) == ["starter", "demo"]


@pytest.mark.parametrize(
    ("declaration", "options", "line"),
    [
        ('name="plan"', "", "workload 'plan' has the name of a command of mlwf: rename it"),
        ('name="tiny", demo="demo.py:run", demo_options="commands.py:options"', 'demo.add_argument("--json")',
         "the tiny workload's commands clash: argument --json: conflicting option string: --json"),
    ],
)  # fmt: skip
def test_a_workload_whose_commands_clash_is_one_line(tmp_path: Path, declaration: str, options: str, line: str) -> None:
    folder = tmp_path / "workflows" / "tiny"
    folder.mkdir(parents=True)
    (folder / "workload.py").write_text(f"from mlwf.workloads import Workload\nWORKLOAD = Workload({declaration})\n")
    (folder / "demo.py").write_text("def run(output='x'):\n    pass\n")
    (folder / "commands.py").write_text(f"def options(demo):\n    {options or 'pass'}\n")
    _, commands = build_parser()
    with pytest.raises(UserError) as clash:
        mount(commands, discover(tmp_path), argparse.ArgumentParser, lambda args: 0)
    assert str(clash.value) == line


def test_a_demo_flag_its_demo_does_not_take_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlwf.cli import _demo

    folder = tmp_path / "workflows" / "tiny"
    folder.mkdir(parents=True)
    for name, text in TINY.items():
        (folder / name).write_text(textwrap.dedent(text).replace("size: int = 1", "seed: int = 0"))
    (workload,) = discover(tmp_path)
    args = argparse.Namespace(workload=workload, output="o", json=False, verbose=False, size=3)
    with pytest.raises(UserError, match=r"^the tiny workload's demo takes no size \(its demo_options add it\)$"):
        _demo(args)


def test_storms_commands_answer_under_both_spellings(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (details,) = sorted(sample_dir.glob("*_d1995_*"))
    assert main(["storm", "validate", str(details)]) == 0
    mounted = capsys.readouterr()
    assert main(["validate", str(details)]) == 0
    assert capsys.readouterr() == mounted
    assert mounted.out.startswith(f"ok  {details} (")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["demo", "--workload", "nope"], "mlwf: error: unknown workload 'nope' (known: search, starter, storm)"),
        (["demo", "--workload"], "mlwf: error: argument --workload: expected one argument"),
        (["storm", "demo", "--years", "1899"], "year 1899 is outside 1950-2100"),
        (["storm"], "the following arguments are required: workload_command"),
    ],
)
def test_a_bad_workload_command_is_one_line(argv: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's own errors
        status = int(exit.code or 0)
    assert status == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert line in error


def test_help_lists_each_workloads_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert "the storm workload's own commands" in listed
    assert "the search workload's own commands" in listed
    with pytest.raises(SystemExit):
        main(["storm", "--help"])
    assert {"demo", "validate", "bench"} <= set(capsys.readouterr().out.split("{", 1)[1].split("}", 1)[0].split(","))
