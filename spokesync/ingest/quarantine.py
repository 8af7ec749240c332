"""Quarantine rows: bad source rows kept with why they failed, never written onward.

Schema (``warehouse/quarantine/source=<table>/date=<D>/<run_id>.parquet``): source, partition,
file, row_number, raw_row (JSON of the raw record, or the raw line text), failed_checks (JSON
list of ``{column, check, failure_case}``), error (a sentence naming file, row, field and what
is wrong), run_id, quarantined_at.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from spokesync.ingest.readers import RawChunk

_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("partition", pa.string()),
        pa.field("file", pa.string(), nullable=False),
        pa.field("row_number", pa.int64(), nullable=False),
        pa.field("raw_row", pa.string(), nullable=False),
        pa.field("failed_checks", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("quarantined_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(slots=True)
class QuarantineRow:
    source: str
    partition: str | None
    file: str
    row_number: int
    raw_row: str
    failed_checks: str
    error: str
    run_id: str
    quarantined_at: dt.datetime

    @classmethod
    def build(
        cls,
        source: str,
        partition: str | None,
        file: str,
        row_number: int,
        raw: str,
        failures: list[dict[str, object]],
        run_id: str,
        at: dt.datetime,
    ) -> QuarantineRow:
        unit = "line" if not file.endswith(".parquet") else "row"
        what = "; ".join(_describe(f) for f in failures) or "failed validation"
        return cls(
            source,
            partition,
            file,
            row_number,
            raw,
            _ENCODER.encode(failures),
            f"{file} {unit} {row_number}: {what}",
            run_id,
            at,
        )


def _describe(f: dict[str, object]) -> str:
    column, check, case = f.get("column"), f.get("check"), f.get("failure_case")
    subject = f"field {column!r}" if column else "line"
    match check:
        case "not_nullable":
            return f"{subject} is required but empty"
        case "column_in_dataframe":
            return f"{subject} is missing from the file"
        case "duplicate_key":
            return f"{subject} value {case!r} is a duplicate of an earlier row (first one kept)"
        case str() if check.startswith("parse_"):
            return f"{subject} could not be parsed ({check}): {case!r}"
        case _:
            return f"{subject} failed {check}: {case!r}"


def raw_rows(
    chunk: RawChunk, positions: np.ndarray, con: duckdb.DuckDBPyConnection | None = None
) -> list[str]:
    """The raw records at ``positions`` as JSON strings (original values, before any fix)."""
    if len(positions) == 0:
        return []
    if chunk.arrow is not None:
        rows = chunk.arrow.take(pa.array(positions))  # noqa: F841 - read by DuckDB below
        if con is not None:  # vectorised: DuckDB renders each row as a JSON object
            return [
                r[0]
                for r in con.execute("SELECT CAST(to_json(r) AS VARCHAR) FROM rows r").fetchall()
            ]
        records = rows.to_pylist()
    else:
        sub = chunk.frame.iloc[positions]
        records = [
            {k: (None if v is None or v != v else v) for k, v in r.items()}
            for r in sub.to_dict("records")
        ]
    return [json.dumps(r, default=str, ensure_ascii=False) for r in records]
