"""Ingest many partitions on every core: one worker process per core, one partition per task
(each partition's DuckDB scan runs on one thread, its conversion and de-duplication hold the
GIL, so whole partitions in parallel processes use the cores best).

A single-run Dagster backfill over a range (:func:`ingest_partitions`) and ``spokesync
ingest`` over every changed day and master table (:func:`ingest_each`) call this; a single
partition runs in-process (no worker start-up). Workers are spawned (not forked: DuckDB and
Arrow hold threads) and import only the fast path (no pandas, no pandera: ~0.4 s of CPU each);
each partition's files are written and renamed by its own worker, exactly as a sequential run
would.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from spokesync.ingest.engine import IngestError, ingest_master, ingest_partition
from spokesync.ingest.readers import landing_files
from spokesync.ingest.report import IngestReport

WORKERS_ENV = "SPOKESYNC_INGEST_WORKERS"
# Unless $SPOKESYNC_INGEST_WORKERS says otherwise, work smaller than this (landing bytes in
# total) runs in-process: a spawned worker's start-up (~0.5 s of CPU) costs about what
# ingesting ~15 MB of CSV does, so two workers only pay off on more than a few such files.
SPAWN_MIN_BYTES = 32 * 1024 * 1024

# A partition to ingest: (source, day), day None for a master table.
Target = tuple[str, str | None]


def default_workers() -> int:
    raw = os.environ.get(WORKERS_ENV)
    if raw is not None:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{WORKERS_ENV} must be a whole number ≥ 1, not {raw!r}")
        return int(raw)
    return os.cpu_count() or 1


def _landed_bytes(work: Sequence[Target], landing: Path) -> int:
    return sum(f.stat().st_size for s, d in work for f in landing_files(s, landing, d))


def _one(
    source: str, day: str | None, landing: Path, warehouse_dir: Path, run_id: str
) -> IngestReport | IngestError:
    """One partition; its :class:`IngestError` returned (a worker's result), not raised."""
    try:
        if day is None:
            return ingest_master(source, landing, warehouse_dir, run_id)
        return ingest_partition(source, day, landing, warehouse_dir, run_id)
    except IngestError as e:
        return e


def ingest_each(
    work: Sequence[Target],
    landing: Path,
    warehouse_dir: Path,
    run_id: str,
    workers: int | None = None,
) -> Iterator[tuple[Target, IngestReport | IngestError]]:
    """Ingest every target of ``work``; yields each one's report, or the
    :class:`~spokesync.ingest.engine.IngestError` that left it untouched, in the order of
    ``work`` (a partition that fails does not stop the others). Any other error is raised.
    Without ``workers`` or $SPOKESYNC_INGEST_WORKERS, small work (:data:`SPAWN_MIN_BYTES`)
    runs in-process."""
    landing, warehouse_dir = Path(landing), Path(warehouse_dir)
    if workers is None:
        workers = default_workers()
        if os.environ.get(WORKERS_ENV) is None and _landed_bytes(work, landing) < SPAWN_MIN_BYTES:
            workers = 1
    workers = min(workers, len(work))
    if workers <= 1:
        for source, day in work:
            yield (source, day), _one(source, day, landing, warehouse_dir, run_id)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [
            pool.submit(_one, source, day, landing, warehouse_dir, run_id) for source, day in work
        ]
        try:
            for target, future in zip(work, futures, strict=True):
                yield target, future.result()
        finally:
            for future in futures:
                future.cancel()


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
    for _, result in ingest_each(
        [(source, d) for d in days], landing, warehouse_dir, run_id, workers
    ):
        if isinstance(result, IngestError):
            raise result
        yield result
