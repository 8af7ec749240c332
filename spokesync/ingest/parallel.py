"""Ingest many days of one source on every core: one worker process per core, one partition
per task (each partition's DuckDB scan runs on one thread, its conversion and de-duplication
hold the GIL, so whole days in parallel processes use the cores best).

A single-run backfill over a range calls this; one day runs in-process (no worker start-up).
Workers are spawned (not forked: DuckDB and Arrow hold threads), and each day's files are
written and renamed by its own worker, exactly as a sequential run would.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from spokesync.ingest.engine import ingest_partition
from spokesync.ingest.report import IngestReport

WORKERS_ENV = "SPOKESYNC_INGEST_WORKERS"


def default_workers() -> int:
    raw = os.environ.get(WORKERS_ENV)
    if raw is not None:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{WORKERS_ENV} must be a whole number ≥ 1, not {raw!r}")
        return int(raw)
    return os.cpu_count() or 1


def ingest_partitions(
    source: str,
    days: Sequence[str],
    landing: Path,
    warehouse_dir: Path,
    run_id: str,
    workers: int | None = None,
) -> Iterator[IngestReport]:
    """Ingest ``days`` of ``source``; yields each day's report in the order of ``days``. The
    first :class:`~spokesync.ingest.engine.IngestError` is raised after the days before it
    were yielded (days already running finish; nothing half-written is left)."""
    workers = min(workers or default_workers(), len(days))
    if workers <= 1:
        for day in days:
            yield ingest_partition(source, day, landing, warehouse_dir, run_id)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [
            pool.submit(ingest_partition, source, day, Path(landing), Path(warehouse_dir), run_id)
            for day in days
        ]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
