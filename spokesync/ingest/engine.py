"""Ingest one source's landing files for one day (or the master snapshot) into the warehouse.

Valid rows go to ``warehouse/<table>/date=D/data.parquet`` (or ``<table>/data.parquet``),
written to a temporary file and renamed into place, so a re-run replaces the partition and a
failure leaves the previous version untouched. Rows that fail go to
``warehouse/quarantine/source=<table>/date=D/<run_id>.parquet``; older quarantine files of the
same source and partition are removed once the new one is in place. Streaming: files are read
in chunks of ``chunk_rows`` rows and never held whole in pandas.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spokesync.ingest.arrays import arrow_of, numpy_of
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES, SOURCES, null_tokens
from spokesync.ingest.dedupe import Displaced, Winners
from spokesync.ingest.quarantine import Frame, quarantine_table, scanned_quarantine
from spokesync.ingest.readers import DEFAULT_CHUNK_ROWS, UnreadableFile, landing_files
from spokesync.ingest.report import IngestReport, save_report
from spokesync.ingest.scan import FAILS_TYPE, Refused, ScanBatch, first_line_number, scan
from spokesync.ingest.threads import BackgroundWriter, prefetch
from spokesync.warehouse import master_path, partition_path, quarantine_path

DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Daily export file names: invoices_2026-01-05.csv, tickets_2026-01-05.jsonl (not temp files).
log = logging.getLogger(__name__)
_DAILY_FILE = re.compile(r"^[a-z]+_(\d{4}-\d{2}-\d{2})\.(csv|jsonl)$")


class IngestError(Exception):
    """The partition could not be ingested (nothing was written); the message says why."""


def landed_partitions(source: str, landing: Path) -> list[str]:
    """Days (``YYYY-MM-DD``) for which ``source`` has landing files, sorted."""
    landing = Path(landing)
    if source not in PARTITIONED_SOURCES:
        raise ValueError(f"{source!r} is not a daily source; expected one of {PARTITIONED_SOURCES}")
    if source == "product_usage":
        base = landing / "product_usage"
        days = {p.name[5:] for p in base.glob("date=*") if any(p.glob("*.parquet"))}
    else:
        folder = landing / ("support/tickets" if source == "support_tickets" else f"erp/{source}")
        if not folder.is_dir():
            return []
        days = {m.group(1) for p in folder.iterdir() if (m := _DAILY_FILE.match(p.name))}
    return sorted(d for d in days if DAY_RE.match(d))


def ingest_partition(
    source: str,
    day: str,
    landing: Path,
    warehouse_dir: Path,
    run_id: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> IngestReport:
    """Ingest ``source`` for ``day``; raises :class:`IngestError` when nothing can be loaded."""
    if source not in PARTITIONED_SOURCES:
        raise ValueError(f"{source!r} is not a daily source; expected one of {PARTITIONED_SOURCES}")
    if not DAY_RE.match(day):
        raise ValueError(f"partition must be YYYY-MM-DD, not {day!r}")
    out = partition_path(Path(warehouse_dir), source, day)
    return _ingest(source, day, Path(landing), Path(warehouse_dir), run_id, out, chunk_rows)


def ingest_master(
    source: str,
    landing: Path,
    warehouse_dir: Path,
    run_id: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> IngestReport:
    """Ingest a master-data snapshot (``accounts`` / ``users``), replacing the table."""
    if source not in MASTER_SOURCES:
        raise ValueError(f"{source!r} is not master data; expected one of {MASTER_SOURCES}")
    out = master_path(Path(warehouse_dir), source)
    return _ingest(source, None, Path(landing), Path(warehouse_dir), run_id, out, chunk_rows)


def _ingest(
    source: str,
    day: str | None,
    landing: Path,
    warehouse_dir: Path,
    run_id: str,
    out: Path,
    chunk_rows: int,
) -> IngestReport:
    started = time.perf_counter()
    files = landing_files(source, landing, day)
    if not files:
        where = landing / "master" if day is None else landing
        raise IngestError(f"no landing files for {source} on {day or 'master'} under {where}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{run_id}.tmp")
    try:
        with _gc_paused(), _arrow_pool():
            try:
                run = _Run(source, day, landing, run_id, files, tmp)
                run.scan_files(chunk_rows)
            except Refused as why:
                # Not a file the fast path reproduces exactly: the streaming readers instead.
                log.debug("ingest %s %s: streaming readers (%s)", source, day or "master", why)
                run = _Run(source, day, landing, run_id, files, tmp)
                run.read_files(chunk_rows)
            report = run.finish()
        qpath = _write_quarantine(warehouse_dir, source, day, run_id, run.quarantined)
        os.replace(tmp, out)
    except UnreadableFile as e:
        raise IngestError(f"{source} {day or 'master'}: {e}; nothing was written") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _clean_old_quarantine(warehouse_dir, source, day, run_id)
    report.quarantine_path = str(qpath) if qpath else None
    report.output_path = str(out)
    report.preview_markdown = _preview(run.seen.con, run.preview, report)
    report.duration_s = time.perf_counter() - started
    save_report(warehouse_dir, report)
    return report


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a partition streams through: the few objects it
    makes per batch are freed by reference counting, and a full collection over a process
    that imported Dagster and pandas took ~9% of an ingest's CPU (py-spy)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@contextlib.contextmanager
def _arrow_pool() -> Iterator[None]:
    """Arrow's jemalloc pool while a partition streams through (when this pyarrow has it):
    with the default mimalloc pool the kernel time of returning freed pages and faulting them
    in again took 0.85-0.95 s of a 1.5 s Parquet ingest, with jemalloc 0.30-0.34 s (the same
    user time; docs/benchmarks.md, "The Arrow path in the engine"). Buffers remember their
    pool, so restoring the previous default afterwards is safe."""
    try:
        pool = pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowException):
        yield
        return
    was = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(was)


class _Run:
    """One attempt at a partition: its output file, de-duplication state, quarantine rows
    and counts. The fast path (:meth:`scan_files`) and the streaming readers
    (:meth:`read_files`) fill the same state; :meth:`finish` completes the report."""

    def __init__(
        self,
        source: str,
        day: str | None,
        landing: Path,
        run_id: str,
        files: list[Path],
        tmp: Path,
    ) -> None:
        self.source, self.day, self.landing, self.run_id = source, day, landing, run_id
        self.spec = SOURCES[source]
        self.schema = self.spec.arrow_schema()
        self.files, self.tmp = files, tmp
        self.report = IngestReport(source, day, run_id)
        self.report.files = [str(f.relative_to(landing)) for f in files]
        self.file_index = {
            str(f.relative_to(landing)) if f.is_relative_to(landing) else str(f): i
            for i, f in enumerate(files)
        }
        self.seen = Winners(newest_wins=self.spec.updated_at is not None)
        self.displaced: list[Displaced] = []
        self.quarantined: list[pa.Table] = []
        self.failed_counts: Counter[str] = Counter()
        self.added: list[str] = []
        self.missing: list[str] = []
        self.written = 0
        self.preview: pa.Table | None = None
        self.now = dt.datetime.now(dt.UTC)

    # -- the fast path -------------------------------------------------------------------
    def scan_files(self, chunk_rows: int) -> None:
        tokens = null_tokens(self.source)
        with (
            pq.ParquetWriter(self.tmp, self.schema, compression="snappy") as writer,
            BackgroundWriter(writer) as writes,
        ):
            for rel, path in zip(self.file_index, self.files, strict=True):
                columns, batches = scan(self.source, path, rel, self.day, tokens, chunk_rows)
                self.added += [
                    c for c in columns if c not in self.spec.column_names and c not in self.added
                ]
                self.missing += [
                    c for c in self.spec.column_names if c not in columns and c not in self.missing
                ]
                bad: list[pa.Table] = []
                for batch in batches:
                    bad += self._scanned(batch, rel, writes)
                if bad:
                    self._quarantine_scanned(rel, pa.concat_tables(bad))

    def _scanned(self, batch: ScanBatch, rel: str, writes: BackgroundWriter) -> list[pa.Table]:
        """Write one batch's winning valid rows; return its quarantine parts (failing rows,
        rows of a duplicated key that lost)."""
        b, spec, ok = batch.values, self.spec, batch.ok
        n = b.num_rows
        self.report.rows_read += n
        self.report.rows_normalised += batch.normalised
        base = first_line_number(spec.format) + batch.offset
        valid = ok.copy()
        positions = np.flatnonzero(ok)
        parts: list[pa.Table] = []
        if len(positions):
            every = len(positions) == n
            mask = arrow_of(ok)
            keys = b.column(spec.key) if every else b.column(spec.key).filter(mask)
            hashes = None if batch.hashes is None else batch.hashes[positions]
            updated = None
            if batch.updated is not None:
                stamps = batch.updated if every else batch.updated.filter(mask)
                updated = numpy_of(stamps)  # never NULL where ok
            win, gone = self.seen.offer(
                keys, updated, self.file_index[rel], base + positions, self.written, hashes
            )
            if gone is not None:
                self.displaced.append(gone)
            if not win.all():
                dups = positions[~win]
                valid[dups] = False
                parts.append(self._superseded_here(b, dups, base))
        n_good = int(np.count_nonzero(valid))
        if n_good:
            good = b.select(self.schema.names)
            if n_good < n:
                good = good.filter(arrow_of(valid))
            good = good.cast(self.schema)
            writes.submit(good)
            if self.preview is None:
                self.preview = good.slice(0, 5)
        self.report.rows_valid += n_good
        self.written += n_good
        failing = batch.failing
        if failing.num_rows:
            rows = numpy_of(failing.column("row")) + base
            parts.append(
                pa.table(
                    {
                        "row_number": arrow_of(rows),
                        "raw_row": failing.column("raw_row"),
                        "fails": failing.column("fails"),
                    }
                )
            )
        return parts

    def _superseded_here(self, b: pa.Table, dups: np.ndarray, base: int) -> pa.Table:
        """Rows of a key that lost within this batch (or to a row already kept): quarantined
        as superseded, ``raw_row`` holding the row as loaded (it passed every check)."""
        rows = b.select(self.schema.names).take(arrow_of(dups))
        con = self.seen.con
        key = self.spec.key
        con.register("q_dups", rows)
        try:
            out = con.sql(
                "SELECT CAST(to_json(d) AS VARCHAR) AS r, [{'column': $key, "
                "'check': 'superseded', 'failure_case': CAST(d[$key] AS VARCHAR)}] AS f "
                "FROM q_dups d",
                params={"key": key},
            ).to_arrow_table()
        finally:
            con.unregister("q_dups")
        return pa.table(
            {
                "row_number": arrow_of(base + dups),
                "raw_row": out.column("r"),
                "fails": out.column("f").cast(FAILS_TYPE),
            }
        )

    def _quarantine_scanned(self, rel: str, rows: pa.Table) -> None:
        table, counts = scanned_quarantine(
            self.seen.con, source=self.source, partition=self.day, file=rel,
            run_id=self.run_id, at=self.now, rows=rows,
        )  # fmt: skip
        self.failed_counts.update(counts)
        self.quarantined.append(table)

    # -- the streaming readers -----------------------------------------------------------
    def _quarantine(
        self, con: duckdb.DuckDBPyConnection, file: str, rows: Frame, fails: Frame
    ) -> pa.Table:
        return quarantine_table(
            con, source=self.source, partition=self.day, file=file, run_id=self.run_id,
            at=self.now, rows=rows, failures=fails,
        )  # fmt: skip

    def read_files(self, chunk_rows: int) -> None:
        # pandas, the chunk checks and the readers' parsing: only for a partition the fast
        # path refused (a worker on the fast path never imports pandas or pandera).
        import pandas as pd

        from spokesync.ingest.chunk_check import check_chunk
        from spokesync.ingest.quarantine import raw_rows
        from spokesync.ingest.readers import read_source
        from spokesync.ingest.validate import failures_frame

        source, spec, schema, seen, report = (
            self.source, self.spec, self.schema, self.seen, self.report,
        )  # fmt: skip
        with (
            pq.ParquetWriter(self.tmp, schema, compression="snappy") as writer,
            BackgroundWriter(writer) as writes,
        ):
            for chunk in prefetch(read_source(source, self.files, self.landing, chunk_rows)):
                report.rows_read += len(chunk.unparsed) + chunk.table.num_rows
                self.added += [
                    c for c in chunk.columns if c not in spec.column_names and c not in self.added
                ]
                if chunk.unparsed:
                    pos = -1 - np.arange(len(chunk.unparsed))  # not rows of the frame
                    check = "parse_json" if spec.format == "jsonl" else "parse_csv"
                    bad_rows = pd.DataFrame(
                        {
                            "pos": pos,
                            "row_number": [u.row_number for u in chunk.unparsed],
                            "raw_row": [u.raw for u in chunk.unparsed],
                        }
                    )
                    fails = failures_frame(pos, None, check, [u.error for u in chunk.unparsed])
                    self.quarantined.append(self._quarantine(seen.con, chunk.file, bad_rows, fails))
                    self.failed_counts[f"None:{check}"] += len(chunk.unparsed)
                if chunk.table.num_rows == 0:
                    self.missing += [c for c in spec.column_names if c not in chunk.columns]
                    continue
                v = check_chunk(source, chunk.table, self.day)
                self.missing += [c for c in v.columns_missing if c not in self.missing]
                report.rows_normalised += v.normalised
                valid = v.valid.copy()
                failures = v.failures
                positions = np.flatnonzero(valid)
                if len(positions):
                    mask = pa.array(valid)
                    keys = v.table.column(spec.key).filter(mask)
                    updated = None
                    if spec.updated_at is not None:
                        stamps = v.table.column(spec.updated_at).filter(mask)
                        updated = stamps.cast(pa.int64()).to_numpy()
                    win, gone = seen.offer(
                        keys,
                        updated,
                        self.file_index[chunk.file],
                        chunk.row_numbers[positions],
                        self.written,
                    )
                    if gone is not None:
                        self.displaced.append(gone)
                    if not win.all():
                        dups = positions[~win]
                        dup_keys = keys.filter(pa.array(~win)).to_pylist()
                        dup_fails = failures_frame(dups, spec.key, "superseded", dup_keys)
                        failures = pd.concat([failures, dup_fails], ignore_index=True)
                        valid[dups] = False
                n_good = int(valid.sum())
                if n_good:
                    good = v.table.filter(pa.array(valid)).cast(schema)
                    writes.submit(good)
                    if self.preview is None:
                        self.preview = good.slice(0, 5)
                report.rows_valid += n_good
                self.written += n_good
                bad_positions = np.flatnonzero(~valid)
                if len(bad_positions):
                    bad_rows = pd.DataFrame(
                        {
                            "pos": bad_positions,
                            "row_number": chunk.row_numbers[bad_positions],
                            "raw_row": raw_rows(chunk, bad_positions, seen.con),
                        }
                    )
                    self.quarantined.append(
                        self._quarantine(seen.con, chunk.file, bad_rows, failures)
                    )
                    counts = (
                        failures["column"].astype("str") + ":" + failures["check"].astype("str")
                    )
                    self.failed_counts.update(counts.value_counts().to_dict())

    # -- both ----------------------------------------------------------------------------
    def finish(self) -> IngestReport:
        """Remove rows displaced after they were written; complete the report."""
        report, spec = self.report, self.spec
        if self.displaced:
            gone = _drop_displaced(self.tmp, self.schema, self.displaced)
            report.rows_valid -= gone.num_rows
            self.quarantined += _superseded_rows(
                self.seen.con, gone, self.displaced, list(self.file_index), spec.key,
                self._quarantine,
            )  # fmt: skip
            self.failed_counts[f"{spec.key}:superseded"] += gone.num_rows
        report.rows_superseded = self.failed_counts.get(f"{spec.key}:superseded", 0)
        report.rows_quarantined = sum(t.num_rows for t in self.quarantined)
        report.columns_added = sorted(set(self.added))
        report.columns_missing = sorted(set(self.missing))
        report.failed_checks = dict(sorted(self.failed_counts.items()))
        return report


def _drop_displaced(tmp: Path, schema: pa.Schema, displaced: list[Displaced]) -> pa.Table:
    """Rewrite ``tmp`` without the rows a newer row displaced; return those rows, in the
    order of ``displaced`` (streamed batch by batch: memory stays bounded)."""
    ordinals = np.concatenate([d.ordinals for d in displaced])
    order = np.argsort(ordinals, kind="stable")
    sorted_ordinals = ordinals[order]
    out = tmp.with_name(tmp.name + ".dedup")
    removed: list[pa.Table] = []
    offset = 0
    with pq.ParquetWriter(out, schema, compression="snappy") as writer:
        for batch in pq.ParquetFile(tmp).iter_batches(batch_size=DEFAULT_CHUNK_ROWS):
            n = batch.num_rows
            lo, hi = np.searchsorted(sorted_ordinals, [offset, offset + n])
            drop = np.zeros(n, dtype=bool)
            drop[sorted_ordinals[lo:hi] - offset] = True
            table = pa.Table.from_batches([batch], schema=schema)
            if drop.any():
                removed.append(table.filter(pa.array(drop)))
                table = table.filter(pa.array(~drop))
            writer.write_table(table)
            offset += n
    os.replace(out, tmp)
    gone = pa.concat_tables(removed) if removed else schema.empty_table()
    # gone is in ordinal order; put it back in the order of ``displaced``.
    back = np.empty(len(order), dtype=np.int64)
    back[order] = np.arange(len(order))
    return gone.take(pa.array(back))


def _superseded_rows(
    con: duckdb.DuckDBPyConnection,
    gone: pa.Table,
    displaced: list[Displaced],
    file_names: list[str],
    key: str,
    quarantine_file: Callable[[duckdb.DuckDBPyConnection, str, Frame, Frame], pa.Table],
) -> list[pa.Table]:
    """Quarantine rows for rows displaced after they were written (their values as loaded)."""
    files = np.concatenate([d.files for d in displaced])
    numbers = np.concatenate([d.row_numbers for d in displaced])
    keys = [k for d in displaced for k in d.keys]
    con.register("q_gone", gone)
    try:
        raw = [
            r[0] for r in con.execute("SELECT CAST(to_json(g) AS VARCHAR) FROM q_gone g").fetchall()
        ]
    finally:
        con.unregister("q_gone")
    out = []
    for f in np.unique(files):
        at = np.flatnonzero(files == f)
        pos = -1 - at  # not positions of any chunk
        rows = pa.table(
            {"pos": pos, "row_number": numbers[at], "raw_row": pa.array([raw[i] for i in at])}
        )
        fails = pa.table(
            {
                "pos": pos,
                "column": pa.array([key] * len(at), pa.string()),
                "check": pa.array(["superseded"] * len(at), pa.string()),
                "failure_case": pa.array([keys[i] for i in at]),
            }
        )
        out.append(quarantine_file(con, file_names[int(f)], rows, fails))
    return out


def _write_quarantine(
    warehouse_dir: Path, source: str, day: str | None, run_id: str, tables: list[pa.Table]
) -> Path | None:
    if not any(t.num_rows for t in tables):
        return None
    path = quarantine_path(warehouse_dir, source, day, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.concat_tables(tables), tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def _clean_old_quarantine(warehouse_dir: Path, source: str, day: str | None, run_id: str) -> None:
    """A re-run replaces the partition's quarantine: drop files of earlier runs."""
    folder = quarantine_path(warehouse_dir, source, day, run_id).parent
    for old in folder.glob("*.parquet"):
        if old.stem != run_id:
            old.unlink(missing_ok=True)


def _preview(con: duckdb.DuckDBPyConnection, table: pa.Table | None, report: IngestReport) -> str:
    head = (
        f"**{report.source}** {report.partition or 'master'}: {report.rows_read} read, "
        f"{report.rows_valid} valid, {report.rows_quarantined} quarantined"
    )
    if table is None or table.num_rows == 0:
        return head + "\n\n(no valid rows)"
    lines = ["| " + " | ".join(table.column_names) + " |", "|" + "---|" * table.num_columns]
    text = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in table.column_names)
    con.register("q_preview", table)
    try:
        rows = con.execute(
            f"SELECT {text} FROM q_preview"
        ).fetchall()  # values as DuckDB shows them
    finally:
        con.unregister("q_preview")
    for row in rows:
        cells = ("" if v is None else v.replace("|", "\\|") for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n\n" + "\n".join(lines)
