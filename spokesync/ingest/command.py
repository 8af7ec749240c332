"""``spokesync ingest``: validate landing files into the warehouse, skipping unchanged ones."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from spokesync.ingest import ledger
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES, SOURCES
from spokesync.ingest.engine import (
    IngestError,
    IngestReport,
    ingest_master,
    ingest_partition,
    landed_partitions,
)
from spokesync.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        action="append",
        choices=sorted(SOURCES),
        help="source to ingest (repeatable; default: all)",
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--date", help="ingest this day only (YYYY-MM-DD)")
    when.add_argument(
        "--all", action="store_true", help="re-ingest every landed day, even unchanged ones"
    )
    parser.add_argument("--landing", type=Path, help="landing folder (default $SPOKESYNC_LANDING)")
    parser.add_argument("--home", type=Path, help="warehouse home (default $SPOKESYNC_HOME)")
    parser.add_argument("--force", action="store_true", help="ingest even if unchanged")
    parser.add_argument("--run-id", default=None, help="run id recorded with quarantined rows")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(home=args.home, landing=args.landing)
    landing, warehouse = settings.landing, settings.warehouse_dir
    run_id = args.run_id or f"cli-{uuid.uuid4().hex[:12]}"
    sources = args.source or list(SOURCES)
    force = args.force or args.all or args.date is not None
    failed = 0
    print(f"{'source':<16} {'partition':<11} {'read':>9} {'valid':>9} {'quar.':>7}  note")
    for source in sources:
        if source in MASTER_SOURCES:
            targets: list[str | None] = [None]
        else:
            days = landed_partitions(source, landing)
            targets = [args.date] if args.date else list(days)
        for day in targets:
            if not force and ledger.is_up_to_date(source, landing, warehouse, day):
                continue
            try:
                if day is None:
                    report = ingest_master(source, landing, warehouse, run_id)
                else:
                    report = ingest_partition(source, day, landing, warehouse, run_id)
            except IngestError as e:
                failed += 1
                print(f"{source:<16} {day or 'master':<11} FAILED: {e}")
                continue
            ledger.record(source, landing, warehouse, day)
            _print(report)
    assert set(sources) <= set(PARTITIONED_SOURCES) | set(MASTER_SOURCES)
    return 1 if failed else 0


def _print(r: IngestReport) -> None:
    notes = []
    if r.columns_added:
        notes.append(f"extra columns {r.columns_added} dropped")
    if r.columns_missing:
        notes.append(f"missing columns {r.columns_missing}")
    if r.rows_normalised:
        notes.append(f"{r.rows_normalised} normalised")
    print(
        f"{r.source:<16} {r.partition or 'master':<11} {r.rows_read:>9} {r.rows_valid:>9} "
        f"{r.rows_quarantined:>7}  {'; '.join(notes)}"
    )
