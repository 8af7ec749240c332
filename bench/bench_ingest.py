"""Benchmark: one day of N rows per landing format, ingested and validated.

- ``parquet``: N usage events (the sample generator, with its planted mess)
- ``csv``: N subscription rows (``erp/subscriptions``), ~1.5% with an unknown plan
- ``jsonl``: N support-ticket rows (``support/tickets``), ~1.5% with an unknown priority

Each ingest runs in a child process so its peak RSS and CPU time are its own (not the
generator's). ``rows/s per core`` is rows / the user+sys CPU seconds of the ingest call (the
child's imports excluded): the figure that depends least on how loaded the machine is. CPU
time includes the helper threads (read-ahead, Parquet writer) and DuckDB.

    .venv/bin/python -m bench.bench_ingest --rows 2000000 --format all

Next to each ingest the bench measures the floor on the same file, in its own process: DuckDB
alone copying it to Parquet (one thread, the fast path's reader SQL), ``COPY (SELECT * FROM
read_X(...)) TO 'out.parquet'``, as landed (text) and with each contract column cast to its
warehouse type (``TRY_CAST``), and prints the ingest's CPU over the typed floor's.
A third floor reads the file with pyarrow's own reader (one thread, CSV as text, JSONL as pyarrow infers it) and
writes it with ``pyarrow.parquet.write_table``: what a pyarrow-reader design could not go below.

``--days N`` (N > 1) lands N days per format and ingests them as a backfill does, twice each
with one worker and with one worker process per core (``SPOKESYNC_INGEST_WORKERS``): the CLI
(``spokesync ingest --source S``, every landed day) and the Dagster single-run backfill's call
(``spokesync.ingest.parallel.ingest_partitions``). It prints wall time, the CPU seconds of the
process and its workers, CPU over wall (how many cores were kept busy) and the wall gain of
two workers over one.
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

from bench.machine import describe

DAY = "2026-01-01"
SOURCE = {"parquet": "product_usage", "csv": "subscriptions", "jsonl": "support_tickets"}


def _ingest_child(source: str, landing: Path, warehouse: Path, chunk_rows: int) -> None:
    from spokesync.ingest import ingest_partition

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    report = ingest_partition(source, DAY, landing, warehouse, "bench", chunk_rows)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "rows_read": report.rows_read,
                "rows_valid": report.rows_valid,
                "rows_quarantined": report.rows_quarantined,
                "seconds": round(elapsed, 2),
                "rows_per_s": round(report.rows_read / elapsed),
                "peak_rss_mb": round(usage.ru_maxrss / 1024),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                "ingest_cpu_s": round(
                    usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 2
                ),
            }
        )
    )


def _floor_child(source: str, landing: Path, out_dir: Path) -> None:
    """CPU seconds of bare DuckDB copies of the day's files to Parquet: as landed, and with
    the contract's columns cast to their warehouse types (no checks, no quarantine)."""
    from spokesync.ingest.contract import SOURCES, null_tokens
    from spokesync.ingest.readers import landing_files
    from spokesync.ingest.rules import SQL_TYPES
    from spokesync.ingest.scan import connection, reader

    spec = SOURCES[source]
    con = connection()
    files = landing_files(source, landing, DAY)
    result: dict[str, float] = {}
    for variant in ("raw", "typed"):
        before = resource.getrusage(resource.RUSAGE_SELF)
        for i, path in enumerate(files):
            r = reader(source, path, path.name, null_tokens(source))
            if variant == "raw":
                select = "*"
            else:
                select = ", ".join(
                    f'TRY_CAST("{c.name}" AS {SQL_TYPES[c.kind]}) AS "{c.name}"'
                    for c in spec.columns
                )
            out = out_dir / f"floor-{variant}-{i}.parquet"
            con.execute(
                f"COPY (SELECT {select} FROM {r.sql}) TO '{out}' (FORMAT parquet, "
                "COMPRESSION snappy)",
                {k: v for k, v in r.params.items() if f"${k}" in r.sql},
            )
            out.unlink()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result[variant] = round(
            usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 2
        )
    result["arrow"] = _arrow_floor(spec.format, files, out_dir)
    print(json.dumps(result))


