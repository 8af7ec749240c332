"""Turn a raw chunk into typed valid rows plus per-row failures (vectorised, no per-row Python
on the valid path).

Steps: drop extra columns; add missing nullable columns as nulls; fail every row on a missing
required column; trim identifiers (keys and references) of Unicode whitespace; a required text
that is blank after trimming is a ``blank`` failure; parse each column to its contract type in
DuckDB (a value that does not parse exactly is a ``parse_<kind>`` failure, ``inf``/``NaN`` a
``not_finite`` one); normalise emails/domains; pandera lazy validation, whose
``failure_cases`` map failures to row positions.

This is the reference path (pandas + the pandera schema). The engine runs the same rules as
one DuckDB query per chunk (:mod:`spokesync.ingest.rules`); ``tests/ingest/test_rules_oracle.py``
checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from spokesync.ingest.connections import thread_connection
from spokesync.ingest.contract import DECIMAL_PRECISION, DECIMAL_SCALE, SOURCES, Column
from spokesync.ingest.lexicon import (
    DATE_TEXT,
    DECIMAL_TEXT,
    INT_TEXT,
    NON_FINITE_TEXT,
    TIMESTAMP_TEXT,
    UNICODE_WHITESPACE,
)
from spokesync.ingest.normalise import normalise
from spokesync.ingest.schemas import schema_for

FAILURE_COLUMNS = ["pos", "column", "check", "failure_case"]
# Checks whose failure explains every other failure of the same cell (the value is unusable).
_ROOT_CHECKS = ("parse_", "blank", "not_finite")
_INT, _DECIMAL, _NON_FINITE = INT_TEXT, DECIMAL_TEXT, NON_FINITE_TEXT
_DATE, _TIMESTAMP = DATE_TEXT, TIMESTAMP_TEXT


def _parse_sql(kind: str, x: str) -> str:
    """DuckDB SQL parsing text ``x`` to ``kind`` exactly (NULL when it does not parse)."""
    match kind:
        case "int":
            return (
                f"CASE WHEN regexp_full_match({x}, '{_INT}') THEN TRY_CAST(trim({x}) AS BIGINT) END"
            )
        case "decimal":
            return (
                f"CASE WHEN regexp_full_match({x}, '{_DECIMAL}') THEN "
                f"TRY_CAST(trim({x}) AS DECIMAL({DECIMAL_PRECISION}, {DECIMAL_SCALE})) END"
            )
        case "timestamp":
            return (
                f"CASE WHEN regexp_full_match({x}, '{_TIMESTAMP}') THEN "
                f"TRY_CAST(trim({x}) AS TIMESTAMPTZ) END"
            )
        case "date":
            return (
                f"CASE WHEN regexp_full_match({x}, '{_DATE}') THEN TRY_CAST(trim({x}) AS DATE) END"
            )
    raise ValueError(kind)


def failures_frame(
    pos: np.ndarray | list[int], column: object, check: object, case: object
) -> pd.DataFrame:
    """Failures as a frame: one row per (row position, column, check, failing value)."""
    n = len(pos)
    frame = pd.DataFrame(
        {
            "pos": np.asarray(pos, dtype=np.int64),
            "column": column if isinstance(column, (pd.Series, np.ndarray, list)) else [column] * n,
            "check": check if isinstance(check, (pd.Series, np.ndarray, list)) else [check] * n,
            "failure_case": case if isinstance(case, (pd.Series, np.ndarray, list)) else [case] * n,
        }
    )
    return frame.astype({"column": "object", "check": "object", "failure_case": "object"})


NO_FAILURES = failures_frame([], None, None, None)


@dataclass(slots=True)
class Validated:
    frame: pd.DataFrame  # typed, contract columns only, same positions as the input
    valid: np.ndarray  # bool per row
    failures: pd.DataFrame  # FAILURE_COLUMNS; ``pos`` = row position in the chunk
    normalised: int
    columns_added: list[str]
    columns_missing: list[str]
    # Exact Arrow values of columns pandas cannot hold exactly (decimals), same positions.
    exact: dict[str, pyarrow.Array] = field(default_factory=dict)

    def failures_at(self, pos: int) -> list[dict[str, object]]:
        rows = self.failures[self.failures["pos"] == pos]
        return rows.drop(columns="pos").to_dict("records")


def trim_unicode(values: pyarrow.Array) -> pyarrow.Array:
    """Strip leading/trailing Unicode whitespace (see ``UNICODE_WHITESPACE``)."""
    return pc.utf8_trim(values, characters=UNICODE_WHITESPACE)


def _as_text(values: pd.Series) -> pyarrow.Array:
    arr = pyarrow.array(values, from_pandas=True)
    if pyarrow.types.is_large_string(arr.type) or pyarrow.types.is_string(arr.type):
        return arr.cast(pyarrow.string())
    if pyarrow.types.is_null(arr.type):
        return arr.cast(pyarrow.string())
    return pc.cast(arr, pyarrow.string())


def _str_column(
    col: Column, raw: pd.Series, found: list[pd.DataFrame]
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """A text column: identifiers trimmed; a required text blank after trimming fails
    ``blank``. Returns the values, which rows changed and which failed."""
    n = len(raw)
    text = _as_text(raw)
    trimmed = trim_unicode(text)
    changed = np.zeros(n, dtype=bool)
    failed = np.zeros(n, dtype=bool)
    if col.identifier:
        changed = pc.fill_null(pc.not_equal(text, trimmed), False).to_numpy(zero_copy_only=False)
    if not col.nullable:
        blank = pc.fill_null(pc.equal(trimmed, ""), False).to_numpy(zero_copy_only=False)
        if blank.any():
            pos = np.flatnonzero(blank)
            found.append(failures_frame(pos, col.name, "blank", text.take(pos).to_pylist()))
            failed |= blank
    if col.identifier and changed.any():
        values = pd.Series(
            trimmed.to_pandas(types_mapper=pd.ArrowDtype).astype("str"), index=raw.index
        )
        return values.where(values.notna(), None), changed, failed
    if raw.dtype != "str":
        raw = raw.astype("str").where(raw.notna(), None)
    return raw, changed, failed


def _to_pandas_typed(kind: str, arr: pyarrow.Array, index: pd.Index) -> pd.Series:
    if kind == "int":
        return pd.Series(
            arr.to_pandas(types_mapper={pyarrow.int64(): pd.Int64Dtype()}.get), index=index
        )
    if kind == "decimal":
        return pd.Series(
            pc.cast(arr, pyarrow.float64()).to_numpy(zero_copy_only=False), index=index
        )
    if kind == "timestamp":
        return pd.Series(arr.to_pandas(), index=index).dt.tz_convert("UTC").dt.as_unit("us")
    return pd.Series(arr.to_pandas(date_as_object=False), index=index).astype("datetime64[us]")


def _already_typed(kind: str, raw: pd.Series) -> pd.Series | None:
    """Parquet values already of the column's type (or a lossless relative), else None."""
    if kind == "int" and (isinstance(raw.dtype, pd.Int64Dtype) or raw.dtype == "int64"):
        return raw.astype("Int64")
    if kind == "timestamp" and isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").dt.as_unit("us")
    if kind == "timestamp" and pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw.dt.tz_localize("UTC").dt.as_unit("us")
    if kind == "date" and pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw.astype("datetime64[us]")
    return None


