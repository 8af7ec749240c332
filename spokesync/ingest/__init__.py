"""Validated ingestion of landing files into the warehouse (see ``docs/ingestion.md``)."""

from spokesync.ingest.engine import IngestError, ingest_master, ingest_partition, landed_partitions
from spokesync.ingest.report import IngestReport, load_report

__all__ = [
    "IngestError",
    "IngestReport",
    "ingest_master",
    "ingest_partition",
    "landed_partitions",
    "load_report",
]