def _arrow_floor(fmt: str, files: list[Path], out_dir: Path) -> float:
    """CPU seconds of pyarrow's own reader (one thread; CSV as text, JSONL with the types
    pyarrow infers, Parquet as landed) plus ``pyarrow.parquet.write_table``: no checks, no casts."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    pa.set_cpu_count(1)
    before = resource.getrusage(resource.RUSAGE_SELF)
    for i, path in enumerate(files):
        if fmt == "csv":
            with path.open("rb") as fh:
                names = fh.readline().decode().rstrip("\r\n").split(",")
            table = pa_csv.read_csv(
                path,
                read_options=pa_csv.ReadOptions(use_threads=False, block_size=1 << 24),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True
                ),
            )
        elif fmt == "jsonl":
            table = pa_json.read_json(
                path, read_options=pa_json.ReadOptions(use_threads=False, block_size=1 << 24)
            )
        else:
            table = pq.read_table(path, use_threads=False)
        out = out_dir / f"floor-arrow-{i}.parquet"
        pq.write_table(table, out, compression="snappy")
        out.unlink()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 2)


def _backfill_child(source: str, landing: Path, warehouse: Path, days: list[str]) -> None:
    from spokesync.ingest.parallel import default_workers, ingest_partitions

    started = time.perf_counter()
    reports = list(ingest_partitions(source, days, landing, warehouse, "bench"))
    elapsed = time.perf_counter() - started
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    cpu = kids.ru_utime + kids.ru_stime + me.ru_utime + me.ru_stime
    print(
        json.dumps(
            {
                "rows_read": sum(r.rows_read for r in reports),
                "seconds": round(elapsed, 2),
                "cpu_s": round(cpu, 2),
                "workers": min(default_workers(), len(days)),
                "worker_peak_rss_mb": round(max(kids.ru_maxrss, me.ru_maxrss) / 1024),
            }
        )
    )


def _synthetic(fmt: str, rows: int, landing: Path, mess: float, day: str = DAY) -> Path:
    """N rows of subscriptions (CSV) or tickets (JSONL), built in DuckDB (fast, vectorised)."""
    import duckdb

    con = duckdb.connect()
    bad = int(1 / mess) if mess > 0 else 0
    if fmt == "csv":
        path = landing / "erp" / "subscriptions" / f"subscriptions_{day}.csv"
        select = f"""
            SELECT 'SUB-' || i AS subscription_id, 'ACC-' || (i % 100000) AS account_id,
                   CASE WHEN {bad} > 0 AND i % {bad or 1} = 0 THEN 'platinum'
                        ELSE ['starter', 'growth', 'scale', 'enterprise'][1 + i % 4] END AS plan,
                   ['trialing', 'active', 'past_due', 'canceled'][1 + i % 4] AS status,
                   CAST(1 + i % 50 AS VARCHAR) AS seats,
                   CAST(round(10 + (i % 1000) * 1.37, 2) AS VARCHAR) AS mrr,
                   'EUR' AS currency, '2025-03-01' AS started_on,
                   CASE WHEN i % 3 = 0 THEN '' ELSE '2026-03-01' END AS renews_on,
                   '' AS canceled_on, '{day}T09:30:00Z' AS updated_at
            FROM range({rows}) t(i)"""
        fmt_sql = "(FORMAT csv, HEADER)"
    else:
        path = landing / "support" / "tickets" / f"tickets_{day}.jsonl"
        select = f"""
            SELECT 'TCK-' || i AS ticket_id, 'ACC-' || (i % 100000) AS account_id,
                   'user' || (i % 5000) || '@acme' || (i % 97) || '.com' AS requester_email,
                   'Cannot export report ' || i AS subject,
                   CASE WHEN i % 4 = 0 THEN NULL ELSE 'Steps: open the report, press export — it hangs.' END AS description,
                   CASE WHEN {bad} > 0 AND i % {bad or 1} = 0 THEN 'critical'
                        ELSE ['low', 'medium', 'high', 'urgent'][1 + i % 4] END AS priority,
                   ['new', 'open', 'pending', 'solved', 'closed'][1 + i % 5] AS status,
                   ['email', 'chat', 'phone', 'web'][1 + i % 4] AS channel,
                   '{day}T08:00:00Z' AS created_at, '{day}T09:00:00Z' AS updated_at
            FROM range({rows}) t(i)"""
        fmt_sql = "(FORMAT json)"
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({select}) TO '{path}' {fmt_sql}")
    return path


def _parquet(rows: int, accounts: int, landing: Path, mess: float, days: int = 1) -> None:
    from spokesync.sample_data.generator import Company, GeneratorConfig, write_day

    cfg = GeneratorConfig(
        seed=7, accounts=accounts, days=days, events_per_day=rows, mess_rate=mess,
        extra_column_day=None, start=dt.date.fromisoformat(DAY),
    )  # fmt: skip
    company = Company.build(cfg.seed, cfg.accounts, cfg.start)
    for i in range(days):
        write_day(cfg, company, landing, i)


def run_backfill(fmt: str, args: argparse.Namespace, tmp: Path) -> None:
    landing = tmp / f"{fmt}-backfill" / "landing"
    start = dt.date.fromisoformat(DAY)
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
    if fmt == "parquet":
        _parquet(args.rows, args.accounts, landing, args.mess_rate, args.days)
    else:
        for day in days:
            _synthetic(fmt, args.rows, landing, args.mess_rate, day)
    cli = [sys.executable, "-c", "import sys; from spokesync.cli import main; sys.exit(main())"]
    walls: dict[tuple[str, int], float] = {}
    for path in args.paths.split(","):
        for workers in (1, args.workers):
            home = tmp / f"{fmt}-backfill" / f"{path}-{workers}"
            if path == "cli":
                argv = [*cli, "ingest", "--source", SOURCE[fmt], "--landing", str(landing),
                        "--home", str(home), "--run-id", "bench"]  # fmt: skip
            else:
                argv = [sys.executable, "-m", "bench.bench_ingest", "--backfill-child",
                        SOURCE[fmt], str(landing), str(home / "wh"), ",".join(days)]  # fmt: skip
            env = {**os.environ, "SPOKESYNC_INGEST_WORKERS": str(workers)}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the process and its workers
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            walls[path, workers] = wall
            gain = f"; wall gain over 1 worker {walls[path, 1] / wall:.2f}x" if workers > 1 else ""
            print(
                f"{fmt:<8} {path:<7} backfill, {len(days)} days x {args.rows:,} rows, {workers} "
                f"worker(s): {wall:.1f}s wall, {cpu:.1f}s CPU = {cpu / wall:.2f} cores busy; "
                f"peak RSS of one process {after.ru_maxrss / 1024:,.0f} MB{gain}"
            )


def run_one(fmt: str, args: argparse.Namespace, tmp: Path) -> None:
    landing, warehouse = tmp / fmt / "landing", tmp / fmt / "warehouse"
    started = time.perf_counter()
    if fmt == "parquet":
        _parquet(args.rows, args.accounts, landing, args.mess_rate)
    else:
        _synthetic(fmt, args.rows, landing, args.mess_rate)
    gen_s = time.perf_counter() - started
    size_mb = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) / 2**20
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_ingest", "--chunk-rows", str(args.chunk_rows),
         "--child", SOURCE[fmt], str(landing), str(warehouse)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    f = json.loads(out.strip().splitlines()[-1])
    per_core = f["rows_read"] / f["ingest_cpu_s"] if f["ingest_cpu_s"] else 0
    floor = json.loads(
        subprocess.run(
            [sys.executable, "-m", "bench.bench_ingest", "--floor-child", SOURCE[fmt],
             str(landing), str(tmp / fmt)],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
    )  # fmt: skip
    print(
        f"{fmt:<8} {SOURCE[fmt]:<16} {f['rows_read']:>11,} rows ({size_mb:,.0f} MB, generated in "
        f"{gen_s:.1f}s): {f['rows_valid']:,} valid, {f['rows_quarantined']:,} quarantined in "
        f"{f['seconds']}s wall = {f['rows_per_s']:,} rows/s; ingest CPU {f['ingest_cpu_s']}s "
        f"(process {f['cpu_s']}s incl. imports) = {per_core:,.0f} rows/s per core; "
        f"peak RSS {f['peak_rss_mb']} MB"
    )
    raw_rate = f["rows_read"] / floor["raw"] if floor["raw"] else 0
    typed_rate = f["rows_read"] / floor["typed"] if floor["typed"] else 0
    ratio = f["ingest_cpu_s"] / floor["typed"] if floor["typed"] else 0
    print(
        f"{'':<8} floor (bare DuckDB COPY to Parquet, same file, one thread): as landed "
        f"{floor['raw']}s CPU = {raw_rate:,.0f} rows/s per core; columns cast "
        f"{floor['typed']}s = {typed_rate:,.0f} rows/s per core; ingest / typed floor = "
        f"{ratio:.2f}x"
    )
    arrow_rate = f["rows_read"] / floor["arrow"] if floor["arrow"] else 0
    print(
        f"{'':<8} floor, pyarrow's reader (one thread) + pyarrow.parquet.write_table: "
        f"{floor['arrow']}s CPU = {arrow_rate:,.0f} rows/s per core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", "--events", type=int, default=2_000_000, dest="rows")
    parser.add_argument("--format", choices=["parquet", "csv", "jsonl", "all"], default="all")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--mess-rate", type=float, default=0.015)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--days", type=int, default=1, help="> 1: a backfill over this many days")
    parser.add_argument("--paths", default="cli,dagster", help="backfill paths: cli,dagster")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="backfill workers")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--backfill-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--floor-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _ingest_child(args.child[0], Path(args.child[1]), Path(args.child[2]), args.chunk_rows)
        return
    if args.floor_child:
        _floor_child(args.floor_child[0], Path(args.floor_child[1]), Path(args.floor_child[2]))
        return
    if args.backfill_child:
        source, landing, warehouse, days = args.backfill_child
        _backfill_child(source, Path(landing), Path(warehouse), days.split(","))
        return
    print(f"machine: {describe()}; load average before: {os.getloadavg()[0]:.2f}")
    formats = ["parquet", "csv", "jsonl"] if args.format == "all" else [args.format]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for fmt in formats:
            if args.days > 1:
                run_backfill(fmt, args, Path(tmp))
            else:
                run_one(fmt, args, Path(tmp))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
