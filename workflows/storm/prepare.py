"""Prepare: raw details files -> curated Parquet partitioned by year, on dask.dataframe.

Each raw file is one partition (gzip is not splittable); `workflows.storm.parse.clean_details` does
the cleaning per partition. The output is published as a dataset version keyed by the raw
files' content and this module's schema version, so preparing the same raw zone twice is a
no-op and readers never see a half-written folder.
"""

from __future__ import annotations

import hashlib
import io
import logging

import dask.dataframe as dd
import pandas as pd
import pyarrow
import pyarrow.dataset

from mlwf import progress, storage
from mlwf.errors import UserError
from workflows.storm.parse import CURATED_DTYPES, clean_details, empty_curated
from workflows.storm.schema import REQUIRED_COLUMNS

log = logging.getLogger(__name__)

# Bump when clean_details changes what it writes: it changes every curated version key.
SCHEMA_VERSION = 2  # 2: magnitude split into wind speed and hail size, magnitude type, coverage era


def read_raw_file(url: str) -> pd.DataFrame:
    """One raw details file as a frame of strings (only the columns the pipeline reads)."""
    return pd.read_csv(
        io.BytesIO(storage.read_bytes(url)),
        compression="gzip",
        dtype=str,
        keep_default_na=False,
        usecols=list(REQUIRED_COLUMNS),
    )


def _clean_file(url: str) -> pd.DataFrame:
    return clean_details(read_raw_file(url))


def curated_frame(raw_urls: list[str]) -> dd.DataFrame:
    """The lazy curated frame of the given raw files, one partition per file."""
    return dd.from_map(_clean_file, raw_urls, meta=empty_curated(), enforce_metadata=False)


def raw_fingerprint(raw_urls: list[str]) -> str:
    digests = [[url.rsplit("/", 1)[-1], hashlib.sha256(storage.read_bytes(url)).hexdigest()] for url in raw_urls]
    return storage.fingerprint("curated", SCHEMA_VERSION, digests)


def prepare(raw_urls: list[str], curated_url: str) -> storage.Published:
    """Clean the raw files and publish curated Parquet partitioned by year (runs on the
    current Dask client when there is one)."""
    if not raw_urls:
        raise UserError("no raw details files to prepare (did ingest quarantine them all?)")
    version = raw_fingerprint(raw_urls)

    def write(target: str) -> dict[str, object]:
        frame = curated_frame(raw_urls)
        progress.compute(
            frame.to_parquet(target, partition_on=["year"], write_index=False, compute=False), len(raw_urls)
        )
        rows = int(dd.read_parquet(target, columns=["event_id"]).shape[0].compute())
        log.info("prepared %d events from %d raw files", rows, len(raw_urls))
        return {"rows": rows, "raw_files": len(raw_urls)}

    return storage.publish(curated_url, version, write, meta={"schema_version": SCHEMA_VERSION})


def read_curated(curated: str | storage.Published, columns: list[str] | None = None) -> dd.DataFrame:
    """The current curated dataset (or a given version) as a dask DataFrame."""
    published = curated if isinstance(curated, storage.Published) else storage.current(curated)
    if published is None:
        raise UserError(f"no curated data at {curated}: run prepare first")
    # Read the hive "year=" folders as int32, not as a categorical: filters on year are then
    # plain comparisons that dask can push down to the folder level.
    partitioning = pyarrow.dataset.partitioning(pyarrow.schema([("year", pyarrow.int32())]), flavor="hive")
    return dd.read_parquet(published.url, columns=columns, dataset={"partitioning": partitioning})


__all__ = ["CURATED_DTYPES", "curated_frame", "prepare", "raw_fingerprint", "read_curated", "read_raw_file"]
