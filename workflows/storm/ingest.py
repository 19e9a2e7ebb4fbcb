"""Ingest: copy yearly details files from any fsspec source into the raw zone.

A file is validated before it lands (whole gzip stream, CSV of the v1.0 header with the required
columns, key columns numeric, at least one event); a bad one goes to ``_quarantine/`` beside the
raw files with a ``.reason.txt`` note while the others proceed. Ingest is idempotent: a file
whose bytes are already in the raw zone is skipped. NCEI republishes a year under a new creation
date (``_cYYYYMMDD``); the raw zone keeps only the newest file of each data year: a newer release
replaces an older one, and an older release than the one already held is not written (it is
reported as superseded). The report names the release of each year that was used.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
import zlib
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pandas as pd

from mlwf import storage
from mlwf.errors import BadInputFileError, UserError
from workflows.storm.schema import DETAILS_COLUMNS, DETAILS_FILE_PATTERN, INTEGER_COLUMNS, REQUIRED_COLUMNS

log = logging.getLogger(__name__)

NCEI_SOURCE = "https://www.ncei.noaa.gov/pub/data/swdi/stormevents/csvfiles/"
QUARANTINE = "_quarantine"


@dataclass(frozen=True)
class SourceFile:
    url: str
    name: str
    year: int


@dataclass
class IngestReport:
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)  # name -> the newer release kept
    releases: dict[int, str] = field(default_factory=dict)  # data year -> the file the raw zone holds

    def merge(self, outcome: tuple[str, str, str]) -> None:
        name, status, reason = outcome
        if status == "ingested":
            self.ingested.append(name)
        elif status == "skipped":
            self.skipped.append(name)
        elif status == "superseded":
            self.superseded[name] = reason
        else:
            self.quarantined[name] = reason


def list_source(source: str, years: list[int] | None = None) -> list[SourceFile]:
    """The details files at ``source`` (a folder/directory URL or one file), newest per year."""
    try:
        fs, path = storage.url_to_fs(source)
        # Decide by name, not fs.isfile: an HTTP directory listing is a "file" to fsspec.
        if DETAILS_FILE_PATTERN.match(path.rstrip("/").rsplit("/", 1)[-1]):
            entries = [{"name": path, "type": "directory" if _is_folder(fs, path) else "file"}]
        else:
            entries = list(fs.ls(path, detail=True))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read source {source}: {_one_line(exc)}") from None
    except Exception as exc:  # aiohttp/botocore errors do not share a base class
        raise UserError(f"cannot read source {source}: {type(exc).__name__}: {_one_line(exc)}") from None
    newest: dict[int, SourceFile] = {}
    for entry in entries:
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        match = DETAILS_FILE_PATTERN.match(name)
        if not match:
            continue
        problem = _not_a_file(fs, entry)
        if problem:
            shown = entry["name"] if storage.is_local(fs) else fs.unstrip_protocol(entry["name"])
            raise UserError(f"{shown}: {problem}")
        year = int(match["year"])
        if years and year not in years:
            continue
        url = fs.unstrip_protocol(entry["name"])  # a URL that has its protocol is kept as it is
        candidate = SourceFile(url, name, year)
        if year not in newest or name > newest[year].name:
            newest[year] = candidate
    if not newest:
        wanted = f" for years {sorted(years)}" if years else ""
        raise UserError(f"no StormEvents_details-*.csv.gz files{wanted} in source {source}")
    return [newest[y] for y in sorted(newest)]


def _not_a_file(fs: fsspec.AbstractFileSystem, entry: dict[str, Any]) -> str | None:
    """Why an entry named like a details file cannot be read as one (a local link is followed)."""
    if storage.is_local(fs):
        if os.path.isdir(entry["name"]):
            return "a folder named like a details file, not a file"
        if not os.path.exists(entry["name"]):
            return "a link to nothing (its target does not exist)"
        return None
    return "a folder named like a details file, not a file" if entry.get("type") == "directory" else None


def _is_folder(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """Whether ``path`` is a folder; never asked over HTTP (that would download the file)."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return not {"http", "https"} & set(protocols) and bool(fs.isdir(path))


