"""The collection guard (tests/collection_guard.py): a parameter whose ID could change between two
collections becomes a test with a stable ID that fails naming the problem, instead of failing a
whole CI run at random when pytest-xdist's workers disagree."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).parent


def _pytest(tmp_path: Path, body: str, *args: str) -> str:
    (tmp_path / "test_case.py").write_text(textwrap.dedent(body))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "collection_guard", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        env={"PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


TIME_DEPENDENT = """
    import gzip, pytest

    @pytest.mark.parametrize("data", [gzip.compress(b"x" * 100)])  # the header holds the time
    def test_reads(data):
        pass

    def test_other():
        pass
    """


def test_a_time_dependent_gzip_parameter_fails_naming_the_test(tmp_path: Path) -> None:
    output = _pytest(tmp_path, TIME_DEPENDENT, "-n", "2")
    assert output.startswith("exit 1\n")
    assert "Different tests were collected" not in output
    assert "FAILED test_case.py::test_reads[unreadable-parameter-id-0]" in output
    assert "test_case.py::test_reads[\\x1f\\x8b" in output
    assert "its parameter ID holds escaped bytes or non-printable characters" in output
    assert "1 failed, 1 passed" in output


def test_the_stand_in_id_is_the_same_on_every_collection(tmp_path: Path) -> None:
    first = _pytest(tmp_path, TIME_DEPENDENT, "--collect-only")
    second = _pytest(tmp_path, TIME_DEPENDENT, "--collect-only")  # gzip's clock has moved on
    assert "test_case.py::test_reads[unreadable-parameter-id-0]" in first
    assert first.splitlines()[:3] == second.splitlines()[:3]


def test_named_cases_and_plain_values_pass(tmp_path: Path) -> None:
    output = _pytest(
        tmp_path,
        """
        import gzip, pytest

        @pytest.mark.parametrize(
            ("case", "data", "limit"),
            [pytest.param("gzip", gzip.compress(b"x"), 3, id="gzip"), ("text", b"BEGIN,END", 4.5)],
        )
        def test_reads(case, data, limit):
            pass
        """,
        "--collect-only",
    )
    assert output.startswith("exit 0\n"), output
    assert "test_case.py::test_reads[gzip]\n" in output
    assert "test_case.py::test_reads[text-BEGIN,END-4.5]\n" in output


def test_non_ascii_and_overlong_ids_fail(tmp_path: Path) -> None:
    output = _pytest(
        tmp_path,
        """
        import pytest

        @pytest.mark.parametrize("word", ["caf\\u00e9", pytest.param("x", id="x" * 300)])
        def test_word(word):
            pass
        """,
    )
    assert output.startswith("exit 1\n")
    assert "test_case.py::test_word[caf\\xe9]: its parameter ID holds escaped bytes" in output
    assert "its parameter ID is longer than 200 characters" in output
    assert "2 failed" in output
