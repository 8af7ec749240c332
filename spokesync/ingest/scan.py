"""The fast path: one landing file read and checked in one pass, batch by batch.

Parquet files whose columns the kernels of :mod:`spokesync.ingest.arrow_checks` can check
exactly (``product_usage`` as exports land it) are read with pyarrow and checked with
pyarrow.compute; only their failing rows go through the DuckDB scan query, which names each
failure. Every other file is read and checked by DuckDB in one query:

DuckDB's own readers (``read_parquet``, ``read_csv``, ``read_json``) feed the contract's
checks (:func:`spokesync.ingest.rules.scan_query`) directly: no Arrow copy of the raw text, no
pandas, no per-row Python. The result streams back in batches of typed warehouse columns plus
a pass/fail flag; only failing rows carry their raw JSON and their failures.

A file the fast path cannot reproduce exactly is refused (:class:`Refused`) and the engine
ingests it with the streaming readers of :mod:`spokesync.ingest.readers`, which keep every
landed character and line number:

- CSV: a line with the wrong number of fields, a stray quote, bytes that are not UTF-8, a
  header with a repeated name or without a required column, or no null token at all;
- JSONL: a line that is not a JSON object, blank lines (line numbers would shift), a text
  value that is a JSON number, ``NaN``/``Infinity``, an object or an array (DuckDB renders
  those again: ``12.50`` would load as ``12.5``), or a contract field absent from the first
  lines (missing-column drift);
- Parquet: a file DuckDB cannot read.

Extra JSONL fields are found in the first :data:`SNIFF_BYTES` of the file (a field that first
appears later is dropped without being reported in ``columns_added``).
"""

from __future__ import annotations

import csv
import json
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spokesync.ingest import arrow_checks
from spokesync.ingest.arrays import arrow_of, numpy_of
from spokesync.ingest.connections import thread_connection
from spokesync.ingest.contract import SOURCES
from spokesync.ingest.rules import ScanQuery, scan_query

SNIFF_BYTES = 1 << 20
BATCH_ROWS = 1 << 20  # rows per batch streamed back from DuckDB


class Refused(Exception):
    """The fast path cannot reproduce this file exactly; the message says why."""


# A failing row's failures: ``{column, check, failure_case}`` in reporting order.
FAILS_TYPE = pa.list_(
    pa.struct([("column", pa.string()), ("check", pa.string()), ("failure_case", pa.string())])
)
FAILING_SCHEMA = pa.schema([("row", pa.int64()), ("raw_row", pa.string()), ("fails", FAILS_TYPE)])


def _no_failing() -> pa.Table:
    # Not Schema.empty_table(): it goes through pyarrow's pandas shim.
    return pa.table([pa.nulls(0, f.type) for f in FAILING_SCHEMA], schema=FAILING_SCHEMA)


@dataclass(slots=True)
class ScanBatch:
    """One batch of checked rows, from either reader."""

    values: pa.Table  # the warehouse columns, contract order (failing rows: what parsed)
    ok: np.ndarray  # bool per row: passed every check
    normalised: int  # rows a fix changed
    hashes: np.ndarray | None  # the key's DuckDB ``hash`` per row (None: hashed when offered)
    updated: pa.Array | None  # ``updated_at`` in µs per row (None: the source has none)
    failing: pa.Table  # FAILING_SCHEMA: a row per failing row (``row``: position from offset)
    offset: int  # position of the batch's first row in the file


def connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection for scans."""
    # The optimizer turns ``x IN (…)`` into a join, which merges the query's layers so that
    # every value is computed again wherever it is used (2x the CPU here).
    return thread_connection("scan", "SET disabled_optimizers = 'in_clause'")


def first_line_number(fmt: str) -> int:
    """The line (row index for Parquet) of a file's first data row."""
    return {"csv": 2, "jsonl": 1, "parquet": 0}[fmt]


@dataclass(frozen=True, slots=True)
class Reader:
    """DuckDB SQL reading one landing file as the checks expect it (see :func:`reader`)."""

    sql: str  # a table function call, e.g. ``read_csv($path, …)``
    params: dict[str, object]
    columns: list[str]  # as landed, in order
    present: tuple[tuple[str, pa.DataType | None], ...]  # name and Arrow type (None: text)
    null_map: tuple[str, ...] | None  # text values the query maps to NULL (JSONL)
    json_text: bool
    schema: pa.Schema | None = None  # a Parquet file's Arrow schema


