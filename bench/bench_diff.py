"""Diff benchmark: N records x 20 properties, 5% of records changed since the last sync.

Builds a synthetic warehouse table (Parquet) and a state DB whose snapshot holds the canonical
values of the same data with 5% of the records perturbed, then times ``plan_changes`` plus
streaming every change batch (what the push consumes), in a fresh process per size so peak RSS
is the diff's own.

    .venv/bin/python -m bench.bench_diff                 # 100k and 1M
    .venv/bin/python -m bench.bench_diff --sizes 100000 1000000 5000000

Prints per size: wall time, CPU (of the diff's own work: plan + streaming, imports excluded),
peak RSS, records/fields changed; then the same data through a bare DuckDB wide join (build
both 1M × 20 tables, join, emit the changed cells; see :func:`bare_join`) in its own process,
and the ratio of the two CPU times.
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


def bare_join(root: Path) -> dict[str, object]:
    """The floor to compare with: plain DuckDB, no spokesync. Build the two wide tables (the
    warehouse rows as text; the held values, every 20th record with one value changed, as
    the snapshot has them), join them on the id and emit the changed cells to Python."""
    path = warehouse.master_path(root / "warehouse", "accounts")
    con = duckdb.connect()
    configure_connection(con)
    con.execute("SET preserve_insertion_order = false")
    names = [name for name, _, _ in COLUMNS]
    step = int(1 / CHANGED_FRACTION)
    c0, t0 = time.process_time(), time.perf_counter()
    con.execute(
        "CREATE TABLE a AS SELECT account_id AS id, "
        + ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in names)
        + f" FROM read_parquet('{path}')"
    )
    held = [
        f"CASE WHEN i % {step} = 0 AND (i // {step}) % {len(names)} = {k} THEN 'stale' "
        f"ELSE {c} END AS {c}"
        for k, c in enumerate(names)
    ]
    con.execute(
        f"CREATE TABLE b AS SELECT id, {', '.join(held)} "
        "FROM (SELECT CAST(id[2:] AS BIGINT) AS i, * FROM a)"
    )
    cells = ", ".join(f"{{'p': '{c}', 'o': b.{c}, 'n': a.{c}}}" for c in names)
    differs = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in names)
    con.execute(
        "CREATE TABLE changed AS SELECT id, x.p AS property, x.o AS old_value, "
        f"x.n AS new_value FROM (SELECT a.id, unnest([{cells}]) AS x FROM a JOIN b USING (id) "
        f"WHERE {differs}) WHERE x.o IS DISTINCT FROM x.n"
    )
    reader = con.sql("SELECT * FROM changed ORDER BY id, property").to_arrow_reader(8192)
    cells_out = sum(batch.num_rows for batch in reader)
    out = {
        "fields_changed": cells_out,
        "total_s": round(time.perf_counter() - t0, 2),
        "work_cpu_s": round(time.process_time() - c0, 2),
        "peak_rss_mb": peak_rss_mb(),
    }
    con.close()
    return out


def run_one(root: Path, memory_limit: str | None) -> dict[str, object]:
    import spokesync.ingest.contract  # noqa: F401  (imports are not the diff's work)
    from spokesync.diff import plan_changes

    mapping = load_mapping(root / "companies.yaml")
    c0 = time.process_time()
    t0 = time.perf_counter()
    plan = plan_changes(
        root / "state.duckdb", root / "warehouse", mapping, AS_OF, memory_limit=memory_limit
    )
    t_plan = time.perf_counter() - t0
    c_plan = time.process_time() - c0
    records = sum(len(b) for b in plan.batches(100))
    total = time.perf_counter() - t0
    work_cpu = time.process_time() - c0
    out = {
        "plan_cpu_s": round(c_plan, 2),
        "work_cpu_s": round(work_cpu, 2),
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
    ap.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_one:
        print(json.dumps(run_one(args.run_one, args.memory_limit)))
        return 0
    if args.bare:
        print(json.dumps(bare_join(args.bare)))
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
            bare_cmd = [sys.executable, "-m", "bench.bench_diff", "--bare", str(root)]
            bare = json.loads(subprocess.run(bare_cmd, check=True, capture_output=True).stdout)
            assert bare["fields_changed"] == res["fields_changed"], (bare, res)
            print(
                f"{n:>9,} records x 20 props: diff {res['plan_s']:.2f} s, "
                f"+stream {res['total_s']:.2f} s total (CPU {res['work_cpu_s']:.2f} s of which "
                f"plan {res['plan_cpu_s']:.2f} s; process {res['cpu_s']:.1f} s with imports; "
                f"load before {load:.1f}), peak RSS {res['peak_rss_mb']} MB, "
                f"changed {res['records_changed']:,} records / {res['fields_changed']:,} fields "
                f"(setup {t_setup:.1f} s)\n"
                f"{'':>9} bare DuckDB wide join: {bare['total_s']:.2f} s, CPU "
                f"{bare['work_cpu_s']:.2f} s, peak RSS {bare['peak_rss_mb']} MB → diff / bare "
                f"CPU = {res['work_cpu_s'] / max(bare['work_cpu_s'], 0.01):.2f}×",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
