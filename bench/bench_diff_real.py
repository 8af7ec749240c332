"""The shipped companies mapping over a big sample warehouse: desired state and diff, apart.

    .venv/bin/python -m bench.bench_diff_real --accounts 100000 --days 3
    .venv/bin/python -m bench.bench_diff_real --accounts 1000000 --days 3

The sample generator at its own proportions (5 events per account per day, its users,
subscriptions, invoices and tickets per account) lands ``--days`` days; everything is ingested.
The state store's snapshot is then the canonical desired state of the second-to-last day, as
if a sync had pushed it (written with SQL, fingerprints rebuilt), and the last day is planned:
what a nightly diff costs. In a fresh process, timed apart (CPU of the process, imports
excluded): desired state (``build_desired``: the mapping's aggregates over events,
subscriptions, invoices, tickets + canonical forms), and the rest of ``plan_changes``
(fingerprints, adoption, field-level diff with thresholds, plan) plus streaming the batches.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from bench.bench_diff import peak_rss_mb
from bench.machine import describe
from spokesync import warehouse
from spokesync.desired import DESIRED_TABLE, ID_COLUMN, build_desired
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.ingest.engine import ingest_master, ingest_partition, landed_partitions
from spokesync.mapping import load_mapping
from spokesync.mapping.spec import quote_identifier
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.state.store import StateStore

MAPPING = Path(__file__).resolve().parent.parent / "mappings" / "companies.yaml"


def setup(root: Path, accounts: int, days: int) -> list[str]:
    landing, wh = root / "landing", root / "warehouse"
    # Each step is skipped when an earlier, interrupted setup in the same folder finished it
    # (partition files are renamed into place whole, so one that exists is complete).
    if not (landing / "generated.ok").exists():
        generate(GeneratorConfig(accounts=accounts, days=days, seed=7), landing)
        (landing / "generated.ok").write_text("")
    for source in MASTER_SOURCES:
        if not warehouse.master_path(wh, source).exists():
            ingest_master(source, landing, wh, "bench")
    out: set[str] = set()
    for source in PARTITIONED_SOURCES:
        for day in landed_partitions(source, landing):
            if not warehouse.partition_path(wh, source, day).exists():
                ingest_partition(source, day, landing, wh, "bench")
            out.add(day)
    # HubSpot's owners, as a sync reads them: the mapping routes by owner email.
    warehouse.write_reference(wh, "hubspot_owners", _owners(wh))
    days_sorted = sorted(out)
    mapping = load_mapping(MAPPING)
    con = warehouse.connect(wh)
    build_desired(con, mapping, dt.date.fromisoformat(days_sorted[-2]))
    props = mapping.managed_properties
    cols = [ID_COLUMN, *(quote_identifier(p) for p in props[1:])]
    long = " UNION ALL ".join(
        f"SELECT {ID_COLUMN}, '{p}' AS property, {c} AS value FROM {DESIRED_TABLE}"
        for p, c in zip(props, cols, strict=True)
    )
    con.execute(f"CREATE TABLE snap AS SELECT * FROM ({long}) WHERE value IS NOT NULL")
    (root / "state.duckdb").unlink(missing_ok=True)  # an interrupted setup's, half written
    store = StateStore(root / "state.duckdb")
    store.ensure_schema()
    con.execute(f"ATTACH '{root / 'state.duckdb'}' AS st")
    con.execute(
        "INSERT INTO st.snapshot SELECT 'companies', external_id, 'H' || external_id, property, "
        f"value, DATE '{days_sorted[-2]}', 'pushed', now(), 'bench-setup' FROM snap "
        "ORDER BY external_id"
    )
    con.execute("DETACH st")
    con.close()
    store.rebuild_record_fingerprints("companies")
    return days_sorted


def _owners(wh: Path) -> object:
    """Every account owner as a HubSpot owner (ids made up), as the owners API would list."""
    from spokesync.hubspot.reference import OWNERS_SCHEMA

    con = warehouse.connect(wh)
    emails = con.execute(
        "SELECT DISTINCT lower(trim(owner_email)) FROM accounts WHERE owner_email IS NOT NULL "
        "ORDER BY 1"
    ).fetchall()
    con.close()
    rows = [{"owner_id": str(100 + i), "email": e} for i, (e,) in enumerate(emails)]
    return pa.Table.from_pylist(rows, OWNERS_SCHEMA)


def run_one(root: Path, as_of: dt.date) -> dict[str, object]:
    import spokesync.ingest.contract  # noqa: F401  (imports are not the diff's work)
    from spokesync import desired as desired_mod
    from spokesync.diff import plan_changes

    mapping = load_mapping(MAPPING)
    spent: dict[str, float] = {}
    real_build = desired_mod.build_desired

    def timed_build(*args: object, **kwargs: object) -> object:
        c0 = time.process_time()
        try:
            return real_build(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            spent["desired"] = time.process_time() - c0

    import spokesync.diff as diff_mod

    diff_mod.build_desired = timed_build  # type: ignore[assignment]
    c0, t0 = time.process_time(), time.perf_counter()
    plan = plan_changes(root / "state.duckdb", root / "warehouse", mapping, as_of)
    streamed = sum(len(b) for b in plan.batches(100))
    total_cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    out = {
        "records_desired": plan.records_desired,
        "records_changed": plan.records_changed,
        "fields_changed": plan.fields_changed,
        "fields_within_tolerance": plan.fields_within_tolerance,
        "records_within_tolerance": plan.records_within_tolerance,
        "write_calls_saved": plan.write_calls_saved,
        "streamed": streamed,
        "desired_cpu_s": round(spent["desired"], 2),
        "diff_cpu_s": round(total_cpu - spent["desired"], 2),
        "wall_s": round(wall, 2),
        "peak_rss_mb": peak_rss_mb(),
    }
    plan.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="set up in this folder, keep it, reuse it next time")
    ap.add_argument("--setup-only", action="store_true", help="with --keep: only set up")
    ap.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--as-of", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_one:
        print(json.dumps(run_one(args.run_one, args.as_of)))
        return 0
    print(f"{describe()} duckdb={duckdb.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench_diff_real_") as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        if args.keep and (root / "days.json").exists():  # set up by an earlier run: reuse
            days = json.loads((root / "days.json").read_text())
            print(f"reusing the warehouse and snapshot in {root}")
        else:
            root.mkdir(parents=True, exist_ok=True)
            days = setup(root, args.accounts, args.days)
            (root / "days.json").write_text(json.dumps(days))
        t_setup = time.perf_counter() - t0
        if args.setup_only:
            print(f"set up {args.accounts:,} accounts in {root} in {t_setup:.0f} s")
            return 0
        load = os.getloadavg()[0]
        cmd = [sys.executable, "-m", "bench.bench_diff_real", "--run-one", str(root)]
        res = json.loads(
            subprocess.run([*cmd, "--as-of", days[-1]], check=True, capture_output=True).stdout
        )
        print(
            f"{args.accounts:,} accounts, companies mapping, nightly {days[-1]} after "
            f"{days[-2]}: desired state CPU {res['desired_cpu_s']:.2f} s, diff (+ stream) CPU "
            f"{res['diff_cpu_s']:.2f} s, wall {res['wall_s']:.2f} s, peak RSS "
            f"{res['peak_rss_mb']} MB (load before {load:.1f}, setup {t_setup:.0f} s)\n"
            f"  desired {res['records_desired']:,}; written {res['records_changed']:,} records / "
            f"{res['fields_changed']:,} fields; within tolerance {res['fields_within_tolerance']:,}"
            f" fields, {res['records_within_tolerance']:,} records not written, "
            f"{res['write_calls_saved']:,} write calls saved",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
