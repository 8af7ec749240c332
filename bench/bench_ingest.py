"""Benchmark: generate N usage events for one day, then ingest + validate them.

Prints generation time, ingestion rows/s and the ingesting process's peak RSS. The ingestion
runs in a child process so that its peak RSS is its own (not the generator's).

    .venv/bin/python -m bench.bench_ingest --events 10000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe

DAY = "2026-01-01"


def _ingest_child(landing: Path, warehouse: Path, chunk_rows: int) -> None:
    from spokesync.ingest import ingest_partition

    started = time.perf_counter()
    report = ingest_partition("product_usage", DAY, landing, warehouse, "bench", chunk_rows)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb = usage.ru_maxrss
    print(
        json.dumps(
            {
                "rows_read": report.rows_read,
                "rows_valid": report.rows_valid,
                "rows_quarantined": report.rows_quarantined,
                "seconds": round(elapsed, 2),
                "rows_per_s": round(report.rows_read / elapsed),
                "peak_rss_mb": round(peak_kb / 1024),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--mess-rate", type=float, default=0.015)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _ingest_child(args.child[0], args.child[1], args.chunk_rows)
        return

    import os

    from spokesync.sample_data.generator import Company, GeneratorConfig, write_day

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        landing, warehouse = Path(tmp) / "landing", Path(tmp) / "warehouse"
        cfg = GeneratorConfig(
            seed=7,
            accounts=args.accounts,
            days=1,
            events_per_day=args.events,
            mess_rate=args.mess_rate,
            extra_column_day=None,
        )
        started = time.perf_counter()
        company = Company.build(cfg.seed, cfg.accounts, cfg.start)
        write_day(cfg, company, landing, 0)
        gen_s = time.perf_counter() - started
        gen_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size_mb = sum(p.stat().st_size for p in landing.rglob("*.parquet")) / 2**20
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_ingest", "--chunk-rows", str(args.chunk_rows),
             "--child", str(landing), str(warehouse)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        figures = json.loads(out.strip().splitlines()[-1])
    print(f"machine: {describe()}")
    print(
        f"generate: {args.events:,} events for {args.accounts:,} accounts in {gen_s:.1f}s "
        f"({args.events / gen_s:,.0f} rows/s, peak RSS {gen_rss:.0f} MB, {size_mb:.0f} MB parquet)"
    )
    print(
        f"ingest:   {figures['rows_read']:,} rows read, {figures['rows_valid']:,} valid, "
        f"{figures['rows_quarantined']:,} quarantined in {figures['seconds']}s = "
        f"{figures['rows_per_s']:,} rows/s, peak RSS {figures['peak_rss_mb']} MB, "
        f"CPU {figures['cpu_s']}s (user+sys, incl. imports)"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
