"""The parsers of the Storm Events quirks, on generated input (hypothesis) and real files."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.storm.parse import (
    canonical_event_type,
    clean_details,
    eras,
    label_damage,
    parse_damage,
    parse_local_times,
    split_magnitude,
    timezone_offset_hours,
)
from workflows.storm.schema import (
    CANONICAL_EVENT_TYPES,
    HAIL_EVENT_TYPES,
    OTHER_EVENT_TYPE,
    WIND_EVENT_TYPES,
    WIND_MAGNITUDE_TYPES,
    coverage_era,
)

UNITS = {"": 1, "H": 100, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
numbers = st.decimals(min_value=0, max_value=999, places=2, allow_nan=False, allow_infinity=False)


@given(number=numbers, unit=st.sampled_from(list(UNITS)), lower=st.booleans())
def test_damage_strings_become_dollars(number: Decimal, unit: str, lower: bool) -> None:
    text = f"{number}{unit.lower() if lower else unit}"
    parsed = parse_damage(pd.Series([text]))[0]
    assert parsed == pytest.approx(float(number * UNITS[unit]), rel=1e-9)


@given(st.text(alphabet="?xyz!$ ,-", min_size=1, max_size=6))
def test_unreadable_damage_is_missing_not_guessed(text: str) -> None:
    assert np.isnan(parse_damage(pd.Series([text]))[0])


def test_damage_quirks_from_the_real_files() -> None:
    values = pd.Series(["10.00K", "2.5M", "1B", "5H", "250", "", ".5k", "06", "0K", "1.6B", "1?"])
    expected = [10_000, 2_500_000, 1e9, 500, 250, np.nan, 500, 6, 0, 1.6e9, np.nan]
    np.testing.assert_allclose(parse_damage(values).to_numpy(), expected)


@pytest.mark.parametrize("name", CANONICAL_EVENT_TYPES)
def test_canonical_event_types_map_to_themselves(name: str) -> None:
    assert canonical_event_type(name) == name
    assert canonical_event_type(f"  {name.upper()} ") == name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("THUNDERSTORM WINDS/FLASH FLOOD", "Thunderstorm Wind"),
        ("THUNDERSTORM WIND/ TREES", "Thunderstorm Wind"),
        ("THUNDERSTORM WINDS FUNNEL CLOU", "Thunderstorm Wind"),
        ("TSTM WIND", "Thunderstorm Wind"),
        ("HAIL FLOODING", "Hail"),
        ("HAIL/ICY ROADS", "Hail"),
        ("TORNADOES, TSTM WIND, HAIL", "Tornado"),
        ("TORNADO/WATERSPOUT", "Tornado"),
        ("FLASH FLOODING", "Flash Flood"),
        ("MARINE TSTM WIND", "Marine Thunderstorm Wind"),
        ("HURRICANE OPAL", "Hurricane (Typhoon)"),
        ("WILD/FOREST FIRE", "Wildfire"),
        ("SOMETHING ELSE ENTIRELY", OTHER_EVENT_TYPE),
        ("", OTHER_EVENT_TYPE),
    ],
)
def test_free_text_event_types_are_canonicalised(raw: str, expected: str) -> None:
    assert canonical_event_type(raw) == expected


@given(st.text(max_size=40))
def test_any_event_type_text_gets_a_known_name(raw: str) -> None:
    assert canonical_event_type(raw) in (*CANONICAL_EVENT_TYPES, OTHER_EVENT_TYPE)


@pytest.mark.parametrize(
    ("zone", "hours"),
    [
        ("CST", -6),
        ("CDT", -5),
        ("EST-5", -5),
        ("CST-6", -6),
        ("CSt", -6),
        ("SCT", -6),
        ("AST", -4),
        ("HST", -10),
        ("GMT", 0),
        ("GST10", 10),
    ],
)
def test_time_zone_names_give_utc_offsets(zone: str, hours: float) -> None:
    assert timezone_offset_hours(zone) == hours


@pytest.mark.parametrize("zone", ["UNK", "", "XYZ", "12"])
def test_unknown_time_zones_are_missing(zone: str) -> None:
    assert np.isnan(timezone_offset_hours(zone))


@given(
    year=st.integers(1950, 2049),
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_two_digit_years_take_their_century_from_yearmonth(
    year: int, month: int, day: int, hour: int, minute: int
) -> None:
    stamp = pd.Timestamp(year=year, month=month, day=day, hour=hour, minute=minute)
    text = stamp.strftime("%d-%b-%y %H:%M:%S").upper()
    parsed = parse_local_times(pd.Series([text]), pd.Series([f"{year}{month:02d}"]))[0]
    assert parsed == stamp


def _raw_rows(**overrides: str) -> pd.DataFrame:
    row = {
        "BEGIN_YEARMONTH": "195004",
        "END_YEARMONTH": "195004",
        "EPISODE_ID": "",
        "EVENT_ID": "10096222",
        "STATE": "OKLAHOMA",
        "STATE_FIPS": "40",
        "YEAR": "1950",
        "EVENT_TYPE": "Tornado",
        "CZ_TYPE": "C",
        "CZ_NAME": "WASHITA",
        "BEGIN_DATE_TIME": "28-APR-50 14:45:00",
        "CZ_TIMEZONE": "CST",
        "END_DATE_TIME": "28-APR-50 15:05:00",
        "INJURIES_DIRECT": "1",
        "INJURIES_INDIRECT": "0",
        "DEATHS_DIRECT": "0",
        "DEATHS_INDIRECT": "0",
        "DAMAGE_PROPERTY": "250K",
        "DAMAGE_CROPS": "0",
        "MAGNITUDE": "0",
        "MAGNITUDE_TYPE": "",
        "TOR_F_SCALE": "F3",
        "BEGIN_LAT": "35.12",
        "BEGIN_LON": "-99.2",
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_clean_details_converts_to_utc_with_a_duration() -> None:
    out = clean_details(_raw_rows())
    assert out.loc[0, "begin_utc"] == pd.Timestamp("1950-04-28 20:45:00", tz="UTC")
    assert out.loc[0, "duration_minutes"] == 20
    assert out.loc[0, "damage_property_usd"] == 250_000
    assert out.loc[0, "year"] == 1950


def test_clean_details_keeps_gaps_as_missing_values() -> None:
    out = clean_details(_raw_rows(BEGIN_LAT="", BEGIN_LON="", MAGNITUDE="", CZ_TIMEZONE="UNK", DAMAGE_PROPERTY=""))
    row = out.iloc[0]
    assert np.isnan(row["begin_lat"])
    assert np.isnan(row["magnitude"])
    assert np.isnan(row["damage_property_usd"])
    assert pd.isna(row["begin_utc"])
    assert row["duration_minutes"] == 20  # the local times share the zone, known or not
    assert label_damage(out).tolist() == [0]  # 1950: a blank estimate is "no damage reported"


@pytest.mark.parametrize(
    ("lat", "lon", "kept"),
    [
        ("0", "0", False),  # the files' placeholder for "unknown", in the Gulf of Guinea
        ("0.0", "0.00", False),
        ("91", "-99.2", False),
        ("-90.5", "-99.2", False),
        ("35.12", "181", False),
        ("35.12", "-180.01", False),
        ("0", "-99.2", True),  # on the equator is a place; only both zero is the placeholder
        ("35.12", "0", True),
        ("90", "-180", True),
        ("35.12", "-99.2", True),
    ],
)
def test_placeholder_and_out_of_range_coordinates_become_missing(lat: str, lon: str, kept: bool) -> None:
    row = clean_details(_raw_rows(BEGIN_LAT=lat, BEGIN_LON=lon)).iloc[0]
    if kept:
        assert (row["begin_lat"], row["begin_lon"]) == (float(lat), float(lon))
    else:
        assert np.isnan(row["begin_lat"])
        assert np.isnan(row["begin_lon"])
    assert row["event_id"] == 10096222, "the event is kept either way"


def test_clean_details_drops_rows_that_cannot_be_keyed() -> None:
    rows = pd.concat([_raw_rows(), _raw_rows(EVENT_ID="abc"), _raw_rows(BEGIN_YEARMONTH="", YEAR="")])
    assert clean_details(rows.reset_index(drop=True))["event_id"].tolist() == [10096222]


def test_end_before_begin_has_no_duration() -> None:
    out = clean_details(_raw_rows(END_DATE_TIME="28-APR-50 13:00:00"))
    assert np.isnan(out.loc[0, "duration_minutes"])


@pytest.mark.parametrize("year", [1993, 1994, 1995])
def test_real_sample_files_clean_without_losing_events(sample_dir: Path, year: int) -> None:
    path = next(sample_dir.glob(f"*_d{year}_*.csv.gz"))
    with gzip.open(path, "rt") as handle:
        raw = pd.read_csv(handle, dtype=str, keep_default_na=False)
    out = clean_details(raw)
    assert len(out) == len(raw)
    assert out["event_id"].is_unique
    assert set(out["year"]) == {year}
    assert out["begin_utc"].notna().mean() > 0.99
    known = out["tz_offset_hours"].notna()
    local = out.loc[known, "begin_local"].dt.tz_localize("UTC")
    shift = pd.to_timedelta(out.loc[known, "tz_offset_hours"], unit="h")
    assert (local - shift == out.loc[known, "begin_utc"]).all()
    assert set(out["event_type"]) <= {*CANONICAL_EVENT_TYPES, OTHER_EVENT_TYPE}
    assert out["damage_property_usd"].max() > 1e6


events = st.lists(
    st.tuples(
        st.one_of(st.none(), st.floats(min_value=-5, max_value=200, allow_nan=False)),
        st.sampled_from([*CANONICAL_EVENT_TYPES, OTHER_EVENT_TYPE]),
        st.sampled_from(["", *WIND_MAGNITUDE_TYPES, "XX"]),
    ),
    min_size=1,
    max_size=30,
)


@given(events=events)
def test_magnitude_splits_into_wind_knots_and_hail_inches(events: list[tuple[float | None, str, str]]) -> None:
    magnitude = pd.Series([np.nan if m is None else m for m, _, _ in events], dtype="float64")
    types = pd.Series([t for _, t, _ in events], dtype="string")
    kinds = pd.Series([k for _, _, k in events], dtype="string")
    wind, hail = split_magnitude(magnitude, types, kinds)
    for (value, event_type, kind), w, h in zip(events, wind, hail, strict=True):
        is_wind = event_type in WIND_EVENT_TYPES or kind in WIND_MAGNITUDE_TYPES
        is_hail = event_type in HAIL_EVENT_TYPES and not is_wind
        measured = value is not None and value > 0  # 0 is how older files write "not measured"
        assert (w == value) if (is_wind and measured) else np.isnan(w)
        assert (h == value) if (is_hail and measured) else np.isnan(h)
        assert np.isnan(w) or np.isnan(h)  # never both


def test_clean_details_splits_the_magnitude_by_event_type() -> None:
    rows = pd.concat(
        [
            _raw_rows(EVENT_TYPE="Thunderstorm Wind", MAGNITUDE="61", MAGNITUDE_TYPE="EG", TOR_F_SCALE=""),
            _raw_rows(EVENT_TYPE="HAIL", MAGNITUDE="1.75", TOR_F_SCALE=""),
            _raw_rows(EVENT_TYPE="Tornado", MAGNITUDE="0"),
        ]
    ).reset_index(drop=True)
    out = clean_details(rows)
    assert out["wind_speed_kt"].tolist()[0] == 61
    assert out["magnitude_type"].tolist()[0] == "EG"
    assert out["hail_size_in"].tolist()[1] == 1.75
    assert out[["wind_speed_kt", "hail_size_in"]].iloc[2].isna().all()
    assert out["era"].tolist() == ["1950-1954"] * 3


@pytest.mark.parametrize(
    ("event_type", "magnitude_type", "magnitude", "wind", "hail"),
    [
        ("Marine Thunderstorm Wind", "", 34.0, 34.0, None),  # a wind type, no magnitude type
        ("Hail", "EG", 50.0, 50.0, None),  # a gust measured on a hail event: knots, not inches
        ("Marine Hail", "", 0.75, None, 0.75),
        ("Tornado", "", 0.0, None, None),  # tornadoes are rated, not measured
        ("Flash Flood", "", 3.0, None, None),
        ("High Wind", "MS", 0.0, None, None),  # 0: not measured
    ],
)
def test_magnitude_cases_from_the_files(
    event_type: str, magnitude_type: str, magnitude: float, wind: float | None, hail: float | None
) -> None:
    w, h = split_magnitude(
        pd.Series([magnitude]), pd.Series([event_type], dtype="string"), pd.Series([magnitude_type], dtype="string")
    )
    assert np.isnan(w[0]) if wind is None else w[0] == wind
    assert np.isnan(h[0]) if hail is None else h[0] == hail


@given(year=st.integers(min_value=1950, max_value=2100))
def test_every_year_has_the_coverage_era_it_falls_in(year: int) -> None:
    expected = "1950-1954" if year < 1955 else "1955-1992" if year < 1993 else "1993-1995" if year < 1996 else "1996+"
    assert coverage_era(year) == expected
    assert eras(pd.Series([year], dtype="int32")).tolist() == [expected]


damages = st.one_of(st.none(), st.just(0.0), st.floats(min_value=0.01, max_value=1e10))


types = st.sampled_from(["Tornado", "Hail", "Thunderstorm Wind", "Flood"])


@given(rows=st.lists(st.tuples(st.integers(min_value=1950, max_value=2030), damages, types), min_size=1, max_size=40))
def test_damage_label_is_defined_per_era(rows: list[tuple[int, float | None, str]]) -> None:
    frame = pd.DataFrame(
        {
            "year": pd.Series([y for y, _, _ in rows], dtype="int32"),
            "damage_property_usd": pd.Series([np.nan if d is None else d for _, d, _ in rows], dtype="float64"),
            "event_type": pd.Series([t for _, _, t in rows], dtype="string"),
        }
    )
    labels = label_damage(frame)
    for (year, damage, event_type), label in zip(rows, labels, strict=True):
        if year < 1993 and event_type != "Tornado":
            assert np.isnan(label)  # only tornadoes had damage estimates before 1993: "0" is "not recorded"
        elif damage is not None:
            assert label == (1.0 if damage > 0 else 0.0)  # explicit "0.00K" is "no damage" in every era
        elif year >= 1996:
            assert np.isnan(label)  # blank from 1996 on: unknown, neither trains nor evaluates
        else:
            assert label == 0.0  # blank before 1996: no damage reported