def validate_details(name: str, data: bytes) -> int:
    """Check one details file completely; return its number of events or raise BadInputFileError."""
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadInputFileError(name, f"not a complete gzip file ({_one_line(exc)})") from None
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        decoded = text.decode("latin-1")
    if not decoded.strip():
        raise BadInputFileError(name, "empty file (no header, no events)")
    rows = csv.reader(io.StringIO(decoded))
    try:
        header = next(rows)
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise BadInputFileError(name, f"missing required column(s) {', '.join(missing)}")
        unexpected = [c for c in header if c not in DETAILS_COLUMNS]
        if unexpected:
            raise BadInputFileError(name, f"unexpected column(s) {', '.join(unexpected)} (not in format v1.0)")
        for line_number, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise BadInputFileError(
                    name, f"not a readable CSV (line {line_number} has {len(row)} fields, the header {len(header)})"
                )
    except csv.Error as exc:  # e.g. an unbalanced quote that runs a field past the csv module's limit
        raise BadInputFileError(name, f"not a readable CSV ({_one_line(exc)})") from None
    try:
        frame = pd.read_csv(io.StringIO(decoded), dtype=str, keep_default_na=False, on_bad_lines="error")
    except (pd.errors.ParserError, ValueError) as exc:
        raise BadInputFileError(name, f"not a readable CSV ({_one_line(exc)})") from None
    if frame.empty:
        raise BadInputFileError(name, "header only, no events")
    for column in INTEGER_COLUMNS:
        values = frame[column].str.strip()
        bad = ~values.str.fullmatch(r"\d+")
        if bad.any():
            first = int(bad.to_numpy().argmax())
            value = values.iloc[first]
            raise BadInputFileError(name, f"column {column} has non-integer value {value!r} on line {first + 2}")
    return len(frame)


def ingest_file(source: SourceFile, raw_url: str) -> tuple[str, str, str]:
    """Copy one file into the raw zone; returns (name, "ingested"|"skipped"|"superseded"|
    "quarantined", reason). A release older than the one the raw zone holds is not written."""
    newer = [name for year, name in _held(raw_url) if year == source.year and name > source.name]
    if newer:
        log.info("not ingesting %s: the raw zone holds the newer %s", source.name, newer[-1])
        return source.name, "superseded", newer[-1]
    try:
        data = storage.read_bytes(source.url)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        # Permanent: gone since it was listed, or not ours to read. Anything else may be
        # transient (a reset connection) and is left to the stage's retries.
        raise UserError(f"{source.url}: cannot read ({exc.strerror or _one_line(exc)})") from None
    target = storage.join(raw_url, source.name)
    if storage.exists(target) and _sha256_of(target) == hashlib.sha256(data).hexdigest():
        return source.name, "skipped", ""
    try:
        rows = validate_details(source.name, data)
    except BadInputFileError as bad:
        _quarantine(raw_url, source.name, data, bad.reason)
        log.warning("quarantined %s: %s", source.name, bad.reason)
        return source.name, "quarantined", bad.reason
    storage.write_bytes(target, data)
    _drop_older_versions(raw_url, source)
    log.info("ingested %s (%d events)", source.name, rows)
    return source.name, "ingested", ""


def raw_files(raw_url: str) -> list[str]:
    """The details files in the raw zone, one per data year (the newest), sorted by year."""
    return [storage.join(raw_url, name) for name in releases(raw_url).values()]


def releases(raw_url: str) -> dict[int, str]:
    """The release of each data year the raw zone holds (the newest), by year."""
    newest = dict(_held(raw_url))  # sorted by name: the newest release of a year comes last
    return {year: newest[year] for year in sorted(newest)}


def _held(raw_url: str) -> list[tuple[int, str]]:
    """(data year, file name) of every details file in the raw zone, sorted by name."""
    fs, path = storage.url_to_fs(raw_url)
    if not fs.exists(path):
        return []
    names = sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))
    return [(int(match["year"]), name) for name in names if (match := DETAILS_FILE_PATTERN.match(name))]


def _sha256_of(url: str) -> str:
    return hashlib.sha256(storage.read_bytes(url)).hexdigest()


def _quarantine(raw_url: str, name: str, data: bytes, reason: str) -> None:
    folder = storage.join(raw_url, QUARANTINE)
    storage.write_bytes(storage.join(folder, name), data)
    storage.write_bytes(storage.join(folder, f"{name}.reason.txt"), f"{reason}\n".encode())


def _drop_older_versions(raw_url: str, source: SourceFile) -> None:
    fs, path = storage.url_to_fs(raw_url)
    for entry in fs.ls(path, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        match = DETAILS_FILE_PATTERN.match(name)
        if match and int(match["year"]) == source.year and name < source.name:
            log.info("replacing %s with the newer %s", name, source.name)
            fs.rm(entry)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
