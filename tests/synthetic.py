"""Synthetic recent-era details files (format v1.0) whose damage follows a known relation.

The shared data ends in 1995; these files look like NCEI's from 1996 on: the 48 event types,
EF ratings (EF0-EF5, EFU), "0.00K" written for no damage, wind speeds with MAGNITUDE_TYPE and
hail sizes in inches, coordinates on every event, and a few blank damage estimates (unknown).
Whether an event caused damage is drawn from a logistic model of its wind speed, hail size,
tornado rating and type, with ``Relation`` weights, so a test knows in advance how well a model
trained on one relation does on another.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workflows.storm.schema import CANONICAL_EVENT_TYPES, DETAILS_COLUMNS, HAIL_EVENT_TYPES, WIND_EVENT_TYPES

NAME = "StormEvents_details-ftp_v1.0_d{year}_c20250115.csv.gz"
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
STATES = (("TEXAS", 48, "CST-6", 31.0, -99.0), ("KANSAS", 20, "CST-6", 38.5, -98.0), ("OHIO", 39, "EST-5", 40.3, -82.8))
# The types most events have, as in recent years; every one of the 48 appears.
COMMON = ("Thunderstorm Wind", "Hail", "Flash Flood", "Tornado", "High Wind", "Flood")


@dataclass(frozen=True)
class Relation:
    """logit P(damage) = intercept + wind * (knots - 55) / 10 + hail * (inches - 1.25)
    + tornado * (EF - 1) + flood (on flood types)."""

    intercept: float = -1.0
    wind: float = 1.2
    hail: float = 1.5
    tornado: float = 1.0
    flood: float = 1.0

    def inverted(self) -> Relation:
        return Relation(self.intercept, -self.wind, -self.hail, -self.tornado, -self.flood)


def write_year(folder: Path, year: int, relation: Relation, events: int = 3000, seed: int | None = None) -> Path:
    """One year's details file in ``folder``; returns its path."""
    rng = np.random.default_rng(year if seed is None else seed)
    types = np.where(
        rng.random(events) < 0.8,
        rng.choice(COMMON, events),
        rng.choice(CANONICAL_EVENT_TYPES, events),
    )
    types[: len(CANONICAL_EVENT_TYPES)] = CANONICAL_EVENT_TYPES
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=DETAILS_COLUMNS, quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    for i, event_type in enumerate(types):
        writer.writerow(_event(rng, year, i, str(event_type), relation))
    path = folder / NAME.format(year=year)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(buffer.getvalue().encode(), mtime=0))
    return path


def _event(rng: np.random.Generator, year: int, index: int, event_type: str, relation: Relation) -> dict[str, str]:
    month = int(rng.integers(1, 13))
    day, hour, minutes = int(rng.integers(1, 29)), int(rng.integers(0, 23)), int(rng.integers(5, 120))
    state, fips, zone, lat, lon = STATES[int(rng.integers(len(STATES)))]
    logit = relation.intercept
    magnitude = magnitude_type = rating = ""
    if event_type in WIND_EVENT_TYPES:
        knots = float(rng.integers(35, 95))
        magnitude, magnitude_type = f"{knots:.0f}", str(rng.choice(("EG", "MG", "ES", "MS")))
        logit += relation.wind * (knots - 55) / 10
    elif event_type in HAIL_EVENT_TYPES:
        inches = float(rng.choice((0.75, 0.88, 1.0, 1.25, 1.75, 2.0, 2.75)))
        magnitude = f"{inches:.2f}"
        logit += relation.hail * (inches - 1.25) / 0.5
    elif event_type == "Tornado":
        ef = int(rng.choice(6, p=(0.4, 0.3, 0.15, 0.1, 0.04, 0.01)))
        rating = "EFU" if rng.random() < 0.03 else f"EF{ef}"
        logit += relation.tornado * (ef - 1)
    elif "Flood" in event_type:
        logit += relation.flood
    damaged = rng.random() < 1 / (1 + np.exp(-logit))
    damage = f"{rng.uniform(1, 500):.2f}K" if damaged else "0.00K"
    if rng.random() < 0.03:
        damage = ""  # no estimate: from 1996 on, unknown
    begin = f"{day:02d}-{MONTHS[month - 1]}-{year % 100:02d} {hour:02d}:{minutes % 60:02d}:00"
    end = f"{day:02d}-{MONTHS[month - 1]}-{year % 100:02d} {hour + 1:02d}:{minutes % 60:02d}:00"
    return {
        **dict.fromkeys(DETAILS_COLUMNS, ""),
        "BEGIN_YEARMONTH": f"{year}{month:02d}",
        "BEGIN_DAY": str(day),
        "BEGIN_TIME": f"{hour:02d}{minutes % 60:02d}",
        "END_YEARMONTH": f"{year}{month:02d}",
        "END_DAY": str(day),
        "END_TIME": f"{hour + 1:02d}{minutes % 60:02d}",
        "EPISODE_ID": str(year * 100_000 + index // 3),
        "EVENT_ID": str(year * 100_000 + index),
        "STATE": state,
        "STATE_FIPS": str(fips),
        "YEAR": str(year),
        "MONTH_NAME": MONTHS[month - 1].title(),
        "EVENT_TYPE": event_type,
        "CZ_TYPE": "C" if rng.random() < 0.7 else "Z",
        "CZ_FIPS": str(int(rng.integers(1, 200))),
        "CZ_NAME": f"COUNTY {int(rng.integers(1, 50))}",
        "WFO": "OUN",
        "BEGIN_DATE_TIME": begin,
        "CZ_TIMEZONE": zone,
        "END_DATE_TIME": end,
        "INJURIES_DIRECT": "0",
        "INJURIES_INDIRECT": "0",
        "DEATHS_DIRECT": "0",
        "DEATHS_INDIRECT": "0",
        "DAMAGE_PROPERTY": damage,
        "DAMAGE_CROPS": "0.00K",
        "SOURCE": "Trained Spotter",
        "MAGNITUDE": magnitude,
        "MAGNITUDE_TYPE": magnitude_type,
        "TOR_F_SCALE": rating,
        "BEGIN_LAT": f"{lat + rng.normal(0, 1):.4f}",
        "BEGIN_LON": f"{lon + rng.normal(0, 1):.4f}",
        "END_LAT": f"{lat:.4f}",
        "END_LON": f"{lon:.4f}",
        "EVENT_NARRATIVE": 'A "synthetic" event, with commas, for tests.',
        "DATA_SOURCE": "CSV",
    }