def _parse_typed(
    columns: list[tuple[Column, pd.Series]], found: list[pd.DataFrame]
) -> tuple[dict[str, pd.Series], dict[str, pyarrow.Array], np.ndarray]:
    """Parse non-text columns from their text in one DuckDB query (exact: no float step)."""
    out: dict[str, pd.Series] = {}
    exact: dict[str, pyarrow.Array] = {}
    if not columns:
        return out, exact, np.zeros(0, dtype=bool)
    n = len(columns[0][1])
    failed = np.zeros(n, dtype=bool)
    texts = {}
    todo: list[Column] = []
    for col, raw in columns:
        typed = _already_typed(col.kind, raw)
        if typed is not None:
            out[col.name] = typed
        else:
            texts[col.name] = _as_text(raw)
            todo.append(col)
    if not todo:
        return out, exact, failed
    raw_table = pyarrow.table({f"c{i}": texts[c.name] for i, c in enumerate(todo)})  # noqa: F841
    select = []
    for i, col in enumerate(todo):
        x = f"c{i}"
        select.append(f"{_parse_sql(col.kind, x)} AS p{i}")
        if col.kind in ("int", "decimal"):
            select.append(f"regexp_full_match(lower(trim({x})), '{_NON_FINITE}') AS nf{i}")
    parsed = (
        thread_connection("validate")
        .sql(f"SELECT {', '.join(select)} FROM raw_table")
        .to_arrow_table()
    )
    for i, col in enumerate(todo):
        text = texts[col.name]
        values = parsed.column(f"p{i}").combine_chunks()
        unparsable = pc.and_(pc.is_valid(text), pc.is_null(values)).to_numpy(zero_copy_only=False)
        if unparsable.any():
            pos = np.flatnonzero(unparsable)
            nf = np.zeros(len(pos), dtype=bool)
            if col.kind in ("int", "decimal"):
                nf = (
                    parsed.column(f"nf{i}")
                    .combine_chunks()
                    .take(pos)
                    .to_numpy(zero_copy_only=False)
                )
            checks = np.where(nf, "not_finite", f"parse_{col.kind}").astype(object)
            found.append(failures_frame(pos, col.name, checks, text.take(pos).to_pylist()))
            failed |= unparsable
        if col.kind == "decimal":
            exact[col.name] = values
        out[col.name] = _to_pandas_typed(col.kind, values, columns[0][1].index)
    return out, exact, failed


