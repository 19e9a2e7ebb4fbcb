"""A property-based fuzzer over the CLI's inputs: settings files (bytes, encodings, YAML shapes,
types, bounds), source folders (names, file kinds, truncated and mixed gzip, folders and dangling
links where files should be, permissions), and argument lists. Every case must end in exit 0, 2
or 3 with no traceback and nothing half-written (`tests/fuzz_cli.py`).

In CI the examples are bounded and derandomized (the same cases every run: a fuzzer must not make
CI fail at random); `uv run nox -s fuzz` explores further with fresh random cases
(MLWF_FUZZ_SCALE multiplies the number of examples; MLWF_FUZZ_RANDOM=1 draws new ones).
"""

from __future__ import annotations

import copy
import gzip
import os
import shutil
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzz_cli import assert_clean_ending
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlwf.errors import UserError
from workflows.storm import ingest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_1994 = REPO / "workflows" / "storm" / "sample_data" / "StormEvents_details-ftp_v1.0_d1994_c20170717.csv.gz"
KNOWN_ENVIRONMENTS = {p.stem for p in (REPO / "environments").glob("*.yaml")} | {"local"}
SCALE = int(os.environ.get("MLWF_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    """Hypothesis settings for one property: ``examples`` cases in CI, times MLWF_FUZZ_SCALE."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=os.environ.get("MLWF_FUZZ_RANDOM") != "1",
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


pytestmark = pytest.mark.reliability


@contextmanager
def fresh_folder() -> Iterator[Path]:
    """A folder of the case's own, with the repository's environments/ (so commands get as far
    as reading settings) and nothing else."""
    folder = Path(tempfile.mkdtemp(prefix="mlwf-fuzz-"))
    try:
        shutil.copytree(REPO / "environments", folder / "environments")
        yield folder
    finally:
        for path in folder.rglob("*"):  # undo the case's permission bits before removing it
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(folder)


# --- settings files ----------------------------------------------------------------------------

DEV = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**13)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
)
yaml_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
)
# Values near each setting's bounds: Fargate sizes, counts, CIDRs, days.
bounds = st.sampled_from(
    [0, 1, -1, 255, 256, 512, 1023, 1024, 1536, 4096, 16384, 30720, 120001, 2**31, "10.0.0.0/8", "10.0.0.0/29",
     "0.0.0.0/0", "fe80::/10", "999.1.1.1/16", "", "true", 1.5, [], {}]
)  # fmt: skip


@st.composite
def mutated_dev(draw: st.DrawFn) -> Any:
    """The real dev settings with one to three fields replaced, dropped or added."""
    document = copy.deepcopy(DEV)
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(document)))
        target, key = document, section
        if isinstance(document[section], dict) and document[section] and draw(st.booleans()):
            target, key = document[section], draw(st.sampled_from(sorted(document[section])))
        action = draw(st.sampled_from(["replace", "bound", "drop", "add"]))
        if action == "drop":
            del target[key]
        elif action == "add":
            target[draw(st.text(min_size=1, max_size=12))] = draw(scalars)
        else:
            target[key] = draw(yaml_values if action == "replace" else bounds)
    return document


def _dump(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True)


settings_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda doc, encoding: _dump(doc).encode(encoding, errors="replace"),
        mutated_dev(),
        st.sampled_from(["utf-8", "utf-16", "utf-8-sig", "latin-1", "cp1252", "utf-32"]),
    ),
    yaml_values.map(lambda value: _dump(value).encode()),
    st.text(max_size=300).map(str.encode),
    st.just(_dump(DEV).encode()),
)


@fuzz(150)
@given(data=settings_bytes, name=st.sampled_from(["dev.yaml", "prod.yaml", "x.yaml", "dev.yml"]))
def test_any_settings_file_ends_cleanly(data: bytes, name: str) -> None:
    with fresh_folder() as folder:
        (folder / name).write_bytes(data)
        code, out, _ = assert_clean_ending(["env", "check", name], folder)
        if code == 0:
            assert out.startswith(f"ok  {name} (")
        if data == _dump(DEV).encode() and name == "dev.yaml":
            assert code == 0, "the real settings pass: the fuzzer can tell a pass from a failure"


