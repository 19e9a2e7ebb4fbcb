"""The storm-damage workload: NOAA Storm Events ingested, cleaned, modelled and scored.

A tenant of the platform like any other: it is declared in `workload.py`, its flows
(`flows.py`) use only the platform's public API (`mlwf.cluster`, `mlwf.data_root`), and its
library modules (ingest, prepare, features, model, scorer, score, report, model store) are
plain functions tested without Prefect.
"""