def validate_chunk(source: str, frame: pd.DataFrame, day: str | None) -> Validated:
    spec = SOURCES[source]
    n = len(frame)
    present = list(frame.columns)
    added = [c for c in present if c not in spec.column_names]
    missing = [c.name for c in spec.columns if c.name not in present]
    found: list[pd.DataFrame] = []
    typed: dict[str, pd.Series] = {}
    bad = np.zeros(n, dtype=bool)
    changed = np.zeros(n, dtype=bool)

    missing_required = [c for c in missing if c in spec.required_columns]
    if missing_required:
        every = np.repeat(np.arange(n), len(missing_required))
        columns = np.tile(np.array(missing_required, dtype=object), n)
        fails = failures_frame(every, columns, "column_in_dataframe", None)
        empty = pd.DataFrame({c: frame[c] for c in present if c in spec.column_names})
        return Validated(empty, np.zeros(n, dtype=bool), fails, 0, added, missing)

    to_parse: list[tuple[Column, pd.Series]] = []
    for col in spec.columns:
        if col.name in missing:  # a missing optional column: typed nulls
            raw = pd.Series([None] * n, index=frame.index, dtype="str")
        else:
            raw = frame[col.name]
        if col.kind == "str":
            typed[col.name], fixed, failed = _str_column(col, raw, found)
            changed |= fixed
            bad |= failed
        else:
            to_parse.append((col, raw))
    parsed, exact, failed = _parse_typed(to_parse, found)
    if len(failed):
        bad |= failed
    typed.update(parsed)
    out = pd.DataFrame({c: typed[c] for c in spec.column_names}, index=frame.index)

    out, n_fixed = normalise(source, out, changed)
    try:
        schema_for(source, day).validate(out, lazy=True)
    except pa.errors.SchemaErrors as e:
        cases = e.failure_cases
        whole = cases[cases["index"].isna()]
        if len(whole):  # a column-level failure (e.g. wrong dtype) fails every row
            for r in whole.itertuples():
                found.append(
                    failures_frame(
                        np.arange(n), r.column, _check_name(r.check), _plain(r.failure_case)
                    )
                )
            bad[:] = True
        rows = cases[cases["index"].notna()]
        if len(rows):
            pos = rows["index"].astype("int64").to_numpy()
            bad[pos] = True
            checks = rows["check"].astype("str").str.split("(", n=1).str[0].to_numpy(dtype=object)
            found.append(
                failures_frame(
                    pos,
                    rows["column"].to_numpy(dtype=object),
                    checks,
                    [_plain(v) for v in rows["failure_case"]],
                )
            )
    if not found:
        return Validated(out, ~bad, NO_FAILURES, n_fixed, added, missing, exact)
    fails = pd.concat(found, ignore_index=True)
    # A value that did not parse, is blank or not finite is unusable: the checks that then
    # fail on the same cell (not_nullable, str_matches on "") are consequences, not causes.
    root = fails["check"].astype("str").str.startswith(_ROOT_CHECKS)
    if root.any() and not root.all():
        keys = pd.MultiIndex.from_frame(fails[["pos", "column"]])
        echo = keys.isin(pd.MultiIndex.from_frame(fails.loc[root, ["pos", "column"]])) & ~root
        fails = fails[~echo].reset_index(drop=True)
    return Validated(out, ~bad, fails, n_fixed, added, missing, exact)


def _check_name(check: object) -> str:
    """``isin(['a', 'b'])`` → ``isin``: the check's name without its arguments."""
    return str(check).split("(", 1)[0]


def _plain(value: object) -> str | None:
    """A failing value as text (None for a null), as it is stored in the quarantine."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)
