"""Ingest in detail: the exact reason a bad details file gives, what a good one may look like,
the source listing (order, years, errors on one line), the raw zone's one file per year and
the quarantine note, on a local folder, over HTTP and on S3 (the moto server)."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import shutil
from pathlib import Path

import boto3
import pytest

from mlwf import storage
from mlwf.errors import BadInputFileError, UserError
from workflows.storm import ingest
from workflows.storm.schema import DETAILS_COLUMNS, REQUIRED_COLUMNS

OLD_1995 = "StormEvents_details-ftp_v1.0_d1995_c20170522.csv.gz"
NEW_1995 = "StormEvents_details-ftp_v1.0_d1995_c20990101.csv.gz"
REAL_1994 = "StormEvents_details-ftp_v1.0_d1994_c20170717.csv.gz"
REAL_1993 = "StormEvents_details-ftp_v1.0_d1993_c20170717.csv.gz"
COLUMNS = len(DETAILS_COLUMNS)  # 51 in format v1.0


def _event(**cells: str) -> dict[str, str]:
    """One event with its key columns set, every other cell blank (as many are in old years)."""
    base = {"EVENT_ID": "1", "BEGIN_YEARMONTH": "199505", "END_YEARMONTH": "199505", "YEAR": "1995"}
    return {**dict.fromkeys(DETAILS_COLUMNS, ""), **base, **cells}


def _csv(events: list[dict[str, str]], columns: tuple[str, ...] = DETAILS_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(events)
    return buffer.getvalue()


def _gz(text: str, encoding: str = "utf-8") -> bytes:
    return gzip.compress(text.encode(encoding), mtime=0)


def _cases(*rows: tuple[object, ...]) -> list[object]:
    """Parameter rows named by their first item, the case: file bytes never become a test ID."""
    return [pytest.param(*row, id=str(row[0])) for row in rows]


def _reason(data: bytes) -> str:
    with pytest.raises(BadInputFileError) as caught:
        ingest.validate_details("x.csv.gz", data)
    assert caught.value.name == "x.csv.gz"
    assert str(caught.value) == f"x.csv.gz: {caught.value.reason}"
    return caught.value.reason


def _put(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


# --- validate_details ---------------------------------------------------------------------


def test_a_real_file_is_counted_whole(sample_dir: Path) -> None:
    # 20,461 events in 1995, as the data's README gives it.
    assert ingest.validate_details(OLD_1995, (sample_dir / OLD_1995).read_bytes()) == 20461


@pytest.mark.parametrize(
    ("case", "data", "events"),
    _cases(
        ("three events", _gz(_csv([_event(EVENT_ID=str(i)) for i in range(3)])), 3),
        ("only the required columns", _gz(_csv([_event()], REQUIRED_COLUMNS)), 1),
        ("columns in another order", _gz(_csv([_event()], tuple(reversed(DETAILS_COLUMNS)))), 1),
        ("latin-1 text (older files)", _gz(_csv([_event(EVENT_NARRATIVE="Caf\xe9 roof lost")]), "latin-1"), 1),
        ("utf-8 text", _gz(_csv([_event(EVENT_NARRATIVE="Caf\xe9 roof lost")])), 1),
        ("integers padded with spaces", _gz(_csv([_event(EVENT_ID=" 7 ", YEAR="1995 ")])), 1),
        (
            "quoted narrative with commas, quotes and a line break",
            _gz(_csv([_event(EVENT_NARRATIVE='Wind, "severe",\nroofs off'), _event(EVENT_ID="2")])),
            2,
        ),
    ),
)
def test_good_files_are_accepted_with_their_event_count(case: str, data: bytes, events: int) -> None:
    assert ingest.validate_details("x.csv.gz", data) == events


def _ragged() -> bytes:
    good = _csv([_event(EVENT_ID=str(i)) for i in range(4)]).splitlines(keepends=True)
    return _gz("".join([*good[:3], "1,2,3\n", *good[3:]]))


def _unterminated_quote() -> bytes:
    text = _csv([_event()]).rstrip("\n")
    return _gz(text[: text.rindex(",")] + ',"no closing quote\n')


@pytest.mark.parametrize(
    ("case", "data", "reason"),
    _cases(
        (
            "truncated gzip",
            gzip.compress(b"x" * 1000, mtime=0)[:-8],
            "not a complete gzip file (Compressed file ended before the end-of-stream marker was reached)",
        ),
        ("plain text", b"BEGIN_YEARMONTH,...", "not a complete gzip file (Not a gzipped file (b'BE'))"),
        ("only blank lines", _gz("\n \n\t\n"), "empty file (no header, no events)"),
        ("a header and no event", _gz(_csv([])), "header only, no events"),
        (
            "two required columns missing",
            _gz(_csv([_event()], tuple(c for c in DETAILS_COLUMNS if c not in ("EVENT_ID", "YEAR")))),
            "missing required column(s) EVENT_ID, YEAR",
        ),
        (
            "two columns outside v1.0",
            _gz(_csv([_event(SURPRISE="1", ALSO="2")], (*DETAILS_COLUMNS, "SURPRISE", "ALSO"))),
            "unexpected column(s) SURPRISE, ALSO (not in format v1.0)",
        ),
        ("a short row on line 4", _ragged(), f"not a readable CSV (line 4 has 3 fields, the header {COLUMNS})"),
        (
            "'NA' is not read as missing",
            _gz(_csv([_event(EVENT_ID="NA")])),
            "column EVENT_ID has non-integer value 'NA' on line 2",
        ),
        (
            "a blank year on line 4",
            _gz(_csv([_event(), _event(), _event(YEAR="")])),
            "column YEAR has non-integer value '' on line 4",
        ),
        (
            "the first bad line is named",
            _gz(_csv([_event(), _event(END_YEARMONTH="-199505"), _event(), _event(END_YEARMONTH="x")])),
            "column END_YEARMONTH has non-integer value '-199505' on line 3",
        ),
        (
            "a decimal month",
            _gz(_csv([_event(BEGIN_YEARMONTH="199505.0")])),
            "column BEGIN_YEARMONTH has non-integer value '199505.0' on line 2",
        ),
    ),
)
def test_bad_files_give_their_exact_reason(case: str, data: bytes, reason: str) -> None:
    assert _reason(data) == reason


def test_a_quote_left_open_is_not_a_readable_csv() -> None:
    reason = _reason(_unterminated_quote())
    assert reason.startswith("not a readable CSV (")
    assert "EOF inside string" in reason


def test_a_field_past_the_csv_limit_is_quarantined_not_fatal() -> None:
    """An unbalanced quote early in a large file makes one field run past the csv module's
    131,072-character limit: that file is bad, the ingest goes on."""
    text = _csv([_event()])
    header, row = text.splitlines()[:2]
    data = _gz(f'{header}\n"{row}\n' + "x" * 140_000 + "\n")
    assert _reason(data) == "not a readable CSV (field larger than field limit (131072))"


# --- list_source ------------------------------------------------------------------------


def test_a_folder_is_listed_by_year_with_urls_that_read_the_files(sample_dir: Path, tmp_path: Path) -> None:
    for path in sample_dir.glob("*.csv.gz"):
        shutil.copy(path, tmp_path)
    (tmp_path / "StormEvents_fatalities-ftp_v1.0_d1995_c20170522.csv.gz").write_bytes(b"not details")
    (tmp_path / "StormEvents_details-ftp_v1.0_d1995_c20170522.csv").write_bytes(b"not gzip-named")
    listed = ingest.list_source(str(tmp_path))
    assert [(f.year, f.name) for f in listed] == [(1993, REAL_1993), (1994, REAL_1994), (1995, OLD_1995)]
    for item in listed:
        assert storage.read_bytes(item.url) == (tmp_path / item.name).read_bytes()


def test_a_source_may_be_one_file(sample_dir: Path) -> None:
    path = sample_dir / REAL_1994
    assert [(f.name, f.year) for f in ingest.list_source(str(path))] == [(REAL_1994, 1994)]
    assert [f.year for f in ingest.list_source(str(path), [1994, 1995])] == [1994]
    with pytest.raises(UserError) as caught:
        ingest.list_source(str(path), [1995])
    assert str(caught.value) == f"no StormEvents_details-*.csv.gz files for years [1995] in source {path}"


def test_years_not_in_the_source_are_named_sorted(sample_dir: Path) -> None:
    with pytest.raises(UserError) as caught:
        ingest.list_source(str(sample_dir), [2002, 2001])
    assert str(caught.value) == f"no StormEvents_details-*.csv.gz files for years [2001, 2002] in source {sample_dir}"


def test_a_source_without_details_files_names_no_years(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        ingest.list_source(str(tmp_path))
    assert str(caught.value) == f"no StormEvents_details-*.csv.gz files in source {tmp_path}"


def test_a_missing_folder_is_one_line_with_the_cause(tmp_path: Path) -> None:
    source = tmp_path / "no  such\tfolder"  # the cause's runs of white space become one space
    with pytest.raises(UserError) as caught:
        ingest.list_source(str(source))
    cause = f"[Errno 2] No such file or directory: '{tmp_path}/no such\\tfolder'"
    assert str(caught.value) == f"cannot read source {source}: {cause}"


def test_a_long_cause_is_cut_to_200_characters(tmp_path: Path) -> None:
    source = f"{tmp_path}/{'a' * 300}"
    with pytest.raises(UserError) as caught:
        ingest.list_source(source)
    prefix = f"cannot read source {source}: "
    assert str(caught.value).startswith(prefix + "[Errno 36] File name too long: ")
    assert len(str(caught.value)) == len(prefix) + 200


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("nosuch://bucket/storm/", "Protocol not known: nosuch"),
        # Neither OSError nor ValueError (as aiohttp's and botocore's are not): the type is named.
        ("github://storm/", "TypeError: GithubFileSystem.__init__() missing 2 required positional arguments"),
    ],
)
def test_a_source_fsspec_cannot_open_is_one_line(source: str, cause: str) -> None:
    with pytest.raises(UserError) as caught:
        ingest.list_source(source)
    assert str(caught.value).startswith(f"cannot read source {source}: {cause}")


@pytest.mark.parametrize(
    ("error", "line"),
    [
        # What an HTTP source that stops answering raises (fsspec's FSTimeoutError): no text.
        (TimeoutError(), "TimeoutError"),
        (OSError("connection reset\n  by peer"), "connection reset by peer"),
        (ValueError("x" * 300), "x" * 200),
    ],
)
def test_a_cause_is_shown_on_one_line_and_never_blank(error: Exception, line: str) -> None:
    assert ingest._one_line(error) == line


def test_an_http_listing_keeps_the_newest_release_of_the_years_asked(
    sample_dir: Path, http_dir: tuple[str, Path]
) -> None:
    url, folder = http_dir
    for path in sample_dir.glob("*.csv.gz"):
        shutil.copy(path, folder)
    shutil.copy(folder / OLD_1995, folder / NEW_1995)
    listed = ingest.list_source(url, [1995, 1994])
    assert [(f.year, f.name, f.url) for f in listed] == [
        (1994, REAL_1994, url + REAL_1994),
        (1995, NEW_1995, url + NEW_1995),
    ]


def test_one_file_over_http_is_listed_as_itself(sample_dir: Path, http_dir: tuple[str, Path]) -> None:
    # fsspec sees any HTTP URL as a file, a directory listing too: the name decides.
    url, folder = http_dir
    shutil.copy(sample_dir / REAL_1994, folder)
    listed = ingest.list_source(url + REAL_1994)
    assert [(f.year, f.name, f.url) for f in listed] == [(1994, REAL_1994, url + REAL_1994)]


# --- ingest_file and the raw zone ----------------------------------------------------------


def _ingest_all(source: str, raw: str) -> list[tuple[str, str, str]]:
    return [ingest.ingest_file(item, raw) for item in ingest.list_source(source)]


def test_each_outcome_is_reported(sample_dir: Path, tmp_path: Path) -> None:
    source, raw = tmp_path / "src", str(tmp_path / "raw")
    _put(source, REAL_1994, (sample_dir / REAL_1994).read_bytes())
    first = _ingest_all(str(source), raw)
    _put(source, OLD_1995, b"broken")
    second = _ingest_all(str(source), raw)
    assert first == [(REAL_1994, "ingested", "")]
    reason = "not a complete gzip file (Not a gzipped file (b'br'))"
    assert second == [(REAL_1994, "skipped", ""), (OLD_1995, "quarantined", reason)]
    report = ingest.IngestReport()
    for outcome in first + second:
        report.merge(outcome)
    assert report == ingest.IngestReport([REAL_1994], [REAL_1994], {OLD_1995: reason})


def test_a_bad_file_is_kept_in_quarantine_with_its_reason(
    sample_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, raw = tmp_path / "src", tmp_path / "raw"
    data = _ragged()
    _put(source, OLD_1995, data)
    with caplog.at_level(logging.INFO, logger=ingest.__name__):
        _ingest_all(str(source), str(raw))
    reason = f"not a readable CSV (line 4 has 3 fields, the header {COLUMNS})"
    assert (raw / "_quarantine" / OLD_1995).read_bytes() == data
    assert (raw / "_quarantine" / f"{OLD_1995}.reason.txt").read_text() == f"{reason}\n"
    assert ingest.raw_files(str(raw)) == []
    assert caplog.messages == [f"quarantined {OLD_1995}: {reason}"]
    assert caplog.records[0].levelno == logging.WARNING


def test_a_bad_new_release_leaves_the_good_old_one_in_place(sample_dir: Path, tmp_path: Path) -> None:
    source, raw = tmp_path / "src", tmp_path / "raw"
    _put(source, OLD_1995, (sample_dir / OLD_1995).read_bytes())
    _ingest_all(str(source), str(raw))
    (source / OLD_1995).unlink()
    _put(source, NEW_1995, _gz(_csv([])))
    assert _ingest_all(str(source), str(raw)) == [(NEW_1995, "quarantined", "header only, no events")]
    assert ingest.raw_files(str(raw)) == [f"{raw}/{OLD_1995}"]


def test_a_new_release_replaces_only_its_own_year(
    sample_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, raw = tmp_path / "src", tmp_path / "raw"
    for name in (REAL_1994, OLD_1995):
        _put(source, name, (sample_dir / name).read_bytes())
    _ingest_all(str(source), str(raw))
    new = _gz(_csv([_event(), _event(EVENT_ID="2")]))
    (source / OLD_1995).unlink()
    _put(source, NEW_1995, new)
    with caplog.at_level(logging.INFO, logger=ingest.__name__):
        outcomes = _ingest_all(str(source), str(raw))
    assert outcomes == [(REAL_1994, "skipped", ""), (NEW_1995, "ingested", "")]
    assert sorted(p.name for p in raw.iterdir()) == [REAL_1994, NEW_1995]
    assert (raw / NEW_1995).read_bytes() == new
    assert caplog.messages == [f"replacing {OLD_1995} with the newer {NEW_1995}", f"ingested {NEW_1995} (2 events)"]


def test_an_older_release_ingested_later_does_not_displace_the_newer(sample_dir: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    new = _put(tmp_path / "new", NEW_1995, _gz(_csv([_event()])))
    old = _put(tmp_path / "old", OLD_1995, (sample_dir / OLD_1995).read_bytes())
    _ingest_all(str(new), str(raw))
    assert _ingest_all(str(old), str(raw)) == [(OLD_1995, "superseded", NEW_1995)]
    assert (raw / NEW_1995).read_bytes() == new.read_bytes()
    assert sorted(p.name for p in raw.iterdir()) == [NEW_1995]
    assert ingest.raw_files(str(raw)) == [f"{raw}/{NEW_1995}"]


def test_raw_files_are_the_newest_release_of_each_year_by_year(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    names = [
        "StormEvents_details-ftp_v1.0_d1995_c20240101.csv.gz",
        "StormEvents_details-ftp_v1.0_d1993_c20170101.csv.gz",
        "StormEvents_details-ftp_v1.0_d1995_c20170101.csv.gz",
        "StormEvents_details-ftp_v1.0_d1993_c20240101.csv.gz",
        "StormEvents_details-ftp_v1.0_d1993_c20200101.csv.gz",
        "StormEvents_details-ftp_v1.0_d1994_c20170101.csv.gz",
        "StormEvents_fatalities-ftp_v1.0_d1996_c20240101.csv.gz",
    ]
    for name in names:
        _put(raw, name, b"")
    _put(raw / "_quarantine", "StormEvents_details-ftp_v1.0_d1997_c20240101.csv.gz", b"")
    assert ingest.raw_files(str(raw)) == [
        f"{raw}/StormEvents_details-ftp_v1.0_d1993_c20240101.csv.gz",
        f"{raw}/StormEvents_details-ftp_v1.0_d1994_c20170101.csv.gz",
        f"{raw}/StormEvents_details-ftp_v1.0_d1995_c20240101.csv.gz",
    ]


def test_a_raw_zone_not_yet_written_has_no_files(tmp_path: Path) -> None:
    assert ingest.raw_files(str(tmp_path / "raw")) == []


def test_any_fsspec_raw_zone_keeps_one_release_per_year(sample_dir: Path, tmp_path: Path) -> None:
    # fsspec's memory filesystem lists with details by default, unlike the local one and s3fs.
    raw = f"memory://{tmp_path.name}/raw"
    try:
        for name in (REAL_1994, OLD_1995, NEW_1995):  # each file its own source, in this order
            _ingest_all(str(_put(tmp_path, name, (sample_dir / REAL_1994).read_bytes())), raw)
        assert ingest.raw_files(raw) == [f"{raw}/{REAL_1994}", f"{raw}/{NEW_1995}"]
        fs, path = storage.url_to_fs(raw)
        assert sorted(fs.ls(path, detail=False)) == [f"{path}/{REAL_1994}", f"{path}/{NEW_1995}"]
    finally:
        storage.remove(f"memory://{tmp_path.name}")


def test_an_s3_source_is_ingested_into_an_s3_raw_zone(aws_env: str, sample_dir: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="storm")
    for name in (REAL_1994, OLD_1995):
        s3.put_object(Bucket="storm", Key=f"source/{name}", Body=(sample_dir / name).read_bytes())
    s3.put_object(Bucket="storm", Key=f"source/{NEW_1995}", Body=b"truncated")
    listed = ingest.list_source("s3://storm/source/")
    assert [f.url for f in listed] == [f"s3://storm/source/{REAL_1994}", f"s3://storm/source/{NEW_1995}"]
    raw = "s3://storm/raw"
    outcomes = [ingest.ingest_file(item, raw) for item in listed]
    assert [status for _, status, _ in outcomes] == ["ingested", "quarantined"]
    assert ingest.raw_files(raw) == [f"{raw}/{REAL_1994}"]
    assert storage.read_bytes(f"{raw}/_quarantine/{NEW_1995}") == b"truncated"
