"""Readers per landing format. Each yields :class:`RawChunk` s of at most ``chunk_rows`` rows.

A chunk carries the rows as an Arrow table (strings for CSV/JSONL, typed for Parquet),
their row numbers in the file (CSV/JSONL: line number, header = line 1; Parquet: row index)
and the lines that could not be parsed at all. A file that cannot be opened or decoded raises
:class:`UnreadableFile` naming it.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from spokesync.ingest.contract import SOURCES, null_tokens

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_CHUNK_ROWS = 1_000_000
CSV_BLOCK_BYTES = 16 << 20  # Arrow's CSV streaming block size


class UnreadableFile(Exception):
    """A landing file that cannot be read at all (missing, corrupt, wrong format)."""


@dataclass(slots=True)
class UnparsedLine:
    row_number: int
    raw: str
    error: str


@dataclass(slots=True)
class RawChunk:
    file: str
    table: pa.Table  # the rows as read (the quarantine's raw_row comes from here)
    row_numbers: np.ndarray
    columns: list[str]  # the columns the file has, in order
    unparsed: list[UnparsedLine] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as pandas (for the pandera reference path and tests)."""
        import pandas as pd  # the reference path only: the engine never needs pandas here

        return self.table.to_pandas(
            types_mapper={pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}.get
        )


def read_parquet(
    path: Path, rel: str, chunk_rows: int, tokens: tuple[str, ...] = ("",)
) -> Iterator[RawChunk]:
    """Parquet values are typed: a null is a null, a string is a value (``tokens`` unused)."""
    try:
        pf = pq.ParquetFile(path)
        columns = pf.schema_arrow.names
        offset = 0
        for batch in pf.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            n = table.num_rows
            yield RawChunk(rel, table, np.arange(offset, offset + n), columns)
            offset += n
    except (OSError, pa.ArrowException) as e:
        raise UnreadableFile(f"{rel}: cannot read Parquet file: {e}") from e


def read_csv(
    path: Path, rel: str, chunk_rows: int, tokens: tuple[str, ...] = ("",)
) -> Iterator[RawChunk]:
    """Stream a CSV file (every column as a string) in chunks; a malformed line (wrong number
    of fields) is reported as unparsed with its line number. Only a field equal to one of
    ``tokens`` (default: the empty field) is null: Arrow's default null tokens (``NA``,
    ``N/A``, ``NULL``, ``nan``, ``#N/A``, …) are off, so Namibia (``NA``) stays a country."""
    unparsed: list[UnparsedLine] = []
    bad_lines: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_lines.append(int(row.number))
        unparsed.append(
            UnparsedLine(
                int(row.number), row.text, f"expected {row.expected_columns} fields, "
                f"got {row.actual_columns}",
            )
        )  # fmt: skip
        return "skip"

    def line_numbers(offset: int, n: int) -> np.ndarray:
        # Data starts on line 2; each unparsed line before a row pushes it one line down.
        # Unparsed lines are reported in file order, before the rows that follow them.
        positions = np.arange(offset, offset + n, dtype=np.int64)
        if not bad_lines:
            return positions + 2
        bad = np.array(bad_lines, dtype=np.int64)
        shifted = bad - np.arange(len(bad)) - 2
        return positions + 2 + np.searchsorted(shifted, positions, side="right")

    try:
        with path.open("rb") as fh:
            header = fh.readline().decode("utf-8")
        columns = _header_names(header)
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                null_values=list(tokens),
                strings_can_be_null=bool(tokens),
                quoted_strings_can_be_null=bool(tokens),
            ),
        )
        offset, batches, pending = 0, [], 0
        emitted = False
        for batch in reader:
            batches.append(batch)
            pending += batch.num_rows
            if pending >= chunk_rows:
                table = pa.Table.from_batches(batches)
                yield _csv_chunk(rel, table, line_numbers(offset, pending), columns, unparsed)
                offset, batches, pending, emitted = offset + pending, [], 0, True
        if pending or unparsed or not emitted:
            table = pa.Table.from_batches(batches, schema=reader.schema)
            yield _csv_chunk(rel, table, line_numbers(offset, pending), columns, unparsed)
    except (OSError, UnicodeDecodeError, StopIteration, pa.ArrowException) as e:
        raise UnreadableFile(f"{rel}: cannot read CSV file: {e}") from e


def _csv_chunk(
    rel: str, table: pa.Table, lines: np.ndarray, columns: list[str], unparsed: list[UnparsedLine]
) -> RawChunk:
    chunk = RawChunk(rel, table, lines, columns, unparsed[:])
    unparsed.clear()
    return chunk


def _header_names(line: str) -> list[str]:
    return next(csv.reader([line]))


