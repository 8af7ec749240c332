"""The contract's checks on one chunk already read into Arrow: the streaming readers' path.

One DuckDB query per chunk (built by :mod:`spokesync.ingest.rules` from the contract) takes the
chunk as read (text for CSV/JSONL, typed for Parquet) and returns the warehouse columns plus a
pass flag per row; only the failing rows (few) go through a second query that lists each
failure with its column, check and failing value, as a pandas frame (the form the streaming
readers' quarantine and the pandera reference share). The fast path
(:mod:`spokesync.ingest.scan`) does not use this module, so it never imports pandas.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from spokesync.ingest.connections import thread_connection
from spokesync.ingest.contract import SOURCES
from spokesync.ingest.rules import SQL_TYPES, _ident, _lit, _on, _plan
from spokesync.ingest.validate import NO_FAILURES, failures_frame


@dataclass(slots=True)
class Checked:
    """A chunk after the checks: the warehouse columns (same positions as the input)."""

    table: pa.Table  # contract columns, warehouse types
    valid: np.ndarray  # bool per row
    failures: pd.DataFrame  # pos, column, check, failure_case (only failing rows)
    normalised: int
    columns_added: list[str]
    columns_missing: list[str]


@functools.lru_cache(maxsize=512)
def _queries(
    source: str, present: tuple[tuple[str, pa.DataType], ...], day: str | None
) -> tuple[str, str]:
    """The main query (warehouse values + ``__ok`` + ``__changed``, from relation ``raw``) and
    the failures query (from relation ``bad``: the failing rows plus ``__pos``), for the
    chunk's columns and their Arrow types."""
    spec = SOURCES[source]
    types = dict(present)
    values, roots, outputs, ok_parts, changed_parts, failure_selects = [], [], [], [], [], []
    for i, col in enumerate(spec.columns):
        x = _ident(col.name) if col.name in types else "CAST(NULL AS VARCHAR)"
        p = _plan(col, x, types.get(col.name), day)
        v, r = f"__v{i}", f"__r{i}"
        values.append(f"CAST({p.value} AS {SQL_TYPES[col.kind]}) AS {v}")
        roots.append(f"{_on(p.root, v)} AS {r}")
        outputs.append(f"{v} AS {_ident(col.name)}")
        failed = [f"coalesce({_on(c.failed, v)}, false)" for c in p.checks]
        ok_parts.append(f"{r} IS NULL")
        if failed:
            ok_parts.append(f"NOT ({r} IS NULL AND ({' OR '.join(failed)}))")
        if p.fixes:
            changed_parts.append(f"coalesce({p.text} IS NOT NULL AND {v} <> {p.text}, false)")
        # This column's failures, in order: its root failure, else each check that fails.
        name = _lit(col.name)
        failure_selects.append(
            f"SELECT __pos, {i} AS __col, 0 AS __seq, {name} AS col, {r} AS chk, "
            f"CASE WHEN {r} <> 'not_nullable' THEN {p.text} END AS val FROM b "
            f"WHERE {r} IS NOT NULL"
        )
        for k, (c, cond) in enumerate(zip(p.checks, failed, strict=True)):
            failure_selects.append(
                f"SELECT __pos, {i} AS __col, {k + 1} AS __seq, {name} AS col, "
                f"{_lit(c.check)} AS chk, CAST({v} AS VARCHAR) AS val FROM b "
                f"WHERE {r} IS NULL AND {cond}"
            )
    ok = " AND ".join(ok_parts)
    changed = " OR ".join(changed_parts) or "false"

    def layers(src: str) -> str:
        return f"(SELECT *, {', '.join(roots)} FROM (SELECT *, {', '.join(values)} FROM {src}))"

    main = f"SELECT {', '.join(outputs)}, {ok} AS __ok, {changed} AS __changed FROM {layers('raw')}"
    failures = (
        f"WITH b AS {layers('bad')} "
        'SELECT __pos AS pos, col AS "column", chk AS "check", val AS failure_case FROM ('
        + " UNION ALL ".join(failure_selects)
        + ") ORDER BY __pos, __col, __seq"
    )
    return main, failures


def check_chunk(source: str, raw: pa.Table, day: str | None) -> Checked:
    """Check one chunk (columns as read) against the contract; see the module docstring."""
    spec = SOURCES[source]
    n = raw.num_rows
    present = raw.column_names
    added = [c for c in present if c not in spec.column_names]
    missing = [c.name for c in spec.columns if c.name not in present]
    schema = spec.arrow_schema()
    missing_required = [c for c in missing if c in spec.required_columns]
    if missing_required:
        every = np.repeat(np.arange(n), len(missing_required))
        columns = np.tile(np.array(missing_required, dtype=object), n)
        fails = failures_frame(every, columns, "column_in_dataframe", None)
        return Checked(schema.empty_table(), np.zeros(n, dtype=bool), fails, 0, added, missing)
    kept = [c for c in present if c in spec.column_names]
    key = tuple((c, raw.schema.field(c).type) for c in kept)
    main, failures_sql = _queries(source, key, day)
    con = thread_connection("rules")
    raw = raw.select(kept)  # noqa: F841 - read by DuckDB's replacement scan
    out = con.sql(main).to_arrow_table()
    ok = out.column("__ok").to_numpy(zero_copy_only=False)
    normalised = int(np.count_nonzero(out.column("__changed").to_numpy(zero_copy_only=False)))
    table = out.select(schema.names).cast(_loose(schema))
    if ok.all():
        return Checked(table, ok, NO_FAILURES, normalised, added, missing)
    bad_pos = np.flatnonzero(~ok)
    bad = raw.filter(pa.array(~ok)).append_column(  # noqa: F841 - read by DuckDB
        "__pos", pa.array(bad_pos, pa.int64())
    )  # filter, not take: take would first copy every chunk of the table into one
    found = con.sql(failures_sql).to_arrow_table()
    fails = pd.DataFrame(
        {
            "pos": found.column("pos").to_numpy(),
            **{
                c: pd.Series(found.column(src).to_pylist(), dtype=object)
                for c, src in (
                    ("column", "column"),
                    ("check", "check"),
                    ("failure_case", "failure_case"),
                )
            },
        }
    )
    return Checked(table, ok, fails, normalised, added, missing)


def _loose(schema: pa.Schema) -> pa.Schema:
    """The warehouse schema with every field nullable (failing rows may hold nulls)."""
    return pa.schema([f.with_nullable(True) for f in schema])
