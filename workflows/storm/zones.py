"""Where each stage reads and writes, derived from one data root URL (a folder or s3://bucket/prefix)
and the prefixes the workload declares (`workflows.storm.workload`)."""

from __future__ import annotations

from dataclasses import dataclass

from mlwf import storage
from workflows.storm.workload import CURATED, MODELS, RAW, REPORTS, SCORES


@dataclass(frozen=True)
class Zones:
    root: str

    @property
    def raw(self) -> str:
        return storage.join(self.root, RAW)

    @property
    def curated(self) -> str:
        return storage.join(self.root, CURATED)

    @property
    def models(self) -> str:
        """The model store's root (it keeps each model under its name: ``MODELS``)."""
        return storage.join(self.root, MODELS.rsplit("/", 1)[0])

    @property
    def scores(self) -> str:
        return storage.join(self.root, SCORES)

    @property
    def reports(self) -> str:
        return storage.join(self.root, REPORTS)