def _json_text(value: object) -> str | None:
    """A JSON value as the text the parse step reads: strings as they are, numbers as their
    exact digits (kept raw by the decoder), booleans ``true``/``false``, objects as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _raw_number(text: str) -> str:
    return text


_BLANK_LINE = re.compile(rb"\n[ \t\r]*\n")


def _jsonl_arrow_ok(path: Path) -> bool:
    """Arrow's JSON reader numbers rows, not lines: use it only when every line is a row
    (no blank lines, which the line reader skips), so row k is line k."""
    with path.open("rb") as fh:
        prev = b"\n"  # the start of the file is the start of a line
        while block := fh.read(CSV_BLOCK_BYTES):
            data = prev + block
            if _BLANK_LINE.search(data):
                return False
            cut = data.rfind(b"\n")
            prev = data[cut:]
    return True


def _read_jsonl_arrow(
    path: Path, rel: str, chunk_rows: int, tokens: tuple[str, ...], source: str
) -> Iterator[RawChunk]:
    """Arrow's streaming JSON reader, every contract column as a string. Raises
    ``pa.ArrowInvalid`` on the first line it cannot take (a number or ``NaN`` where a string is
    expected, broken JSON): the caller continues from there line by line."""
    with path.open("rb") as fh:
        first = json.loads(fh.readline() or b"{}")
    spec = SOURCES[source]
    schema = pa.schema([pa.field(c, pa.string()) for c in spec.column_names])
    reader = pajson.open_json(
        path,
        read_options=pajson.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES),
        parse_options=pajson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="infer"
        ),
    )
    nulls = pa.array(list(tokens), pa.string())
    offset, batches, pending = 0, [], 0

    def chunk(table: pa.Table) -> RawChunk:
        present = [c for c in table.column_names if c in first or c not in spec.column_names]
        present += [
            c
            for c in spec.column_names
            if c not in present and table.column(c).null_count < table.num_rows
        ]
        cols = {}
        for c in present:
            col = table.column(c)
            if not pa.types.is_string(col.type):
                col = pc.cast(col, pa.string())
            if len(nulls):
                col = pc.if_else(pc.is_in(col, nulls), pa.scalar(None, pa.string()), col)
            cols[c] = col
        text = pa.table(cols)
        return RawChunk(rel, text, np.arange(offset + 1, offset + table.num_rows + 1), present)

    for batch in reader:
        batches.append(batch)
        pending += batch.num_rows
        if pending >= chunk_rows:
            yield chunk(pa.Table.from_batches(batches))
            offset, batches, pending = offset + pending, [], 0
    if pending:
        yield chunk(pa.Table.from_batches(batches))


def read_jsonl(
    path: Path,
    rel: str,
    chunk_rows: int,
    tokens: tuple[str, ...] = ("",),
    source: str = "support_tickets",
) -> Iterator[RawChunk]:
    """One JSON object per line; a line that is not a JSON object is unparsed (kept raw).
    JSON ``null`` and a missing key are nulls, and so is a string equal to one of ``tokens``
    (default: ``""``); numbers keep their digits (no float step), ``NaN``/``Infinity`` their
    text (quarantined later as not finite)."""
    skip = 0  # lines already delivered by Arrow's reader
    try:
        fast = _jsonl_arrow_ok(path)
    except OSError as e:
        raise UnreadableFile(f"{rel}: cannot read JSONL file: {e}") from e
    if fast:
        try:
            for chunk in _read_jsonl_arrow(path, rel, chunk_rows, tokens, source):
                skip += chunk.table.num_rows
                yield chunk
            return
        except (pa.ArrowInvalid, ValueError, UnicodeDecodeError):
            pass  # from the first line Arrow could not take, line by line (below)
    try:
        fh = path.open("rb")
    except OSError as e:
        raise UnreadableFile(f"{rel}: cannot read JSONL file: {e}") from e
    columns: list[str] = []
    records: list[dict[str, object]] = []
    numbers: list[int] = []
    unparsed: list[UnparsedLine] = []

    def flush() -> RawChunk:
        nulls = set(tokens)
        data = {}
        for c in columns if records else []:
            values = [_json_text(rec.get(c)) for rec in records]
            if nulls:
                values = [None if v in nulls else v for v in values]
            data[c] = pa.array(values, pa.string())
        table = pa.table(data) if data else pa.table({}).slice(0, 0)
        chunk = RawChunk(rel, table, np.array(numbers, dtype=np.int64), list(columns), unparsed[:])
        records.clear(), numbers.clear(), unparsed.clear()
        return chunk

    with fh:
        for number, raw in enumerate(fh, start=1):
            if number <= skip:
                continue
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text.strip():
                continue
            try:
                rec = json.loads(
                    text, parse_float=_raw_number, parse_int=_raw_number, parse_constant=_raw_number
                )
                if not isinstance(rec, dict):
                    raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
            except ValueError as e:
                unparsed.append(UnparsedLine(number, text, f"invalid JSON: {e}"))
                continue
            for key in rec:
                if key not in columns:
                    columns.append(key)
            records.append(rec)
            numbers.append(number)
            if len(records) >= chunk_rows:
                yield flush()
    yield flush()


READERS = {"parquet": read_parquet, "csv": read_csv, "jsonl": read_jsonl}


def landing_files(source: str, landing: Path, day: str | None) -> list[Path]:
    """The landing files of one source and day (or the master snapshot), sorted."""
    landing = Path(landing)
    match source:
        case "product_usage":
            return sorted((landing / "product_usage" / f"date={day}").glob("*.parquet"))
        case "invoices" | "subscriptions":
            path = landing / "erp" / source / f"{source}_{day}.csv"
        case "support_tickets":
            path = landing / "support" / "tickets" / f"tickets_{day}.jsonl"
        case "accounts" | "users" | "firmographics":
            path = landing / "master" / f"{source}.csv"
        case _:
            raise ValueError(f"unknown source {source!r}; expected one of {sorted(SOURCES)}")
    return [path] if path.exists() else []


def read_source(
    source: str, files: list[Path], landing: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[RawChunk]:
    fmt = SOURCES[source].format
    tokens = null_tokens(source)
    for path in files:
        rel = str(path.relative_to(landing)) if path.is_relative_to(landing) else str(path)
        if fmt == "jsonl":
            yield from read_jsonl(path, rel, chunk_rows, tokens, source)
        else:
            yield from READERS[fmt](path, rel, chunk_rows, tokens)
