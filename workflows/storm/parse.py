"""Vectorised parsers for the quirks of the Storm Events files, and `clean_details` that applies
them to one raw file's rows (a pandas frame of strings) to produce the curated schema.

Every function here is pure pandas so it runs unchanged inside `dask.dataframe.map_partitions`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from workflows.storm.schema import (
    ALL_TYPES_DAMAGE_FROM,
    CANONICAL_EVENT_TYPES,
    DAMAGE_RECORDED_BEFORE_1993,
    EVENT_TYPE_ALIASES,
    EXPLICIT_DAMAGE_FROM,
    HAIL_EVENT_TYPES,
    OTHER_EVENT_TYPE,
    TIMEZONE_OFFSETS,
    TIMEZONE_TYPOS,
    WIND_EVENT_TYPES,
    WIND_MAGNITUDE_TYPES,
    coverage_era,
)

_DAMAGE = re.compile(r"^\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[HKMB]?)\s*$", re.IGNORECASE)
_UNIT = {"": 1.0, "H": 1e2, "K": 1e3, "M": 1e6, "B": 1e9}
_CANONICAL_BY_UPPER = {name.upper(): name for name in CANONICAL_EVENT_TYPES}
_ALIASES = tuple((re.compile(pattern), name) for pattern, name in EVENT_TYPE_ALIASES)
_PHRASE_SPLIT = re.compile(r"\s*(?:/|,|;|&|\bAND\b)\s*")
_ZONE = re.compile(r"^(?P<abbr>[A-Z]{2,4})(?P<offset>[+-]?\d{1,2})?$")


def parse_damage(values: pd.Series) -> pd.Series:
    """Damage strings ("10.00K", "2.5M", "1B", "5H", "250", blank) to US dollars.

    Blank means "no estimate" and becomes NaN, as does anything unreadable ("1?"): a damage
    figure is never guessed.
    """
    parts = values.astype("string").str.extract(_DAMAGE)
    number = pd.to_numeric(parts["num"], errors="coerce").astype("float64")
    unit = parts["unit"].str.upper().map(_UNIT).astype("float64")
    return (number * unit).rename(values.name)


@lru_cache(maxsize=4096)
def canonical_event_type(raw: str) -> str:
    """The NWS Directive 10-1605 name for a free-text event type; "Other" when none fits."""
    text = " ".join(str(raw).upper().split())
    if text in _CANONICAL_BY_UPPER:
        return _CANONICAL_BY_UPPER[text]
    first = _PHRASE_SPLIT.split(text, maxsplit=1)[0]
    for candidate in (text, first):
        if candidate in _CANONICAL_BY_UPPER:
            return _CANONICAL_BY_UPPER[candidate]
    for candidate in (text, first):
        for pattern, name in _ALIASES:
            if pattern.match(candidate):
                return name
    return OTHER_EVENT_TYPE


def canonical_event_types(values: pd.Series) -> pd.Series:
    """`canonical_event_type` over a column, computed once per distinct value."""
    raw = values.fillna("").astype("string")
    mapping = {value: canonical_event_type(value) for value in raw.unique()}
    return raw.map(mapping).astype("string")


@lru_cache(maxsize=256)
def timezone_offset_hours(zone: str) -> float:
    """UTC offset in hours for a CZ_TIMEZONE value ("CST", "EST-5", "CSt"); NaN if unknown."""
    match = _ZONE.match(str(zone).strip().upper())
    if not match:
        return float("nan")
    if match["offset"] is not None:
        return float(int(match["offset"]))
    abbr = TIMEZONE_TYPOS.get(match["abbr"], match["abbr"])
    return float(TIMEZONE_OFFSETS.get(abbr, float("nan")))


def parse_local_times(date_time: pd.Series, yearmonth: pd.Series) -> pd.Series:
    """Local wall-clock times from "29-JAN-19 12:00:00" and the YYYYMM column.

    The two-digit year is ambiguous (pandas reads "50" as 2050); the four-digit year and month
    of BEGIN_YEARMONTH/END_YEARMONTH are not, so they replace it.
    """
    text = date_time.astype("string").str.strip()
    day = text.str.slice(0, 2)
    clock = text.str.slice(-8)
    yyyymm = yearmonth.astype("string").str.strip()
    return pd.to_datetime(yyyymm + day + " " + clock, format="%Y%m%d %H:%M:%S", errors="coerce")


def _number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.astype("string").str.strip().replace("", pd.NA), errors="coerce").astype("float64")


def _count(values: pd.Series) -> pd.Series:
    return _number(values).fillna(0).clip(lower=0).astype("int32")


def _text(values: pd.Series) -> pd.Series:
    return values.fillna("").astype("string").str.strip().str.upper()


CURATED_DTYPES: dict[str, str] = {
    "event_id": "int64",
    "episode_id": "float64",
    "year": "int32",
    "month": "int8",
    "state": "string",
    "state_fips": "float64",
    "event_type": "string",
    "event_type_raw": "string",
    "cz_type": "string",
    "cz_name": "string",
    "begin_local": "datetime64[s]",
    "tz_offset_hours": "float64",
    "begin_utc": "datetime64[s, UTC]",
    "end_utc": "datetime64[s, UTC]",
    "duration_minutes": "float64",
    "begin_hour_local": "float64",
    "injuries": "int32",
    "deaths": "int32",
    "damage_property_usd": "float64",
    "damage_crops_usd": "float64",
    "magnitude": "float64",
    "magnitude_type": "string",
    "wind_speed_kt": "float64",
    "hail_size_in": "float64",
    "era": "string",
    "tor_f_scale": "string",
    "begin_lat": "float64",
    "begin_lon": "float64",
}


def empty_curated() -> pd.DataFrame:
    """A zero-row frame of the curated schema (dask's `meta`)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in CURATED_DTYPES.items()})


def clean_details(raw: pd.DataFrame) -> pd.DataFrame:
    """One raw details file (all columns as strings) to the curated schema.

    Rows without a numeric EVENT_ID or a readable year cannot be keyed or partitioned and are
    dropped; every other gap (blank coordinates, magnitudes, damage, an unknown time zone)
    becomes a missing value, never a made-up one.
    """
    if raw.empty:
        return empty_curated()
    event_id = _number(raw["EVENT_ID"])
    yearmonth = _number(raw["BEGIN_YEARMONTH"])
    year = (yearmonth // 100).where(yearmonth.notna(), _number(raw["YEAR"]))
    keep = event_id.notna() & year.notna() & (event_id == event_id.round())
    raw, event_id, year, yearmonth = raw[keep], event_id[keep], year[keep], yearmonth[keep]

    begin_local = parse_local_times(raw["BEGIN_DATE_TIME"], raw["BEGIN_YEARMONTH"])
    end_local = parse_local_times(raw["END_DATE_TIME"], raw["END_YEARMONTH"])
    zones = raw["CZ_TIMEZONE"].fillna("").astype("string")
    offsets = zones.map({zone: timezone_offset_hours(zone) for zone in zones.unique()}).astype("float64")
    shift = pd.to_timedelta(-offsets, unit="h")
    duration = (end_local - begin_local).dt.total_seconds() / 60.0
    lat, lon = _number(raw["BEGIN_LAT"]), _number(raw["BEGIN_LON"])
    event_type = canonical_event_types(raw["EVENT_TYPE"])
    magnitude, magnitude_type = _number(raw["MAGNITUDE"]), _text(raw["MAGNITUDE_TYPE"])
    wind, hail = split_magnitude(magnitude, event_type, magnitude_type)
    bad_location = ~lat.between(-90, 90) | ~lon.between(-180, 180) | ((lat == 0) & (lon == 0))

    out = pd.DataFrame(
        {
            "event_id": event_id.astype("int64"),
            "episode_id": _number(raw["EPISODE_ID"]),
            "year": year.astype("int32"),
            "month": (yearmonth % 100).fillna(0).astype("int8"),
            "state": _text(raw["STATE"]),
            "state_fips": _number(raw["STATE_FIPS"]),
            "event_type": event_type,
            "event_type_raw": raw["EVENT_TYPE"].fillna("").astype("string"),
            "cz_type": _text(raw["CZ_TYPE"]),
            "cz_name": _text(raw["CZ_NAME"]),
            "begin_local": begin_local.astype("datetime64[s]"),
            "tz_offset_hours": offsets,
            "begin_utc": (begin_local + shift).dt.tz_localize("UTC").astype("datetime64[s, UTC]"),
            "end_utc": (end_local + shift).dt.tz_localize("UTC").astype("datetime64[s, UTC]"),
            "duration_minutes": duration.where(duration >= 0),
            "begin_hour_local": begin_local.dt.hour.astype("float64"),
            "injuries": _count(raw["INJURIES_DIRECT"]) + _count(raw["INJURIES_INDIRECT"]),
            "deaths": _count(raw["DEATHS_DIRECT"]) + _count(raw["DEATHS_INDIRECT"]),
            "damage_property_usd": parse_damage(raw["DAMAGE_PROPERTY"]),
            "damage_crops_usd": parse_damage(raw["DAMAGE_CROPS"]),
            "magnitude": magnitude,
            "magnitude_type": magnitude_type,
            "wind_speed_kt": wind,
            "hail_size_in": hail,
            "era": eras(year),
            "tor_f_scale": _text(raw["TOR_F_SCALE"]),
            "begin_lat": lat.where(~bad_location),
            "begin_lon": lon.where(~bad_location),
        }
    )
    out = out.astype(CURATED_DTYPES)
    return out.reset_index(drop=True)


def split_magnitude(
    magnitude: pd.Series, event_type: pd.Series, magnitude_type: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """MAGNITUDE as two quantities: wind speed in knots (wind events, or any event whose
    MAGNITUDE_TYPE is EG/MG/ES/MS) and hail size in inches (hail events). Anything else has no
    magnitude. A magnitude of 0 is how older files write "not measured" (a 0-knot wind or a
    0-inch hailstone reported as an event is not a measurement) and is missing, as is a
    negative one."""
    measured = magnitude.where(magnitude > 0)
    is_wind = event_type.isin(WIND_EVENT_TYPES).fillna(False) | magnitude_type.isin(WIND_MAGNITUDE_TYPES).fillna(False)
    is_hail = event_type.isin(HAIL_EVENT_TYPES).fillna(False) & ~is_wind
    return measured.where(is_wind).astype("float64"), measured.where(is_hail).astype("float64")


def eras(year: pd.Series) -> pd.Series:
    """The coverage era of each event's year (`workflows.storm.schema.coverage_era`)."""
    return year.map({y: coverage_era(int(y)) for y in year.dropna().unique()}).astype("string")


def label_damage(curated: pd.DataFrame) -> pd.Series:
    """The training target, per era: 1 if the event caused reported property damage, 0 if not,
    missing if unknown.

    From 1996 (`EXPLICIT_DAMAGE_FROM`) the files write "no damage" explicitly ("0.00K"), so a
    missing estimate (blank, or unreadable like "1?") is unknown: such events neither train nor
    evaluate a model. Before 1996 the files wrote "0" or nothing for "no damage reported", so
    a missing estimate counts as 0. Before 1993 (`ALL_TYPES_DAMAGE_FROM`) only tornadoes have
    estimates: every other event's "0" means "not recorded", so its label is unknown (a model
    trained on it learned "tornado or not" and ranked recent events by era artefacts).
    """
    damage = curated["damage_property_usd"]
    before = curated["year"] < EXPLICIT_DAMAGE_FROM
    label = (damage > 0).astype("float64").where(damage.notna())
    label = label.where(damage.notna() | ~before, 0.0)
    unrecorded = (curated["year"] < ALL_TYPES_DAMAGE_FROM) & ~curated["event_type"].isin(DAMAGE_RECORDED_BEFORE_1993)
    return label.where(~unrecorded).astype("float64")


__all__ = [
    "CURATED_DTYPES",
    "canonical_event_type",
    "canonical_event_types",
    "clean_details",
    "empty_curated",
    "eras",
    "label_damage",
    "parse_damage",
    "parse_local_times",
    "split_magnitude",
    "timezone_offset_hours",
]