def reader(source: str, path: Path, rel: str, tokens: tuple[str, ...]) -> Reader:
    """How DuckDB reads ``path`` for the fast path; raises :class:`Refused` when it cannot
    reproduce the file exactly (known before reading it)."""
    spec = SOURCES[source]
    params: dict[str, object] = {"path": str(path)}
    json_text = False
    null_map: tuple[str, ...] | None = None
    arrow_schema: pa.Schema | None = None
    if spec.format == "parquet":
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException) as e:
            raise Refused(f"{rel}: cannot read Parquet file: {e}") from e
        columns = schema.names
        present: tuple[tuple[str, pa.DataType | None], ...] = tuple(
            (n, schema.field(n).type) for n in columns
        )
        sql = "read_parquet($path)"
        arrow_schema = schema
    elif spec.format == "csv":
        columns = _csv_header(path, rel)
        if not tokens:
            raise Refused(f"{rel}: no null tokens")
        present = tuple((n, None) for n in columns)
        params["columns"] = dict.fromkeys(columns, "VARCHAR")
        params["tokens"] = list(tokens)
        sql = (
            "read_csv($path, header = true, auto_detect = false, delim = ',', quote = '\"', "
            "escape = '\"', columns = $columns, nullstr = $tokens, strict_mode = true)"
        )
    else:
        columns = _jsonl_keys(path, rel, spec.column_names)
        present = tuple((n, None) for n in columns)
        params["columns"] = dict.fromkeys(columns, "VARCHAR")
        sql = "read_json($path, format = 'newline_delimited', columns = $columns)"
        null_map, json_text = tokens, True
        if tokens and tokens != ("",):
            params["tokens"] = list(tokens)
    missing = [c for c in spec.required_columns if c not in columns]
    if missing:
        raise Refused(f"{rel}: required column(s) {missing} missing")
    return Reader(sql, params, columns, present, null_map, json_text, arrow_schema)


def scan(
    source: str,
    path: Path,
    rel: str,
    day: str | None,
    tokens: tuple[str, ...],
    batch_rows: int = BATCH_ROWS,
) -> tuple[list[str], Iterator[ScanBatch]]:
    """The file's columns (as landed, in order) and its checked rows in batches. Raises
    :class:`Refused` up front or while iterating."""
    r = reader(source, path, rel, tokens)
    plan = None if r.schema is None else arrow_checks.plan_for(source, r.schema, day)
    if plan is not None:
        failing = scan_query(source, r.present, day, _FAILING)
        return r.columns, _arrow_batches(plan, failing, path, rel, batch_rows)
    query = scan_query(source, r.present, day, r.sql, r.null_map, r.json_text)
    return r.columns, _batches(source, query, r.params, path, rel, batch_rows)


_FAILING = "q_failing"  # the failing rows of a batch the kernels checked, as read


def _arrow_batches(
    plan: arrow_checks.Plan, failing: ScanQuery, path: Path, rel: str, batch_rows: int
) -> Iterator[ScanBatch]:
    """pyarrow reads the file and the kernels check it; the DuckDB scan query, over the
    file's failing rows only, gives their raw rows and failures: once per file (its planning
    costs ~50 ms whatever the rows), in a last batch without rows of its own."""
    spec = SOURCES[plan.source]
    offset = 0
    bad_rows: list[pa.Table] = []
    bad_at: list[np.ndarray] = []
    empty: pa.Table | None = None
    try:
        with pq.ParquetFile(path) as pf:
            for batch in pf.iter_batches(batch_size=batch_rows, use_threads=False):
                c = arrow_checks.check(plan, batch)
                updated = None
                if spec.updated_at is not None:
                    updated = c.values.column(spec.updated_at).combine_chunks().cast(pa.int64())
                if not c.ok.all():
                    bad = ~c.ok
                    bad_rows.append(pa.Table.from_batches([batch.filter(arrow_of(bad))]))
                    bad_at.append(offset + np.flatnonzero(bad))
                yield ScanBatch(c.values, c.ok, c.normalised, None, updated, _no_failing(), offset)
                offset += batch.num_rows
                empty = c.values.slice(0, 0)
        if bad_rows and empty is not None:
            rows = pa.concat_tables(bad_rows)
            described = _failing_rows(connection(), failing, rows, np.concatenate(bad_at), rel)
            yield ScanBatch(empty, np.zeros(0, dtype=bool), 0, None, None, described, 0)
    except (duckdb.Error, pa.ArrowException, OSError) as e:
        raise Refused(f"{rel}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def _failing_rows(
    con: duckdb.DuckDBPyConnection,
    query: ScanQuery,
    rows: pa.Table,
    positions: np.ndarray,
    rel: str,
) -> pa.Table:
    """The failing ``rows`` (as read, at ``positions``) with their raw rows and failures."""
    con.register(_FAILING, rows)
    try:
        out = con.sql(query.sql).to_arrow_table()
    finally:
        con.unregister(_FAILING)
    if _any(out.column("__ok")):  # never expected: tests/ingest/test_arrow_checks.py
        raise Refused(f"{rel}: the pyarrow checks failed a row the SQL passes")
    return pa.table(
        [arrow_of(positions), out.column("__raw"), out.column("__fails").cast(FAILS_TYPE)],
        schema=FAILING_SCHEMA,
    )


