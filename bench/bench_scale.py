"""End to end at scale: N companies and their contacts, a first sync and a day with 5% changed.

    .venv/bin/python -m bench.bench_scale --accounts 100000 --rate-limit 250
    .venv/bin/python -m bench.bench_scale --accounts 1000000 --plan-only

Everything is the real path, each step a CLI process: ``spokesync sample-data`` → ``spokesync
ingest`` → ``spokesync sync --mapping companies.yaml --mapping contacts.yaml`` (desired state and
the DuckDB diff against the state store, the rate-limited push, write-through by the writer
thread, contacts → companies associations) against a sandbox process on loopback that enforces
``--rate-limit`` requests per rolling 10 s. ``--users-per-account`` (default 5: the issue's 1M
companies + 5M contacts from 1M accounts) is the generator's mean; each account gets
1 … 2 × mean − 1 users.

1. **first sync**: every record is new;
2. **daily sync**: 5% of the accounts get another head count and 5% of the users another job
   title in the warehouse (a new load of the two master tables), then the same day syncs again:
   5% of each object changed, everything else in step.

For each sync: wall time against the rate-limit floor (write calls × 10 s / limit, and all
calls × 10 s / limit), write calls vs ⌈changed / 100⌉, 429s, peak RSS and CPU of the sync
process and the sandbox's CPU, and the stage breakdown the sync records per object (``stage_*``
in ``sync_runs``): setup, refresh, desired, diff, plan (other), push (until every result is
saved), associations, finish; plus the writer thread's busy time (state writes).

``--plan-only`` stops after ingest and a shadow sync (desired state and diff against an empty
store, nothing sent): the non-push stages at sizes whose push would take hours of rate limit.

Resuming (a 1M first sync is an hour of rate limit by itself): ``--keep DIR`` keeps the work
folder; ``--reuse`` takes the warehouse already there (fresh state store and sandbox);
``--resume`` takes the warehouse, the state store and the sandbox's data as the last run left
them and runs only the 5% day (again: each such day changes another 5%). ``--stages`` prints,
per sync, the issue's breakdown (ingest, desired, diff, push, associations, state writes, the
rest) next to the rate-limit floor; ``--json FILE`` appends every figure as one JSON line per
sync, so runs at 100k, 1M and 5M can be put side by side (``--growth FILE`` prints that).
``--first-only`` runs only the first sync and leaves the sandbox's SQLite data in ``--keep DIR``
for a later ``--resume`` day (a 1M first sync is ~42 min of rate limit, the day a separate
turn). Each sync also prints the sandbox's own peak RSS (VmHWM) and its CPU per call.

``--bulk-day``: the 5% day with real pushes at sizes whose first sync is too long to run: the
sandbox bulk-loaded with exactly the records and links the seeded state store says HubSpot
holds (same HubSpot ids, values, links; write times before the store's refresh cursor:
``bench/seeded_portal.py``), then 5% changed and the real ``spokesync sync`` against it.
``--check-seed`` first reads the sandbox's SQLite back and counts every value, id and link that
differs from the store (each should be 0; minutes at 1M).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.bench_sync import cli, process_cpu_s, run_ids
from bench.machine import describe, status_mb
from spokesync import warehouse
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR

MAPPINGS = [DEFAULT_MAPPINGS_DIR / "companies.yaml", DEFAULT_MAPPINGS_DIR / "contacts.yaml"]
STAGES = ("setup", "refresh", "desired", "diff", "plan_other", "push", "associations", "finish")
SHADOW_STAGES = ("setup", "desired", "diff", "plan_other", "planned_rows")


def change_five_percent(warehouse_dir: Path) -> dict[str, int]:
    """Every 20th account another head count, every 20th user another job title."""
    changed = {}
    for table, column, change in (
        ("accounts", "employee_count", lambda c: pc.add(pc.fill_null(c, 0), 1)),
        (
            "users",
            "job_title",
            lambda c: pc.binary_join_element_wise(pc.fill_null(c, ""), "II", " "),
        ),
    ):
        path = warehouse.master_path(warehouse_dir, table)
        data = pq.read_table(path)
        picked = pa.array([i % 20 == 0 for i in range(data.num_rows)])
        col = data.column(column).combine_chunks()
        data = data.set_column(
            data.schema.get_field_index(column),
            column,
            pc.if_else(picked, change(col).cast(col.type), col),
        )
        pq.write_table(data, path)
        changed[table] = math.ceil(data.num_rows / 20)
    return changed


def seed_snapshot(home: Path, state_db: Path, base_url: str, token: str) -> dict[str, int]:
    """The state store as a first sync that pushed every record would leave it: HubSpot's
    reference tables read from the sandbox (so the owners are those the sync will read), each
    mapping's canonical desired state written as the snapshot (made-up HubSpot ids) and the
    record fingerprints rebuilt. For sizes whose first sync is hours of rate limit: the day's
    plan then costs what it would after that first sync (the sandbox holds no records, so
    ``--seeded-day`` only plans: a shadow sync)."""
    import asyncio

    from spokesync.desired import DESIRED_TABLE, ID_COLUMN, build_desired
    from spokesync.hubspot.client import HubSpotClient
    from spokesync.hubspot.reference import refresh_reference
    from spokesync.mapping import load_mapping
    from spokesync.mapping.spec import quote_identifier
    from spokesync.state.store import StateStore

    async def reference() -> None:
        async with HubSpotClient(base_url, token) as client:
            await refresh_reference(client, home / "warehouse", "bench-seed")

    asyncio.run(reference())
    as_of = warehouse.newest_partition(home / "warehouse")
    assert as_of is not None
    state_db.parent.mkdir(parents=True, exist_ok=True)
    with StateStore(state_db) as store:
        store.ensure_schema()
    seeded = {}
    for path in MAPPINGS:
        mapping = load_mapping(path)
        con = warehouse.connect(home / "warehouse")
        try:
            # the seed is set-up, not measured: room to write tens of millions of rows
            con.execute("SET memory_limit = '6GB'")
            con.execute("SET preserve_insertion_order = false")
            build_desired(con, mapping, as_of)
            props = mapping.managed_properties
            cols = [ID_COLUMN, *(quote_identifier(p) for p in props[1:])]
            long = " UNION ALL ".join(
                f"SELECT {ID_COLUMN}, '{p}' AS property, {c} AS value FROM {DESIRED_TABLE}"
                for p, c in zip(props, cols, strict=True)
            )
            con.execute(f"ATTACH {warehouse.sql_literal(str(state_db))} AS st")
            con.execute(
                "INSERT INTO st.snapshot SELECT ?, external_id, 'H' || external_id, property, "
                "value, ?, 'pushed', now(), 'bench-seed' FROM (" + long + ") "
                "WHERE value IS NOT NULL",
                [mapping.object_type, as_of],
            )
            seeded[mapping.object_type] = int(
                con.execute(f"SELECT count(*) FROM {DESIRED_TABLE}").fetchall()[0][0]
            )
            con.execute("DETACH st")
        finally:
            con.close()
    with StateStore(state_db) as store:
        store.rebuild_record_fingerprints()
    return seeded


def bulk_portal(home: Path, state_db: Path, sandbox: SandboxProcess, check: bool) -> None:
    """``--bulk-day``'s set-up (not part of the day's figures), with its own timings."""
    from bench.seeded_portal import check_seed, seed_portal_and_store

    assert sandbox.process is not None
    t0 = time.perf_counter()
    seeded = seed_portal_and_store(home, state_db, sandbox, MAPPINGS)
    for ot, f in seeded.items():
        load = f["load"]
        print(
            f"seeded {ot}: {f['records']:,} records, {f['links']:,} links; desired "
            f"{f['desired_s']:.1f} s, Parquet {f['parquet_s']:.1f} s, bulk load "
            f"{load['seconds']:.1f} s ({f['records'] / max(load['seconds'], 0.1):,.0f}/s, ids "
            f"{load['firstId']}–{load['lastId']}), store {f['store_s']:.1f} s"
        )
    print(
        f"portal and store seeded in {time.perf_counter() - t0:.0f} s; sandbox RSS "
        f"{status_mb(sandbox.process.pid, 'VmRSS'):,.0f} MB (peak "
        f"{status_mb(sandbox.process.pid):,.0f} MB); load {os.getloadavg()[0]:.1f}"
    )
    if check:
        t0 = time.perf_counter()
        for ot, f in check_seed(home / "sandbox.sqlite", state_db, MAPPINGS).items():
            print(f"  check {ot}: " + ", ".join(f"{k} {v:,}" for k, v in f.items()))
        print(f"  checked in {time.perf_counter() - t0:.0f} s")


def run_figures(state_db: Path, run_id: str) -> list[dict[str, object]]:
    con = duckdb.connect(str(state_db), read_only=True)
    try:
        rows = con.execute(
            "SELECT object_type, counts FROM sync_runs WHERE run_id = ? ORDER BY started_at",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    return [{"object": ot, **json.loads(counts or "{}")} for ot, counts in rows]


def report(name: str, figures: list[dict], run, calls: int, sandbox_cpu: float, limit: int):
    stages = SHADOW_STAGES if name.startswith("shadow") else STAGES
    writes = sum(int(f.get("write_calls", 0)) for f in figures)
    print(
        f"\n{name}: wall {run.wall_s:.1f} s, peak RSS {run.peak_rss_mb:,.0f} MB, "
        f"sync CPU {run.cpu_s:.1f} s, sandbox CPU {sandbox_cpu:.1f} s"
    )
    print(
        "  object     desired   changed  write calls (⌈n/100⌉)  429s  "
        + "  ".join(f"{s:>8}" for s in stages)
        + "  state writes s (commits)"
    )
    for f in figures:
        changed = int(f.get("records_changed", 0))
        print(
            f"  {f['object']:<9} {int(f.get('records_desired', 0)):>8,} {changed:>9,}  "
            f"{int(f.get('write_calls', 0)):>6} ({math.ceil(changed / 100):>6})"
            f"        {int(f.get('rate_limited', 0)):>4}  "
            + "  ".join(f"{float(f.get(f'stage_{s}_s', 0.0)):8.1f}" for s in stages)
            + f"  {float(f.get('state_write_s', 0.0)):.1f} ({f.get('state_commits', 0)})"
        )
        peaks = [
            f"{s} {float(f[f'stage_{s}_peak_rss_mb']):,.0f}"
            + (f" ({float(f[f'stage_{s}_rss_mb']):,.0f})" if f"stage_{s}_rss_mb" in f else "")
            for s in dict.fromkeys(("refresh", *stages))
            if f"stage_{s}_peak_rss_mb" in f
        ]
        if peaks:
            print("    peak RSS MB at the end of each stage (resident then): " + ", ".join(peaks))
    if calls:
        floor_w, floor_all = writes * 10 / limit, calls * 10 / limit
        print(
            f"  calls: {writes:,} writes, {calls:,} in all; rate-limit floor {floor_w:.1f} s "
            f"(writes) / {floor_all:.1f} s (all calls); wall / floor = "
            f"{run.wall_s / floor_w if floor_w else float('nan'):.2f} (writes), "
            f"{run.wall_s / floor_all:.2f} (all)"
        )


def stage_breakdown(
    name: str,
    figures: list[dict],
    run,
    writes: int,
    limit: int,
    ingest_s: float | None,
    show: bool = True,
) -> dict[str, float]:
    """The issue's stages (seconds summed over the objects) and the rate-limit floor.

    push is until every result is saved; state writes is the writer thread's busy time, which
    runs during the push (so it is not added to the wall)."""
    total = {k: 0.0 for k in ("setup", "refresh", "desired", "diff", "plan_other", "push")}
    total |= {"associations": 0.0, "finish": 0.0, "state_writes": 0.0, "planned_rows": 0.0}
    for f in figures:
        for k in total:
            key = "state_write_s" if k == "state_writes" else f"stage_{k}_s"
            total[k] += float(f.get(key, 0.0))
    floor = writes * 10 / limit
    if not show:
        return {**total, "floor_s": floor, "write_calls": writes}
    print(f"  {name} — stages (s): " + (f"ingest {ingest_s:.1f} | " if ingest_s else "")
          + " | ".join(f"{k} {v:.1f}" for k, v in total.items()))  # fmt: skip
    if name.startswith("shadow"):
        planned = run.wall_s + floor
        print(
            f"  nothing sent: plan wall {run.wall_s:.1f} s + the push at the floor {floor:.1f} s "
            f"({writes:,} write calls × 10 s / {limit}) = {planned:.1f} s for the day unless "
            f"overlapped ({planned / floor if floor else float('nan'):.2f}× the floor); "
            f"peak RSS {run.peak_rss_mb:,.0f} MB (goal < 2,048)"
        )
        return {**total, "floor_s": floor, "write_calls": writes}
    print(
        f"  wall {run.wall_s:.1f} s vs rate-limit floor {floor:.1f} s ({writes:,} write calls "
        f"× 10 s / {limit}): {run.wall_s / floor if floor else float('nan'):.2f}×, "
        f"goal ≤ 1.10×; peak RSS {run.peak_rss_mb:,.0f} MB (goal < 2,048)"
    )
    return {**total, "floor_s": floor, "write_calls": writes}


def print_growth(path: Path) -> None:
    """Each stage per size from the JSON lines ``--json`` wrote, and its growth per record."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    keys = ("ingest", "desired", "diff", "push", "associations", "state_writes", "finish")
    print("sync | records | wall s | floor s | peak RSS MB | " + " | ".join(keys))
    for r in sorted(rows, key=lambda r: (r["sync"], r["records"])):
        print(
            f"{r['sync']} | {r['records']:,} | {r['wall_s']:.1f} | {r['floor_s']:.1f} | "
            f"{r['peak_rss_mb']:,.0f} | "
            + " | ".join(f"{r['stages'].get(k, 0.0):.1f}" for k in keys)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--users-per-account", type=int, default=5, help="mean (1 … 2m−1)")
    parser.add_argument("--rate-limit", type=int, default=250, help="requests per 10 s")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--plan-only", action="store_true", help="ingest + shadow plan only")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: use the warehouse already there (fresh state store and sandbox)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --keep: warehouse, state store and sandbox as left; run only the 5%% day",
    )
    parser.add_argument(
        "--seeded-day",
        action="store_true",
        help="seed the state store as a first sync would leave it, change 5%%, plan the day "
        "(shadow sync; for sizes whose first sync is hours of rate limit)",
    )
    parser.add_argument(
        "--first-only",
        action="store_true",
        help="only the first sync (keep the sandbox's data for a later --resume day)",
    )
    parser.add_argument(
        "--bulk-day",
        action="store_true",
        help="bulk-load the sandbox and seed the store as after a first sync, change 5%%, "
        "sync the day for real (see bench/seeded_portal.py)",
    )
    parser.add_argument(
        "--check-seed", action="store_true", help="with --bulk-day: compare sandbox and store"
    )
    parser.add_argument("--stages", action="store_true", help="print the stage breakdown")
    parser.add_argument("--json", type=Path, help="append each sync's figures to this file")
    parser.add_argument("--growth", type=Path, help="print the figures --json collected; exit")
    args = parser.parse_args()
    if args.growth:
        print_growth(args.growth)
        return
    if (args.reuse or args.resume) and not args.keep:
        parser.error("--reuse and --resume need --keep DIR")

    with tempfile.TemporaryDirectory() as tmp:
        home = args.keep or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SPOKESYNC_HOME": str(home), "SPOKESYNC_ENV": "test"}
        env.pop("HUBSPOT_TOKEN", None)
        print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f} at start")
        started = time.perf_counter()
        ingest_s: float | None = None
        if args.resume:
            print(f"resuming in {home}: warehouse, state store and sandbox as the last run left")
        elif args.reuse:
            shutil.rmtree(home / "state", ignore_errors=True)
            for old in home.glob("sandbox.sqlite*"):
                old.unlink()
            print(f"reusing the warehouse in {home} (ingest not measured again)")
        else:
            gen = cli(env, "sample-data", "--out", str(home / "landing"), "--days", "1",
                      "--accounts", str(args.accounts), "--seed", "7",
                      "--users-per-account", str(args.users_per_account))  # fmt: skip
            ingest = cli(env, "ingest", "--all", "--landing", str(home / "landing"))
            ingest_s = ingest.wall_s
            print(
                f"sample data {gen.wall_s:.1f} s; ingest {ingest.wall_s:.1f} s wall, "
                f"{ingest.cpu_s:.1f} s CPU, peak RSS {ingest.peak_rss_mb:,.0f} MB "
                f"(load {os.getloadavg()[0]:.1f})"
            )
        rows = {
            t: pq.read_metadata(warehouse.master_path(home / "warehouse", t)).num_rows
            for t in ("accounts", "users")
        }
        print(f"{rows['accounts']:,} accounts, {rows['users']:,} users")
        mapping_args = [a for m in MAPPINGS for a in ("--mapping", str(m))]
        extra = ["--daily-limit", "100000000"]
        with SandboxProcess(home / "sandbox.sqlite", rate_limit=args.rate_limit,
                            extra_args=extra) as sandbox:  # fmt: skip
            assert sandbox.process is not None
            env["HUBSPOT_BASE_URL"] = sandbox.base_url
            cli(env, "hubspot", "ensure-properties")
            state_db = home / "state" / "test.duckdb"
            if args.bulk_day:
                bulk_portal(home, state_db, sandbox, args.check_seed)
                syncs = [("daily sync (5% changed, bulk-seeded portal)", [])]
            elif args.seeded_day:
                seeded = seed_snapshot(home, state_db, sandbox.base_url, sandbox.token)
                print(f"seeded the state store as after a first sync: {seeded}")
                syncs = [("shadow day (5% changed, seeded)", ["--shadow"])]
            elif args.plan_only:
                syncs = [("shadow plan", ["--shadow"])]
            elif args.resume:
                syncs = [("daily sync (5% changed)", [])]
            else:
                syncs = [("first sync", []), ("daily sync (5% changed)", [])]
                if args.first_only:
                    syncs = syncs[:1]
            for name, flags in syncs:
                if name.startswith(("daily", "shadow day")):
                    changed = change_five_percent(home / "warehouse")
                    print(f"\nchanged in the warehouse: {changed}")
                before = sandbox.stats()["requests_total"]
                cpu0 = process_cpu_s(sandbox.process.pid)
                load = os.getloadavg()[0]
                # exit 9 (dropped): the sample's planted bad rows stay quarantined
                run = cli(env, "sync", "--no-ingest", *mapping_args, *flags,
                          "--rate-limit", str(args.rate_limit),
                          "--concurrency", str(args.concurrency), ok=(0, 9))  # fmt: skip
                sandbox_cpu = process_cpu_s(sandbox.process.pid) - cpu0
                calls = sandbox.stats()["requests_total"] - before
                figures = run_figures(state_db, run_ids(state_db)[-1])
                load_end = os.getloadavg()[0]
                sandbox_hwm = status_mb(sandbox.process.pid)
                report(f"{name} (load {load:.1f} → {load_end:.1f})", figures, run,
                       calls, sandbox_cpu, args.rate_limit)  # fmt: skip
                print(
                    f"  sandbox: peak RSS (VmHWM) {sandbox_hwm:,.0f} MB, CPU per call "
                    f"{1000 * sandbox_cpu / calls if calls else float('nan'):.2f} ms"
                )
                writes = sum(int(f.get("write_calls", 0)) for f in figures)
                if name.startswith("shadow"):  # nothing sent: the calls the push would make
                    writes = sum(math.ceil(int(f.get("records_changed", 0)) / 100)
                                 for f in figures)  # fmt: skip
                first = name == "first sync" or name.startswith("shadow plan")
                breakdown = stage_breakdown(name, figures, run, writes, args.rate_limit,
                                            ingest_s if first else None, args.stages)  # fmt: skip
                if args.json:
                    line = {
                        "sync": name.split(" (")[0], "accounts": rows["accounts"],
                        "users": rows["users"], "records": sum(rows.values()),
                        "wall_s": run.wall_s, "peak_rss_mb": run.peak_rss_mb,
                        "cpu_s": run.cpu_s, "sandbox_cpu_s": sandbox_cpu, "calls": calls,
                        "sandbox_peak_rss_mb": sandbox_hwm,
                        "floor_s": breakdown.pop("floor_s"), "load": [load, load_end],
                        "stages": {**breakdown, **({"ingest": ingest_s} if first and ingest_s
                                                   else {})},
                        "objects": figures,
                    }  # fmt: skip
                    with args.json.open("a") as out:
                        out.write(json.dumps(line) + "\n")
                print("  " + run.stdout.strip().replace("\n", "\n  "))
        print(f"\nwhole bench {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