# --- source folders ----------------------------------------------------------------------------


def _small_valid() -> bytes:
    with gzip.open(SAMPLE_1994, "rt") as handle:
        lines = [next(handle) for _ in range(6)]
    return gzip.compress("".join(lines).encode(), mtime=0)


VALID = _small_valid()
details_names = st.builds(
    "StormEvents_details-ftp_v1.0_d{}_c{}.csv.gz".format,
    st.integers(1940, 2110),
    st.from_regex(r"\A[0-9]{8}\Z"),
)
other_names = st.text(
    alphabet=string.ascii_letters + string.digits + "._- \u00e9\u4e2d", min_size=1, max_size=40
).filter(lambda name: name not in {".", ".."})
kinds = st.sampled_from(
    ["valid", "truncated", "gzip+text", "two-members", "plain", "empty", "random", "folder", "dangling-link"]
)


@st.composite
def source_folder(draw: st.DrawFn) -> list[tuple[str, str, bytes, int]]:
    """(name, kind, bytes, mode) for each entry of a source folder."""
    entries = {}
    for _ in range(draw(st.integers(0, 5))):
        name = draw(details_names | other_names)
        kind = draw(kinds)
        if kind == "truncated":
            data = VALID[: draw(st.integers(0, len(VALID) - 1))]
        elif kind == "gzip+text":
            data = VALID + draw(st.binary(min_size=1, max_size=20))
        elif kind == "two-members":
            data = VALID + gzip.compress(draw(st.binary(max_size=40)), mtime=0)
        elif kind == "plain":
            data = gzip.decompress(VALID)
        elif kind == "random":
            data = draw(st.binary(max_size=200))
        else:
            data = VALID if kind == "valid" else b""
        entries[name] = (name, kind, data, draw(st.sampled_from([0o644, 0o000, 0o200, 0o444])))
    return list(entries.values())


def _ingest(source: str, raw: str) -> tuple[list[tuple[str, str, str]], str]:
    """The ingest's outcomes, or the one-line user error that stopped it."""
    try:
        return [ingest.ingest_file(item, raw) for item in ingest.list_source(source)], ""
    except UserError as error:
        return [], str(error)


def _lay_out(folder: Path, entries: list[tuple[str, str, bytes, int]]) -> list[str]:
    names = []
    for name, kind, data, mode in entries:
        path = folder / name
        if kind == "folder":
            path.mkdir()
        elif kind == "dangling-link":
            path.symlink_to(folder / "nowhere" / name)
        else:
            path.write_bytes(data)
            path.chmod(mode)  # as root (CI) reading ignores it; as a user it is an unreadable file
        names.append(str(path))
    return names


@fuzz(40)
@given(entries=source_folder())
def test_any_source_folder_ends_cleanly_and_the_raw_zone_holds_only_whole_files(
    entries: list[tuple[str, str, bytes, int]],
) -> None:
    with fresh_folder() as folder:
        source = folder / "source"
        source.mkdir()
        paths = _lay_out(source, entries)
        if paths:
            assert_clean_ending(["validate", *paths], folder, inputs=len(paths))
        # The ingest stage's own code (what `mlwf demo` and the storm-ingest flow run for each file).
        raw = folder / "raw"
        outcomes, error = _ingest(str(source), str(raw))
        assert "\n" not in error
        assert {status for _, status, _ in outcomes} <= {"ingested", "skipped", "superseded", "quarantined"}
        for path in raw.rglob("*") if raw.exists() else []:
            assert not path.name.startswith(".tmp-"), f"a partial write was left: {path}"
            if path.parent == raw and path.is_file():
                assert ingest.validate_details(path.name, path.read_bytes()) > 0
            elif path.is_file() and not path.name.endswith(".reason.txt"):
                assert (path.parent / f"{path.name}.reason.txt").read_text().strip()