def _duckdb_batch(
    b: pa.RecordBatch, outputs: tuple[str, ...], has_updated: bool, offset: int
) -> ScanBatch:
    """A batch of the DuckDB scan query as a :class:`ScanBatch`."""
    ok = numpy_of(b.column("__ok"))
    normalised = int(np.count_nonzero(numpy_of(b.column("__changed"))))
    bad = ~ok
    if bad.any():
        sel = arrow_of(bad)
        failing = pa.table(
            [
                arrow_of(np.flatnonzero(bad)),
                b.column("__raw").filter(sel),
                b.column("__fails").filter(sel).cast(FAILS_TYPE),
            ],
            schema=FAILING_SCHEMA,
        )
    else:
        failing = _no_failing()
    values = pa.Table.from_batches([b]).select(list(outputs))
    updated = b.column("__u") if has_updated else None
    return ScanBatch(values, ok, normalised, numpy_of(b.column("__h")), updated, failing, offset)


def _batches(
    source: str,
    query: ScanQuery,
    params: dict[str, object],
    path: Path,
    rel: str,
    batch_rows: int,
) -> Iterator[ScanBatch]:
    con = connection()
    spec = SOURCES[source]
    fmt, has_updated = spec.format, spec.updated_at is not None
    offset = 0
    try:
        for batch in con.sql(query.sql, params=params).to_arrow_reader(batch_rows):
            if fmt == "jsonl" and _any(batch.column("__odd")):
                raise Refused(f"{rel}: a text value is a JSON number, object or array")
            yield _duckdb_batch(batch, query.outputs, has_updated, offset)
            offset += batch.num_rows
    except (duckdb.Error, pa.ArrowException, OSError) as e:
        # An error DuckDB meets after the first batch reaches Python through Arrow's stream
        # reader, as OSError/ArrowInvalid (a truncated last line of a large JSONL file).
        raise Refused(f"{rel}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if fmt == "jsonl" and _line_count(path) != offset:
        raise Refused(f"{rel}: blank or multi-line records (line numbers would shift)")


def _any(column: pa.Array) -> bool:
    return bool(np.any(numpy_of(column)))


def _csv_header(path: Path, rel: str) -> list[str]:
    try:
        with path.open("rb") as fh:
            header = fh.readline().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise Refused(f"{rel}: {e}") from e
    names = next(csv.reader([header]), [])
    if not names or len(set(names)) != len(names) or any(n.startswith("__") for n in names):
        raise Refused(f"{rel}: header {names!r} is empty or repeats a name")
    return names


def _jsonl_keys(path: Path, rel: str, contract: list[str]) -> list[str]:
    """Contract fields, then the extra fields of the first lines (in order of appearance)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as e:
        raise Refused(f"{rel}: {e}") from e
    lines = head.split(b"\n")
    if len(head) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    seen: dict[str, None] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise Refused(f"{rel}: invalid JSON in the first lines: {e}") from e
        if not isinstance(rec, dict):
            raise Refused(f"{rel}: a line is not a JSON object")
        seen.update(dict.fromkeys(rec))
    absent = [c for c in contract if c not in seen]
    if absent:
        raise Refused(f"{rel}: field(s) {absent} absent from the first lines")
    extra = [k for k in seen if k not in contract]
    if any(k.startswith("__") for k in extra):
        raise Refused(f"{rel}: a field name starts with '__'")
    return [*contract, *extra]


def _line_count(path: Path) -> int:
    """Lines of a text file (a last line without a newline counts), without reading it into
    Python objects: NumPy counts newline bytes over a memory map."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return 0
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            step, n = 8 << 20, 0
            for off in range(0, size, step):
                view = np.frombuffer(mm, np.uint8, count=min(step, size - off), offset=off)
                n += int(np.count_nonzero(view == 10))
                del view
            last = mm[size - 1]
    return n + (last != 10)
