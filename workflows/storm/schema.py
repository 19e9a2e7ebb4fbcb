"""What a NOAA Storm Events "details" file (format v1.0) must contain, and the canonical names.

Reference: Storm-Data-Bulk-csv-Format.pdf and NWS Directive 10-1605 (the 48 event types).
"""

import re

DETAILS_FILE_PATTERN = re.compile(r"^StormEvents_details-ftp_v1\.0_d(?P<year>\d{4})_c\d{8}\.csv\.gz$")

# The header of format v1.0, in order. A column outside it means a file of another format.
DETAILS_COLUMNS: tuple[str, ...] = (
    "BEGIN_YEARMONTH",
    "BEGIN_DAY",
    "BEGIN_TIME",
    "END_YEARMONTH",
    "END_DAY",
    "END_TIME",
    "EPISODE_ID",
    "EVENT_ID",
    "STATE",
    "STATE_FIPS",
    "YEAR",
    "MONTH_NAME",
    "EVENT_TYPE",
    "CZ_TYPE",
    "CZ_FIPS",
    "CZ_NAME",
    "WFO",
    "BEGIN_DATE_TIME",
    "CZ_TIMEZONE",
    "END_DATE_TIME",
    "INJURIES_DIRECT",
    "INJURIES_INDIRECT",
    "DEATHS_DIRECT",
    "DEATHS_INDIRECT",
    "DAMAGE_PROPERTY",
    "DAMAGE_CROPS",
    "SOURCE",
    "MAGNITUDE",
    "MAGNITUDE_TYPE",
    "FLOOD_CAUSE",
    "CATEGORY",
    "TOR_F_SCALE",
    "TOR_LENGTH",
    "TOR_WIDTH",
    "TOR_OTHER_WFO",
    "TOR_OTHER_CZ_STATE",
    "TOR_OTHER_CZ_FIPS",
    "TOR_OTHER_CZ_NAME",
    "BEGIN_RANGE",
    "BEGIN_AZIMUTH",
    "BEGIN_LOCATION",
    "END_RANGE",
    "END_AZIMUTH",
    "END_LOCATION",
    "BEGIN_LAT",
    "BEGIN_LON",
    "END_LAT",
    "END_LON",
    "EPISODE_NARRATIVE",
    "EVENT_NARRATIVE",
    "DATA_SOURCE",
)

# Columns the pipeline reads; a file without one of them cannot be prepared.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "BEGIN_YEARMONTH",
    "END_YEARMONTH",
    "EPISODE_ID",
    "EVENT_ID",
    "STATE",
    "STATE_FIPS",
    "YEAR",
    "EVENT_TYPE",
    "CZ_TYPE",
    "CZ_NAME",
    "BEGIN_DATE_TIME",
    "CZ_TIMEZONE",
    "END_DATE_TIME",
    "INJURIES_DIRECT",
    "INJURIES_INDIRECT",
    "DEATHS_DIRECT",
    "DEATHS_INDIRECT",
    "DAMAGE_PROPERTY",
    "DAMAGE_CROPS",
    "MAGNITUDE",
    "MAGNITUDE_TYPE",
    "TOR_F_SCALE",
    "BEGIN_LAT",
    "BEGIN_LON",
)

CANONICAL_EVENT_TYPES: tuple[str, ...] = (
    "Astronomical Low Tide",
    "Avalanche",
    "Blizzard",
    "Coastal Flood",
    "Cold/Wind Chill",
    "Debris Flow",
    "Dense Fog",
    "Dense Smoke",
    "Drought",
    "Dust Devil",
    "Dust Storm",
    "Excessive Heat",
    "Extreme Cold/Wind Chill",
    "Flash Flood",
    "Flood",
    "Freezing Fog",
    "Frost/Freeze",
    "Funnel Cloud",
    "Hail",
    "Heat",
    "Heavy Rain",
    "Heavy Snow",
    "High Surf",
    "High Wind",
    "Hurricane (Typhoon)",
    "Ice Storm",
    "Lake-Effect Snow",
    "Lakeshore Flood",
    "Lightning",
    "Marine Hail",
    "Marine High Wind",
    "Marine Strong Wind",
    "Marine Thunderstorm Wind",
    "Rip Current",
    "Seiche",
    "Sleet",
    "Storm Surge/Tide",
    "Strong Wind",
    "Thunderstorm Wind",
    "Tornado",
    "Tropical Depression",
    "Tropical Storm",
    "Tsunami",
    "Volcanic Ash",
    "Waterspout",
    "Wildfire",
    "Winter Storm",
    "Winter Weather",
)
OTHER_EVENT_TYPE = "Other"

# MAGNITUDE is wind speed in knots for these types (MAGNITUDE_TYPE says how it was taken:
# EG/MG measured or ES/MS estimated gust or sustained) and hail size in inches for hail.
WIND_EVENT_TYPES: tuple[str, ...] = (
    "Thunderstorm Wind",
    "High Wind",
    "Strong Wind",
    "Marine Thunderstorm Wind",
    "Marine High Wind",
    "Marine Strong Wind",
)
WIND_MAGNITUDE_TYPES: tuple[str, ...] = ("EG", "MG", "ES", "MS")
HAIL_EVENT_TYPES: tuple[str, ...] = ("Hail", "Marine Hail")

