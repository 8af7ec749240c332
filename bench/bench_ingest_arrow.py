"""Prototype floor: the contract's checks as pyarrow.compute kernels on one thread.

``PATH`` ending in ``.parquet``: product_usage; ``.csv``: subscriptions (pyarrow.csv reads every
column as text; each parsed column is guarded by the lexicon's regex, trimmed of ASCII blanks
and cast, the lists are ``is_in``, the ranges compares).

Reads one Parquet day with pyarrow, checks it (id trims and blanks, the event-type list, the
day window, quantity >= 1) into a pass mask, splits pass/fail, de-duplicates the key (first row
wins) and writes the warehouse file: what a pyarrow-reader design would cost, without the
failure lists (to be built for failing rows only) and the quarantine writes. A measurement
taken before building the engine's Arrow path for Parquet (``spokesync/ingest/arrow_checks.py``,
measured by ``bench.bench_ingest``; see docs/benchmarks.md, "Other readers").

    .venv/bin/python -m bench.bench_ingest_arrow PATH/TO/part-0000.parquet [DAY]

Make a day with ``spokesync sample-data`` (or keep ``bench.bench_ingest --dir``'s files).
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spokesync.ingest.contract import SOURCES
from spokesync.ingest.lexicon import (
    DATE_TEXT,
    DECIMAL_TEXT,
    INT_TEXT,
    TIMESTAMP_TEXT,
    UNICODE_WHITESPACE,
)


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


class _Steps:
    """Calls a step and adds its CPU time to the step's name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        c = _cpu()
        out = fn()
        self.seconds[name] = self.seconds.get(name, 0.0) + _cpu() - c
        return out


def _split_dedupe_write(
    step: _Steps,
    start: float,
    t: pa.Table,
    cols: dict[str, Any],
    ok: Any,
    key: str,
    path: str,
) -> None:
    """Split by the pass mask, keep each key's first row, write, and print the steps' costs."""
    good = step("filter", lambda: pa.table(cols).filter(ok))
    bad = step("filter", lambda: t.filter(pc.invert(ok)))

    def dedupe() -> pa.Table:
        enc = pc.dictionary_encode(good.column(key)).combine_chunks()
        _, first = np.unique(enc.indices.to_numpy(zero_copy_only=False), return_index=True)
        if len(first) == good.num_rows:
            return good
        first.sort()
        return good.take(pa.array(first))

    out = step("dedupe", dedupe)
    step("write", lambda: pq.write_table(out, path + ".proto-out.parquet", compression="snappy"))
    total = _cpu() - start
    print(
        f"rows {t.num_rows:,}: {out.num_rows:,} kept, {bad.num_rows:,} failing, "
        f"{good.num_rows - out.num_rows:,} duplicates; {total:.2f}s CPU = "
        f"{t.num_rows / total / 1e6:.2f}M rows per CPU-second; "
        + ", ".join(f"{k} {v:.3f}s" for k, v in step.seconds.items())
    )


def main() -> None:
    path, day = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "2026-01-01")
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if path.endswith(".csv"):
        _csv(path, day)
        return
    spec = SOURCES["product_usage"]
    # Kernels' one-time set-up (is_in's first call costs ~0.1 s) outside the measurement.
    pc.is_in(pa.array(["a"]), pa.array(["a"]))
    pc.utf8_trim(pa.array([" a"]), UNICODE_WHITESPACE)
    step = _Steps()

    start = _cpu()
    t = step("read", lambda: pq.read_table(path, use_threads=False))
    masks: list[pa.ChunkedArray] = []
    cols: dict[str, pa.ChunkedArray] = {}
    for name in ("event_id", "account_id", "user_id"):
        v = step("trim ids", lambda n=name: pc.utf8_trim(t.column(n), UNICODE_WHITESPACE))
        masks.append(
            step("id checks", lambda v=v: pc.fill_null(pc.greater(pc.utf8_length(v), 0), False))
        )
        cols[name] = v
    allowed = pa.array(list(spec.column("event_type").allowed or ()))
    cols["event_type"] = t.column("event_type")
    masks.append(step("enum", lambda: pc.is_in(t.column("event_type"), allowed)))
    lo = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    typ = pa.timestamp("us", "UTC")
    ts = cols["occurred_at"] = t.column("occurred_at")
    masks.append(
        step(
            "ranges",
            lambda: pc.fill_null(
                pc.and_(
                    pc.greater_equal(ts, pa.scalar(lo, typ)),
                    pc.less(ts, pa.scalar(lo + dt.timedelta(days=1), typ)),
                ),
                False,
            ),
        )
    )
    q = cols["quantity"] = t.column("quantity")
    masks.append(step("ranges", lambda: pc.fill_null(pc.greater_equal(q, 1), False)))
    ok = masks[0]
    for m in masks[1:]:
        ok = step("and", lambda ok=ok, m=m: pc.and_(ok, m))
    _split_dedupe_write(step, start, t, cols, ok, "event_id", path)


def _csv(path: str, day: str) -> None:
    import pyarrow.csv as pa_csv

    spec = SOURCES["subscriptions"]
    pc.is_in(pa.array(["a"]), pa.array(["a"]))
    step = _Steps()

    start = _cpu()
    names = spec.column_names
    t = step(
        "read",
        lambda: pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=1 << 24),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True
            ),
        ),
    )
    guards = {"int": INT_TEXT, "decimal": DECIMAL_TEXT, "date": DATE_TEXT}
    guards["timestamp"] = TIMESTAMP_TEXT
    masks: list[Any] = []
    cols: dict[str, Any] = {}
    for col in spec.columns:
        x = t.column(col.name)
        if col.kind == "str":
            v = (
                step("trim ids", lambda x=x: pc.utf8_trim(x, UNICODE_WHITESPACE))
                if col.identifier
                else x
            )
            if col.pattern is not None:
                masks.append(
                    step("patterns", lambda v=v, p=col.pattern: pc.match_substring_regex(v, p))
                )
            if col.allowed is not None:
                masks.append(
                    step("lists", lambda v=v, a=col.allowed: pc.is_in(v, pa.array(list(a))))
                )
            elif not col.nullable:
                masks.append(step("blanks", lambda v=v: pc.greater(pc.utf8_length(v), 0)))
        else:
            guard = "^(" + guards[col.kind] + ")$"
            g = step("guards", lambda x=x, guard=guard: pc.match_substring_regex(x, guard))
            kept = step("guards", lambda x=x, g=g: pc.if_else(g, pc.utf8_trim_whitespace(x), None))
            v = step(f"cast {col.kind}", lambda k=kept, c=col: pc.cast(k, c.arrow_type))
            ok = g if not col.nullable else pc.or_kleene(g, pc.is_null(x))
            masks.append(ok)
            if col.minimum is not None:
                lo = pa.scalar(col.minimum).cast(col.arrow_type)
                masks.append(step("ranges", lambda v=v, lo=lo: pc.greater_equal(v, lo)))
        cols[col.name] = v
    end = pa.scalar(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC) + dt.timedelta(days=1))
    masks.append(step("ranges", lambda: pc.less_equal(cols["updated_at"], end)))
    ok = masks[0]
    for m in masks[1:]:
        ok = step("and", lambda ok=ok, m=m: pc.and_(ok, pc.fill_null(m, False)))
    _split_dedupe_write(step, start, t, cols, ok, "subscription_id", path)


if __name__ == "__main__":
    main()
