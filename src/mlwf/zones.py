"""Where each stage reads and writes, derived from one data root URL (a folder or s3://bucket/prefix)."""

from __future__ import annotations

from dataclasses import dataclass

from mlwf import storage


@dataclass(frozen=True)
class Zones:
    root: str

    @property
    def raw(self) -> str:
        return storage.join(self.root, "raw", "storm_events")

    @property
    def curated(self) -> str:
        return storage.join(self.root, "curated", "storm_events")

    @property
    def models(self) -> str:
        return storage.join(self.root, "models")

    @property
    def scores(self) -> str:
        return storage.join(self.root, "scores", "storm_damage")

    @property
    def reports(self) -> str:
        return storage.join(self.root, "reports", "storm_damage")
