"""``spokesync ingest``: validate landing files into the warehouse, skipping unchanged ones."""

from __future__ import annotations

import argparse
import errno
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from spokesync.ingest import ledger
from spokesync.ingest.contract import MASTER_SOURCES, SOURCES
from spokesync.ingest.engine import IngestError, IngestReport, landed_partitions
from spokesync.ingest.parallel import ingest_each
from spokesync.progress import Progress
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


HEADER = f"{'source':<16} {'partition':<11} {'read':>9} {'valid':>9} {'quar.':>7}  note"


def ingest_new(
    settings: Settings,
    sources: Sequence[str] | None = None,
    day: str | None = None,
    force: bool = False,
    run_id: str | None = None,
    show_progress: bool = False,
) -> Iterator[str]:
    """Ingest what changed in the landing folder (or ``day`` / everything with ``force``),
    yielding one printable line per partition; a partition that cannot be read yields a
    FAILED line naming the file and leaves the warehouse untouched. ``show_progress``: rows/s,
    partitions done and time left on stderr (live on a terminal; one line at the end otherwise). Raises
    :class:`IngestFailed` at the end if any partition failed."""
    landing, warehouse = settings.landing, settings.warehouse_dir
    if not Path(landing).is_dir():
        raise FileNotFoundError(
            errno.ENOENT,
            "the landing folder does not exist: set SPOKESYNC_LANDING (or --landing) to the "
            "folder the warehouse exports land in, or create sample files with "
            "`spokesync sample-data`",
            str(landing),
        )
    run_id = run_id or f"cli-{uuid.uuid4().hex[:12]}"
    failed = []
    work: list[tuple[str, str | None]] = []
    for source in sources or SOURCES:
        if source in MASTER_SOURCES:
            targets: list[str | None] = [None]
        else:
            targets = [day] if day else list(landed_partitions(source, landing))
        work += [
            (source, t)
            for t in targets
            if force or not ledger.is_up_to_date(source, landing, warehouse, t)
        ]
    progress = Progress(
        "ingest",
        unit="rows",
        total_batches=len(work),
        batch_unit="partitions",
        enabled=show_progress and bool(work),
    )
    with progress:
        # Partitions run on every core ($SPOKESYNC_INGEST_WORKERS), reported in order.
        for (source, target), report in ingest_each(work, landing, warehouse, run_id):
            if isinstance(report, IngestError):
                failed.append(f"{source} {target or 'master'}")
                progress.clear()
                yield f"{source:<16} {target or 'master':<11} FAILED: {report}"
                progress.advance(0, batches=1)
                continue
            ledger.record(source, landing, warehouse, target)
            progress.clear()
            yield _line(report)
            progress.advance(report.rows_read, batches=1)
    if failed:
        raise IngestFailed(f"{len(failed)} partition(s) failed: {', '.join(failed)}")


class IngestFailed(RuntimeError):
    """Some partitions could not be ingested (the others were)."""


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(home=args.home, landing=args.landing)
    force = args.force or args.all or args.date is not None
    print(HEADER)
    try:
        for line in ingest_new(
            settings, args.source, args.date, force, args.run_id, show_progress=True
        ):
            print(line)
    except IngestFailed as e:
        print(e)
        return 1
    return 0


def _line(r: IngestReport) -> str:
    notes = []
    if r.columns_added:
        notes.append(f"extra columns {r.columns_added} dropped")
    if r.columns_missing:
        notes.append(f"missing columns {r.columns_missing}")
    if r.rows_normalised:
        notes.append(f"{r.rows_normalised} normalised")
    return (
        f"{r.source:<16} {r.partition or 'master':<11} {r.rows_read:>9} {r.rows_valid:>9} "
        f"{r.rows_quarantined:>7}  {'; '.join(notes)}"
    )
