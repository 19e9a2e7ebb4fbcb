"""NOAA Storm Events: the schema of the raw files and the parsers that clean them."""