# What the database covers changes by era (NCEI's "Storm Events Database: event types"):
# 1950-1954 tornadoes only; 1955-1992 tornado, thunderstorm wind and hail; 1993-1995 more
# types, in free text (the shared files: the same three and a few free-text rows a year); from
# 1996 the 48 types of NWS Directive 10-1605. Each era starts at
# its year; an era's name is what the model and the report see.
ERAS: tuple[tuple[int, str], ...] = ((1950, "1950-1954"), (1955, "1955-1992"), (1993, "1993-1995"), (1996, "1996+"))
# From 1996 the files write "no damage" explicitly ("0.00K"); a blank estimate is unknown.
EXPLICIT_DAMAGE_FROM = 1996
# Before 1993 only tornadoes have damage estimates: every one of the ~95,000 Thunderstorm Wind
# and Hail events of 1955-1992 in the shared files says "0" (measured: none above 0), which
# means "not recorded", not "no damage".
ALL_TYPES_DAMAGE_FROM = 1993
DAMAGE_RECORDED_BEFORE_1993 = ("Tornado",)


def era_start(year: int) -> int:
    """The first year of ``year``'s coverage era."""
    return max((start for start, _ in ERAS if start <= year), default=ERAS[0][0])


def coverage_era(year: int) -> str:
    """The name of ``year``'s coverage era ("1955-1992", "1996+", ...)."""
    return dict(ERAS)[era_start(year)]


# Columns whose every value must parse, or the file is quarantined: they key, date and
# partition each event.
INTEGER_COLUMNS: tuple[str, ...] = ("EVENT_ID", "BEGIN_YEARMONTH", "END_YEARMONTH", "YEAR")

# Free-text variants seen in the files ("THUNDERSTORM WINDS/FLASH FLOOD", "TSTM WIND", "HAIL
# FLOODING", "TORNADOES, TSTM WIND, HAIL"): the first phrase names the primary event. Ordered:
# the first pattern matching the start of the normalised first phrase wins.
EVENT_TYPE_ALIASES: tuple[tuple[str, str], ...] = (
    (r"MARINE (THUNDERSTORM|TSTM) WIND", "Marine Thunderstorm Wind"),
    (r"MARINE HAIL", "Marine Hail"),
    (r"MARINE HIGH WIND", "Marine High Wind"),
    (r"MARINE STRONG WIND", "Marine Strong Wind"),
    (r"(THUNDERSTORM|TSTM|THUNDERSTROM|THUNERSTORM|SEVERE THUNDERSTORM)", "Thunderstorm Wind"),
    (r"TORNADO|TORNDAO", "Tornado"),
    (r"WATERSPOUT", "Waterspout"),
    (r"FUNNEL", "Funnel Cloud"),
    (r"(SMALL )?HAIL", "Hail"),
    (r"FLASH FLOOD", "Flash Flood"),
    (r"COASTAL FLOOD", "Coastal Flood"),
    (r"LAKESHORE FLOOD", "Lakeshore Flood"),
    (r"(URBAN|RIVER)?\s*FLOOD", "Flood"),
    (r"LIGHTNING", "Lightning"),
    (r"HEAVY RAIN", "Heavy Rain"),
    (r"HIGH WIND", "High Wind"),
    (r"STRONG WIND", "Strong Wind"),
    (r"(HURRICANE|TYPHOON)", "Hurricane (Typhoon)"),
    (r"TROPICAL STORM", "Tropical Storm"),
    (r"TROPICAL DEPRESSION", "Tropical Depression"),
    (r"STORM SURGE", "Storm Surge/Tide"),
    (r"(WILD/FOREST|WILD|FOREST|BRUSH) ?FIRE", "Wildfire"),
    (r"BLIZZARD", "Blizzard"),
    (r"ICE STORM", "Ice Storm"),
    (r"LAKE.EFFECT SNOW", "Lake-Effect Snow"),
    (r"HEAVY SNOW", "Heavy Snow"),
    (r"WINTER STORM", "Winter Storm"),
    (r"WINTER WEATHER", "Winter Weather"),
    (r"EXTREME (COLD|WIND ?CHILL)", "Extreme Cold/Wind Chill"),
    (r"(COLD|WIND ?CHILL)", "Cold/Wind Chill"),
    (r"(FROST|FREEZE)", "Frost/Freeze"),
    (r"EXCESSIVE HEAT", "Excessive Heat"),
    (r"HEAT", "Heat"),
    (r"DROUGHT", "Drought"),
    (r"DENSE FOG|FOG", "Dense Fog"),
    (r"RIP CURRENT", "Rip Current"),
    (r"HIGH SURF", "High Surf"),
    (r"(LANDSLIDE|MUDSLIDE|DEBRIS FLOW)", "Debris Flow"),
    (r"DUST STORM", "Dust Storm"),
    (r"DUST DEVIL", "Dust Devil"),
    (r"AVALANCHE", "Avalanche"),
)

# Hours from UTC for the zone names seen in CZ_TIMEZONE. Newer files write "EST-5", "CST-6";
# older ones the abbreviation only, sometimes mistyped ("CSt", "SCT", "CSC").
TIMEZONE_OFFSETS: dict[str, float] = {
    "UTC": 0,
    "GMT": 0,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "AKST": -9,
    "AKDT": -8,
    "HST": -10,
    "AST": -4,
    "ADT": -3,
    "SST": -11,
    "GST": 10,
    "CHST": 10,
}
TIMEZONE_TYPOS: dict[str, str] = {"SCT": "CST", "CSC": "CST"}
