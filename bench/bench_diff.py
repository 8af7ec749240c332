"""Diff benchmark: N records x 20 properties, 5% of records changed since the last sync.

Builds a synthetic warehouse table (Parquet) and a state DB whose snapshot holds the canonical
values of the same data with 5% of the records perturbed, then times ``plan_changes`` plus
streaming every change batch (what the push consumes), in a fresh process per size so peak RSS
is the diff's own.

    .venv/bin/python -m bench.bench_diff                 # 100k and 1M
    .venv/bin/python -m bench.bench_diff --sizes 100000 1000000 5000000

Prints one line per size: wall time, peak RSS, records/fields changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from bench.machine import describe
from spokesync import warehouse
from spokesync.canonical import configure_connection, sql_canonical
from spokesync.desired import ID_COLUMN
from spokesync.mapping import load_mapping
from spokesync.state.store import StateStore

AS_OF = dt.date(2026, 1, 15)
CHANGED_FRACTION = 0.05

# 20 properties: 8 strings, 6 numbers, 2 dates, 2 datetimes, 1 bool, 1 enumeration.
COLUMNS: list[tuple[str, str, str]] = [
    ("name", "string", "'Account ' || i"),
    ("domain", "string", "'acct' || i || '.example.com'"),
    ("country", "string", "['DE','US','FR','GB','NL'][1 + i % 5]"),
    ("city", "string", "'City ' || (i % 997)"),
    ("owner", "string", "'owner' || (i % 50) || '@example.com'"),
    ("segment", "string", "['smb','mid','ent'][1 + i % 3]"),
    ("source_system", "string", "'erp'"),
    ("notes", "string", "'note for account ' || i"),
    ("employees", "number", "i % 5000"),
    ("mrr", "number", "CAST((i % 100000) / 100.0 AS DECIMAL(12,2))"),
    ("seats", "number", "i % 300"),
    ("active_users", "number", "i % 97"),
    ("events_30d", "number", "i % 10007"),
    ("outstanding", "number", "CAST((i % 7777) * 1.25 AS DECIMAL(12,2))"),
    ("customer_since", "date", "DATE '2020-01-01' + CAST(i % 2000 AS INTEGER)"),
    ("renews_on", "date", "DATE '2026-01-01' + CAST(i % 365 AS INTEGER)"),
    ("last_seen_at", "datetime", "TIMESTAMP '2026-01-01' + to_seconds(i % 1000000)"),
    ("updated_at", "datetime", "TIMESTAMP '2025-06-01' + to_seconds(i % 9000000)"),
    ("is_paying", "bool", "i % 4 <> 0"),
    ("plan", "enumeration", "['starter','growth','scale','enterprise'][1 + i % 4]"),
]


def mapping_yaml() -> str:
    lines = [
        "object_type: companies",
        "id: {property: spokesync_account_id, column: account_id}",
        "source: {sql: SELECT * FROM accounts}",
        "fields:",
    ]
    for name, typ, _ in COLUMNS:
        extra = ", options: [starter, growth, scale, enterprise]" if typ == "enumeration" else ""
        lines.append(f"  - {{property: bench_{name}, type: {typ}, column: {name}{extra}}}")
    return "\n".join(lines) + "\n"


def setup(root: Path, n: int) -> None:
    """Warehouse Parquet + mapping + a state DB with 5% of the records perturbed."""
    wh = root / "warehouse"
    path = warehouse.master_path(wh, "accounts")
    path.parent.mkdir(parents=True, exist_ok=True)
    (root / "companies.yaml").write_text(mapping_yaml())
    mapping = load_mapping(root / "companies.yaml")
    con = duckdb.connect()
    configure_connection(con)
    cols = ", ".join(f"{expr} AS {name}" for name, _, expr in COLUMNS)
    con.execute(
        f"COPY (SELECT 'A' || lpad(CAST(i AS VARCHAR), 8, '0') AS account_id, {cols} "
        f"FROM range({n}) t(i)) TO '{path}' (FORMAT parquet)"
    )
    con.close()
    store = StateStore(root / "state.duckdb")
    store.ensure_schema()
    con = duckdb.connect(str(root / "state.duckdb"))
    configure_connection(con)
    # Snapshot = canonical values of the same rows; every 20th record has one value changed.
    selects = [
        f"SELECT {ID_COLUMN}, 'spokesync_account_id' AS property, {ID_COLUMN} AS value FROM src"
    ]
    for k, (name, typ, _) in enumerate(COLUMNS):
        value = sql_canonical(typ, name)
        value = (
            f"CASE WHEN i % {int(1 / CHANGED_FRACTION)} = 0 "
            f"AND (i // {int(1 / CHANGED_FRACTION)}) % {len(COLUMNS)} = {k} "
            f"THEN 'stale' ELSE {value} END"
        )
        selects.append(f"SELECT {ID_COLUMN}, 'bench_{name}', {value} FROM src")
    con.execute(
        f"CREATE TEMP TABLE src AS SELECT row_number() OVER () - 1 AS i, "
        f"account_id AS {ID_COLUMN}, * EXCLUDE (account_id) FROM read_parquet('{path}')"
    )
    con.execute(
        "INSERT INTO snapshot SELECT 'companies', u.external_id, 'H' || u.external_id, "
        "u.property, u.value, DATE '2026-01-14', 'pushed', now(), 'bench-setup' FROM ("
        + " UNION ALL ".join(selects)
        + ") u ORDER BY u.external_id"
    )
    con.close()
    store.rebuild_record_fingerprints("companies")
    del mapping


def peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM). ``ru_maxrss`` would include the parent's peak, since
    Linux keeps it across fork+exec, and the parent just built the data."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_one(root: Path, memory_limit: str | None) -> dict[str, object]:
    from spokesync.diff import plan_changes

    mapping = load_mapping(root / "companies.yaml")
    t0 = time.perf_counter()
    plan = plan_changes(
        root / "state.duckdb", root / "warehouse", mapping, AS_OF, memory_limit=memory_limit
    )
    t_plan = time.perf_counter() - t0
    records = sum(len(b) for b in plan.batches(100))
    total = time.perf_counter() - t0
    out = {
        "records_desired": plan.records_desired,
        "records_changed": plan.records_changed,
        "fields_changed": plan.fields_changed,
        "records_streamed": records,
        "plan_s": round(t_plan, 2),
        "total_s": round(total, 2),
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_utime
            + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            2,
        ),
    }
    plan.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 800MB")
    ap.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_one:
        print(json.dumps(run_one(args.run_one, args.memory_limit)))
        return 0
    print(f"{describe()} duckdb={duckdb.__version__}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench_diff_") as tmp:
            root = Path(tmp)
            t0 = time.perf_counter()
            setup(root, n)
            t_setup = time.perf_counter() - t0
            cmd = [sys.executable, "-m", "bench.bench_diff", "--run-one", str(root)]
            if args.memory_limit:
                cmd += ["--memory-limit", args.memory_limit]
            load = os.getloadavg()[0]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
            print(
                f"{n:>9,} records x 20 props: diff {res['plan_s']:.2f} s, "
                f"+stream {res['total_s']:.2f} s total (CPU {res['cpu_s']:.1f} s, "
                f"load before {load:.1f}), peak RSS {res['peak_rss_mb']} MB, "
                f"changed {res['records_changed']:,} records / {res['fields_changed']:,} fields "
                f"(setup {t_setup:.1f} s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