# --- arguments ---------------------------------------------------------------------------------

garbage = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=14
).filter(lambda text: "://" not in text)  # nothing here may reach a network
unknown_environment = garbage.filter(lambda text: text not in KNOWN_ENVIRONMENTS)
year_like = st.integers(-5, 3000).map(str) | garbage
flag = st.sampled_from


@st.composite
def arguments(draw: st.DrawFn) -> list[str]:
    """An argument list for one command. Anything that would start real work (a run, a plan, a
    rehearsal, a benchmark, a price-list download) is kept from succeeding: the source does not
    exist, the environment is unknown."""
    env = ["--env", draw(unknown_environment)]
    options: list[list[str]] = []
    command = draw(
        st.sampled_from(["demo", "env check", "env list", "validate", "plan", "cost", "reap", "rehearse", "deploy",
                         "flows deploy", "flows smoke", "affected", "image tag", "junk"])
    )  # fmt: skip
    if command == "demo":
        head = ["demo", "--source", "no-such-source"]
        options = [
            ["--workload", draw(flag(["storm", "search"]) | garbage)],
            ["--years", *draw(st.lists(year_like, min_size=0, max_size=3))],
            ["--split-year", draw(year_like)],
            ["--train-years", draw(st.builds("{}-{}".format, year_like, year_like) | garbage)],
            ["--engine", draw(flag(["auto", "sklearn", "dask-ml"]) | garbage)],
            ["--output", draw(garbage)],
            [draw(flag(["--json", "-v", "--force-promote", "--bogus"]))],
        ]
    elif command in ("env check", "validate"):
        head = [*command.split(), *draw(st.lists(garbage, max_size=3))]
    elif command in ("plan", "cost"):
        head = [command, *env]
        options = [["--stack", draw(garbage)], ["--json"], ["--format", draw(flag(["text", "markdown"]) | garbage)]]
        if command == "plan":
            options.append(["--program", draw(garbage)])
    elif command == "reap":
        head = ["reap", *env]
        durations = st.sampled_from(["90m", "6h", "31d", "-1h", "", "1e400h", "nan"])
        options = [["--older-than", draw(garbage | durations)], ["--dry-run"]]
    elif command in ("rehearse", "deploy", "flows deploy", "flows smoke"):
        head = [*command.split(), *env]
        options = [["--keep"], ["--stack", draw(garbage)], ["--mode", draw(flag(["up", "drift"]) | garbage)]]
    elif command == "affected":
        head = ["affected", "--base", draw(garbage.filter(lambda text: text.startswith("no-such-ref-") or not text))]
    elif command == "junk":
        head = draw(st.lists(garbage, max_size=4))
    else:
        head = command.split()
    chosen = draw(st.lists(st.sampled_from(options), max_size=3, unique_by=id)) if options else []
    return head + [part for option in chosen for part in option]


@fuzz(100)
@given(argv=arguments())
def test_any_argument_list_ends_cleanly(argv: list[str]) -> None:
    # env check and validate take several inputs: one line for each at most.
    files = argv[2:] if argv[:2] == ["env", "check"] else argv[1:] if argv[:1] == ["validate"] else []
    inputs = max(1, len(files))
    with fresh_folder() as folder:
        assert_clean_ending(argv, folder, inputs)


def test_the_fuzzer_finds_the_utf8_traceback_when_its_fix_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-break the first case of issue #29 (settings read as text, a UnicodeDecodeError escapes):
    the settings property must fail."""
    from mlwf import settings as settings_module

    real = settings_module.load_settings

    def read_as_text_first(path: str | Path) -> Any:
        Path(path).read_text()  # the old read: raises UnicodeDecodeError on bytes that are not UTF-8
        return real(path)

    monkeypatch.setattr(settings_module, "load_settings", read_as_text_first)
    with pytest.raises(UnicodeDecodeError):
        test_any_settings_file_ends_cleanly()
