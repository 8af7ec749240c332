"""The contract's checks as pyarrow.compute kernels, for typed Parquet batches.

The Parquet fast path (:func:`spokesync.ingest.scan.scan`) reads a file with pyarrow and asks
this module, per batch, for the warehouse values, which rows pass and how many a fix changed:
no DuckDB query and no per-row Python over the rows that pass. The rows that fail (few) are
then run through the DuckDB scan query (:func:`spokesync.ingest.rules.scan_query`) over an
Arrow table of just those rows, which names each failure exactly as the DuckDB path does.

It applies (:func:`plan_for`) only where the kernels compute exactly what the SQL computes:

- every contract column is in the file (extra columns are fine);
- text columns are ``string``/``large_string`` with no pattern and no normalisation (Unicode
  trim of identifiers, ``blank``, ``not_nullable``, allowed lists);
- int columns are signed integers (``minimum``), timestamp columns are timestamps with a time
  zone in s, ms or µs (the day window ``in_day`` / ``not_after_day_end``, ``earliest``);
- extra columns are of a type DuckDB renders in ``raw_row`` the same from Arrow as from the
  Parquet file (strings, signed ints, floats, booleans, dates, zoned timestamps).

Anything else (a text number to parse, a decimal, a date column, a pattern, an email, a naive
or nanosecond timestamp) is checked by the DuckDB scan query instead. ``product_usage`` as the
exports land it is the case this is for. ``tests/ingest/test_arrow_checks.py`` checks that both
keep, quarantine (with the same reasons) and de-duplicate the same rows on odd values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spokesync.ingest.arrays import numpy_of, scalar_of, strings_of
from spokesync.ingest.contract import EARLIEST, SOURCES, Column
from spokesync.ingest.lexicon import UNICODE_WHITESPACE

_UNITS = ("s", "ms", "us")
_US_UTC = pa.timestamp("us", tz="UTC")
_US_PER_S = 1_000_000
# Compute functions turn Python values into scalars through pyarrow's pandas shim: constants
# are built from buffers instead (a worker on this path never imports pandas).
_FALSE = scalar_of(False, pa.bool_())
_TRUE = scalar_of(True, pa.bool_())
_ZERO = scalar_of(0, pa.int64())


def _stamp(t: dt.datetime) -> pa.Scalar:
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    us = (delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds
    return scalar_of(us, _US_UTC)


def _text_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _signed_int(t: pa.DataType) -> bool:
    return pa.types.is_signed_integer(t)


def _zoned_timestamp(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) and t.tz is not None and t.unit in _UNITS


def _column_ok(col: Column, t: pa.DataType) -> bool:
    """Whether the kernels check ``col`` landed as ``t`` exactly as the SQL does."""
    if col.kind == "str":
        return _text_type(t) and col.pattern is None and col.normalise is None
    if col.kind == "int":
        return _signed_int(t) and col.allowed is None
    if col.kind == "timestamp":
        return (
            _zoned_timestamp(t)
            and col.allowed is None
            and col.minimum is None
            and col.window in (None, "in_day", "not_after_day_end")
        )
    return False


def _extra_ok(t: pa.DataType) -> bool:
    return (
        _text_type(t)
        or _signed_int(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_date32(t)
        or _zoned_timestamp(t)
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """The kernels for one source and file schema (see :func:`plan_for`)."""

    source: str
    day: str | None
    columns: tuple[Column, ...]


def plan_for(source: str, schema: pa.Schema, day: str | None) -> Plan | None:
    """The kernels' plan for a Parquet file of ``source`` with ``schema``, or None when the
    DuckDB scan query must check it (see the module docstring)."""
    spec = SOURCES[source]
    if spec.format != "parquet" or len(set(schema.names)) != len(schema.names):
        return None
    types = {f.name: f.type for f in schema}
    for col in spec.columns:
        if col.name not in types or not _column_ok(col, types[col.name]):
            return None
    if not all(_extra_ok(t) for n, t in types.items() if n not in spec.column_names):
        return None
    if any(n.startswith("__") for n in types):
        return None
    return Plan(source, day, spec.columns)


@dataclass(slots=True)
class Checked:
    values: pa.Table  # the warehouse columns, contract order
    ok: np.ndarray  # bool per row
    normalised: int  # rows a fix (an identifier's trim) changed


def _and(a: pa.Array | None, b: pa.Array) -> pa.Array:
    return b if a is None else pc.and_(a, b)


def _window(col: Column, day: str | None) -> tuple[dt.datetime | None, dt.datetime | None, bool]:
    """(lowest allowed, highest, whether the highest is excluded) of a timestamp column, as
    :func:`spokesync.ingest.rules._window_checks` has them."""
    earliest = dt.datetime.fromisoformat(EARLIEST).replace(tzinfo=dt.UTC)
    if day is not None and col.window is not None:
        start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1)
        if col.window == "in_day":
            return start, end, True
        return earliest, end, False  # not_after_day_end
    return (earliest if col.earliest else None), None, False


def check(plan: Plan, batch: pa.RecordBatch | pa.Table) -> Checked:
    """The warehouse values, pass flags and normalised count of one batch as read."""
    values: dict[str, pa.Array] = {}
    ok: pa.Array | None = None
    changed: pa.Array | None = None
    for col in plan.columns:
        x = batch.column(col.name)
        if isinstance(x, pa.ChunkedArray):
            x = x.combine_chunks()
        if col.kind == "str":
            if pa.types.is_large_string(x.type):
                x = x.cast(pa.string())
            v = pc.utf8_trim(x, UNICODE_WHITESPACE) if col.identifier else x
            if col.identifier:
                # A trim only removes characters: the value changed iff its length did.
                moved = pc.not_equal(pc.binary_length(v), pc.binary_length(x))
                moved = pc.fill_null(moved, _FALSE)
                changed = moved if changed is None else pc.or_(changed, moved)
            if not col.nullable:
                stripped = v if col.identifier else pc.utf8_trim(x, UNICODE_WHITESPACE)
                ok = _and(ok, pc.fill_null(pc.greater(pc.binary_length(stripped), _ZERO), _FALSE))
            if col.allowed is not None:
                listed = pc.is_in(v, strings_of(col.allowed))
                if col.nullable:
                    listed = pc.or_(listed, pc.is_null(v))
                ok = _and(ok, listed)
        elif col.kind == "int":
            v = x.cast(pa.int64())
            if not col.nullable:
                ok = _and(ok, pc.is_valid(v))
            if col.minimum is not None:
                ok = _and(
                    ok, pc.fill_null(pc.greater_equal(v, scalar_of(col.minimum, pa.int64())), _TRUE)
                )
        else:  # a zoned timestamp (plan_for)
            v = x.cast(_US_UTC)
            if not col.nullable:
                ok = _and(ok, pc.is_valid(v))
            lo, hi, open_end = _window(col, plan.day)
            if lo is not None:
                ok = _and(ok, pc.fill_null(pc.greater_equal(v, _stamp(lo)), _TRUE))
            if hi is not None:
                below = (pc.less if open_end else pc.less_equal)(v, _stamp(hi))
                ok = _and(ok, pc.fill_null(below, _TRUE))
        values[col.name] = v
    n = batch.num_rows
    passed = np.ones(n, dtype=bool) if ok is None else numpy_of(ok)
    normalised = 0 if changed is None else int(pc.sum(changed).as_py() or 0)
    return Checked(pa.table(values), passed, normalised)
