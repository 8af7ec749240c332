"""The warehouse as a Dagster resource: paths from SPOKESYNC_HOME / SPOKESYNC_LANDING, and the
ingestion engine calls. Thin on purpose; the work is in :mod:`spokesync.ingest`."""

from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
from pydantic import Field

from spokesync.ingest import (
    IngestReport,
    ingest_master,
    ingest_partition,
    landed_partitions,
    load_report,
)
from spokesync.ingest.parallel import ingest_partitions
from spokesync.settings import Settings


class WarehouseResource(dg.ConfigurableResource):
    """Where landing files and the warehouse live, and the quarantine-rate thresholds."""

    home: str | None = Field(None, description="default: $SPOKESYNC_HOME, else ./data")
    landing: str | None = Field(None, description="default: $SPOKESYNC_LANDING, else home/landing")
    quarantine_warn_rate: float = Field(0.01, ge=0, le=1, description="warn above this share")
    quarantine_error_rate: float = Field(
        0.05, ge=0, le=1, description="blocking error above this share of a partition's rows"
    )

    def settings(self) -> Settings:
        return Settings.from_env(home=self.home, landing=self.landing)

    @property
    def landing_dir(self) -> Path:
        return self.settings().landing

    @property
    def warehouse_dir(self) -> Path:
        return self.settings().warehouse_dir

    def landed_partitions(self, source: str) -> list[str]:
        return landed_partitions(source, self.landing_dir)

    def ingest_partition(self, source: str, day: str, run_id: str) -> IngestReport:
        return ingest_partition(source, day, self.landing_dir, self.warehouse_dir, run_id)

    def ingest_partitions(
        self, source: str, days: Sequence[str], run_id: str
    ) -> Iterator[IngestReport]:
        """Many days at once, one worker process per core (a single-run backfill)."""
        return ingest_partitions(source, days, self.landing_dir, self.warehouse_dir, run_id)

    def ingest_master(self, source: str, run_id: str) -> IngestReport:
        return ingest_master(source, self.landing_dir, self.warehouse_dir, run_id)

    def last_report(self, source: str, partition: str | None) -> IngestReport | None:
        return load_report(self.warehouse_dir, source, partition)
