"""Bad input that used to reach a traceback: each is one line naming the file, folder or cluster
and what is wrong, exit 2, and nothing written (the cases of issue #29; the fuzzer in
test_fuzz_cli.py keeps the rest so)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from test_report import _meta

from mlwf import storage
from mlwf.cli import main
from mlwf.errors import UserError
from workflows.storm import ingest
from workflows.storm.report import markdown_summary

OLD_1995 = "StormEvents_details-ftp_v1.0_d1995_c20170522.csv.gz"
NEW_1995 = "StormEvents_details-ftp_v1.0_d1995_c20990101.csv.gz"
REAL_1994 = "StormEvents_details-ftp_v1.0_d1994_c20170717.csv.gz"

pytestmark = pytest.mark.reliability


def one_line_error(*argv: str) -> str:
    """``mlwf ARGV`` in this process: it must exit 2 with one error line; that line's message."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # against this process's stderr, not the case's (see fuzz_cli.run_cli)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    assert code == 2, err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, err.getvalue()
    assert lines[0].startswith("mlwf: error: ")
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return lines[0].removeprefix("mlwf: error: ")


def test_a_settings_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "dev.yaml"
    bad.write_bytes(b"name: dev\ntier: \xff\xfe\x00 dev\n")
    assert one_line_error("env", "check", str(bad)) == (f"{bad}: not UTF-8 text (byte 0xff at offset 16)")


def test_a_folder_named_like_a_details_file_is_one_line_and_writes_nothing(sample_dir: Path, tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    (source / OLD_1995).mkdir(parents=True)
    (source / REAL_1994).write_bytes((sample_dir / REAL_1994).read_bytes())
    message = one_line_error("demo", "--source", str(source), "--output", str(out))
    assert message == f"{source / OLD_1995}: a folder named like a details file, not a file"
    assert not out.exists()
    # Named as the source itself, too.
    message = one_line_error("demo", "--source", str(source / OLD_1995), "--output", str(out))
    assert message == f"{source / OLD_1995}: a folder named like a details file, not a file"
    assert not out.exists()


def test_a_deleted_working_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    message = one_line_error("demo", "--output", "out")
    assert message == "the working folder no longer exists (deleted after this shell entered it)"
    with pytest.raises(UserError) as caught:
        storage.check_writable("out")
    assert str(caught.value) == "output out: the working folder it is relative to no longer exists"
    monkeypatch.chdir(tmp_path)
    assert list(tmp_path.iterdir()) == []


def _ingest(source: Path, raw: Path) -> ingest.IngestReport:
    report = ingest.IngestReport()
    for item in ingest.list_source(str(source)):
        report.merge(ingest.ingest_file(item, str(raw)))
    report.releases = ingest.releases(str(raw))
    return report


def test_an_older_release_after_a_newer_one_is_never_written_and_the_report_says_so(
    sample_dir: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir()
    old.mkdir()
    (new / NEW_1995).write_bytes((sample_dir / OLD_1995).read_bytes())
    (old / OLD_1995).write_bytes((sample_dir / OLD_1995).read_bytes())
    (old / REAL_1994).write_bytes((sample_dir / REAL_1994).read_bytes())
    _ingest(new, raw)
    report = _ingest(old, raw)
    assert report.superseded == {OLD_1995: NEW_1995}
    assert report.ingested == [REAL_1994]
    assert sorted(p.name for p in raw.iterdir()) == [REAL_1994, NEW_1995], "the older release is not in the raw zone"
    assert report.releases == {1994: REAL_1994, 1995: NEW_1995}
    markdown = markdown_summary(
        _meta("sklearn", "auto"), None, {"superseded": report.superseded, "releases": report.releases}, {}
    )
    assert f"- not used `{OLD_1995}`: older than the release held, `{NEW_1995}`" in markdown
    assert "- Releases used (data year, NCEI creation date): 1994 `20170717`, 1995 `20990101`" in markdown


def test_releases_read_back_from_json_keep_their_year_order() -> None:
    """A run's summary travels as JSON, where the years become strings."""
    lines = markdown_summary(
        _meta("sklearn", "auto"), None, {"releases": {"1999": "x_c20200101.csv.gz", "1995": "y_c20170522.csv.gz"}}, {}
    )
    assert "1995 `20170522`, 1999 `20200101`" in lines


def test_a_missing_ecs_cluster_is_a_user_error_never_retried() -> None:
    """The cluster case end to end is in test_dask_cluster.py (moto); its error is a user error, so the
    CLI prints it as one line and exits 2, and a stage does not retry it."""
    from mlwf.dask_cluster import ClusterMissingError, ClusterStartError
    from mlwf.tasks import worth_retrying

    assert issubclass(ClusterMissingError, UserError)
    assert issubclass(ClusterMissingError, ClusterStartError)

    class Failed:
        def result(self) -> None:
            raise ClusterMissingError("the Dask cluster could not start: ECS cluster x does not exist")

    assert worth_retrying(None, None, Failed()) is False
