"""A corpus of bad NOAA details files, made from a real one, each with the reason it must give."""

from __future__ import annotations

import gzip
from pathlib import Path

NAME = "StormEvents_details-ftp_v1.0_d{year}_c20240101.csv.gz"


def _gz(data: bytes) -> bytes:
    """Deterministic gzip (no timestamp in the header): the same bytes on every run."""
    return gzip.compress(data, mtime=0)


def _lines(real: Path, rows: int = 50) -> list[str]:
    with gzip.open(real, "rt") as handle:
        return [next(handle) for _ in range(rows + 1)]


def _replace_column(lines: list[str], old: str, new: str) -> list[str]:
    return [lines[0].replace(f"{old},", f"{new},", 1), *lines[1:]]


def corpus(real: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, words the quarantine reason must contain)."""
    lines = _lines(real)
    good = _gz("".join(lines).encode())
    header_cells = lines[0].rstrip("\n").split(",")
    event_id_index = header_cells.index("EVENT_ID")

    def with_cell(row: str, index: int, value: str) -> str:
        cells = row.split(",")
        cells[index] = value
        return ",".join(cells)

    return {
        "truncated-gzip": (good[: len(good) // 2], "not a complete gzip file"),
        "corrupt-gzip": (good[:20] + bytes(b ^ 0xFF for b in good[20:60]) + good[60:], "not a complete gzip file"),
        "plain-text-not-gzip": ("".join(lines).encode(), "not a complete gzip file"),
        "empty": (_gz(b""), "empty file"),
        "header-only": (_gz(lines[0].encode()), "header only"),
        "missing-column": (
            _gz("".join(_replace_column(lines, "DAMAGE_PROPERTY", "DAMAGE_PROP")).encode()),
            "missing required column(s) DAMAGE_PROPERTY",
        ),
        "extra-column": (
            _gz(
                "".join([lines[0].rstrip("\n") + ",SURPRISE\n", *(r.rstrip("\n") + ",1\n" for r in lines[1:])]).encode()
            ),
            "unexpected column(s) SURPRISE",
        ),
        "wrong-types": (
            _gz("".join([lines[0], with_cell(lines[1], event_id_index, "ten"), *lines[2:]]).encode()),
            "column EVENT_ID has non-integer value 'ten' on line 2",
        ),
        "not-csv": (_gz(b'{"json": "is not what NCEI publishes"}\n'), "missing required column"),
        "ragged-rows": (
            _gz("".join([*lines[:3], "1,2,3\n", *lines[3:]]).encode()),
            "not a readable CSV",
        ),
    }


def write_corpus(real: Path, folder: Path, first_year: int = 2001) -> dict[str, tuple[str, str]]:
    """Write each bad file under a distinct data year; returns case -> (file name, reason)."""
    written = {}
    for offset, (case, (data, reason)) in enumerate(sorted(corpus(real).items())):
        name = NAME.format(year=first_year + offset)
        (folder / name).write_bytes(data)
        written[case] = (name, reason)
    return written
