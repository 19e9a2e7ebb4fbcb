"""Ingest: listing sources, validating files, idempotent copies and quarantine with reasons."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlwf.errors import BadInputFileError, UserError
from workflows.storm import ingest

from badfiles import corpus, write_corpus


def _copy_sample(sample_dir: Path, folder: Path, years: tuple[int, ...] = (1993, 1994, 1995)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for year in years:
        shutil.copy(next(sample_dir.glob(f"*_d{year}_*.csv.gz")), folder)


def _ingest(source: str, raw: Path) -> ingest.IngestReport:
    report = ingest.IngestReport()
    for item in ingest.list_source(source):
        report.merge(ingest.ingest_file(item, str(raw)))
    return report


def test_a_local_folder_is_ingested_then_skipped_when_unchanged(sample_dir: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    first = _ingest(str(sample_dir), raw)
    assert len(first.ingested) == 3
    assert not first.quarantined
    before = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    second = _ingest(str(sample_dir), raw)
    assert second.ingested == []
    assert len(second.skipped) == 3
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir()} == before


def test_a_changed_file_is_ingested_again(sample_dir: Path, tmp_path: Path) -> None:
    source, raw = tmp_path / "src", tmp_path / "raw"
    _copy_sample(sample_dir, source, (1993, 1994))
    _ingest(str(source), raw)
    real_1995 = next(sample_dir.glob("*_d1995_*"))
    target = next(source.glob("*_d1994_*"))
    target.write_bytes(real_1995.read_bytes())
    report = _ingest(str(source), raw)
    assert report.ingested == [target.name]
    assert (raw / target.name).read_bytes() == real_1995.read_bytes()


def test_a_newer_release_of_a_year_replaces_the_older_one(sample_dir: Path, tmp_path: Path) -> None:
    source, raw = tmp_path / "src", tmp_path / "raw"
    _copy_sample(sample_dir, source, (1995,))
    old = next(source.glob("*_d1995_*"))
    _ingest(str(source), raw)
    newer = source / "StormEvents_details-ftp_v1.0_d1995_c20990101.csv.gz"
    shutil.move(old, newer)
    _ingest(str(source), raw)
    assert [Path(u).name for u in ingest.raw_files(str(raw))] == [newer.name]


def test_listing_keeps_the_newest_release_per_year(sample_dir: Path, tmp_path: Path) -> None:
    _copy_sample(sample_dir, tmp_path, (1995,))
    shutil.copy(next(tmp_path.glob("*_d1995_*")), tmp_path / "StormEvents_details-ftp_v1.0_d1995_c20990101.csv.gz")
    (tmp_path / "StormEvents_fatalities-ftp_v1.0_d1995_c20170522.csv.gz").write_bytes(b"ignored")
    listed = ingest.list_source(str(tmp_path))
    assert [f.name for f in listed] == ["StormEvents_details-ftp_v1.0_d1995_c20990101.csv.gz"]


def test_years_select_files(sample_dir: Path) -> None:
    assert [f.year for f in ingest.list_source(str(sample_dir), [1994])] == [1994]


@pytest.mark.parametrize(
    "case",
    [
        "truncated-gzip",
        "corrupt-gzip",
        "plain-text-not-gzip",
        "empty",
        "header-only",
        "missing-column",
        "extra-column",
        "wrong-types",
        "not-csv",
        "ragged-rows",
    ],
)
def test_bad_files_are_rejected_with_their_reason(sample_dir: Path, case: str) -> None:
    data, reason = corpus(next(sample_dir.glob("*_d1995_*")))[case]
    with pytest.raises(BadInputFileError) as caught:
        ingest.validate_details("x.csv.gz", data)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.reliability
def test_bad_files_are_quarantined_while_the_good_ones_proceed(sample_dir: Path, tmp_path: Path) -> None:
    source, raw = tmp_path / "src", tmp_path / "raw"
    _copy_sample(sample_dir, source, (1995,))
    bad = write_corpus(next(sample_dir.glob("*_d1995_*")), source)
    report = _ingest(str(source), raw)
    assert report.ingested == [next(source.glob("*_d1995_*")).name]
    assert set(report.quarantined) == {name for name, _ in bad.values()}
    for name, reason in bad.values():
        assert reason in report.quarantined[name]
        assert (raw / "_quarantine" / f"{name}.reason.txt").read_text().strip() == report.quarantined[name]
        assert not (raw / name).exists()
    assert [Path(u).name for u in ingest.raw_files(str(raw))] == report.ingested


def test_a_source_over_http_is_listed_and_ingested(
    sample_dir: Path, http_dir: tuple[str, Path], tmp_path: Path
) -> None:
    url, folder = http_dir
    _copy_sample(sample_dir, folder, (1994, 1995))
    report = _ingest(url, tmp_path / "raw")
    assert sorted(report.ingested) == sorted(p.name for p in folder.iterdir())


def test_an_unreachable_source_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^cannot read source .*missing"):
        ingest.list_source(str(tmp_path / "missing"))
    with pytest.raises(UserError, match=r"cannot read source http://127\.0\.0\.1:9/"):
        ingest.list_source("http://127.0.0.1:9/")


def test_a_source_without_details_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(UserError, match="no StormEvents_details"):
        ingest.list_source(str(tmp_path))
