"""Adoption against the real sandbox: the first sync into a seeded portal, then a full refresh
(the weekly reconciliation) and the incremental refresh when 1% of records were edited by people.

The sample warehouse (``--accounts`` accounts, one day) and the sandbox's seeded portal share
seed, accounts and first day, so the portal holds the records people made before spokesync
(``accounts`` × 0.6 companies, ≈ 1.8 × ``accounts`` contacts, default spec: duplicates by
domain, merges, additional emails, people's edits). The repository's own companies and contacts
mappings run through ``sync_object`` (full refresh → plan with adoption in DuckDB → push), over
HTTP to the sandbox subprocess. Calls are counted by the sandbox per route (exact).

    .venv/bin/python -m bench.bench_adoption_sandbox --accounts 16667    # ≈ 10k / 30k
    # the issue's size (≈ 100k companies / 300k contacts in the portal), one step per run:
    .venv/bin/python -m bench.bench_adoption_sandbox --accounts 166667 --portal-contacts 0.6
        --workdir /tmp/adoption --steps prepare      # then companies, contacts, next-night

``--rate-limit`` is the sandbox's and the client's budget per 10 s (default: high, so the
wall time is spokesync's and the sandbox's work; at HubSpot's 190 per 10 s the calls alone set
a floor, printed). The search API keeps HubSpot's 5 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.machine import describe
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.ingest.engine import ingest_master, ingest_partition, landed_partitions
from spokesync.mapping import load_mapping
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.sandbox import launcher
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.refresh import full_refresh, incremental_refresh
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR, SyncOptions, make_client, sync_object

START = dt.date(2026, 1, 1)
# prepare: warehouse + seeded portal; companies / contacts: the first sync of each; next-night:
# people edit 1% and the incremental refresh runs (our first sync's writes are in its window);
# weekly: the full refresh.
STEPS = ("prepare", "companies", "contacts", "next-night", "weekly")


def rss_mb(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return 0


def routes(sandbox: SandboxProcess) -> Counter[str]:
    out: Counter[str] = Counter()
    for route, by_status in sandbox.stats()["requests"].items():
        out[route] = sum(by_status.values())
    return out


def delta(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    return {k: v - before[k] for k, v in sorted(after.items()) if v != before[k]}


def short(calls: dict[str, int]) -> str:
    return ", ".join(f"{k.split('{object_type}')[-1] or k} {v:,}" for k, v in calls.items())


def pick(calls: dict[str, int], suffix: str) -> int:
    return sum(v for k, v in calls.items() if k.endswith(suffix))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=16_667)
    ap.add_argument("--rate-limit", type=int, default=100_000, help="requests per 10 s")
    ap.add_argument("--edited", type=float, default=0.01, help="share edited by people")
    ap.add_argument(
        "--portal-contacts",
        type=float,
        default=0.5,
        help="share of the warehouse's users already in HubSpot (0.6 at 166,667 accounts: 300k)",
    )
    ap.add_argument(
        "--objects", default="companies,contacts", help="which objects the steps run for"
    )
    ap.add_argument(
        "--readback-limit",
        type=int,
        default=None,
        help="read our own writes back whole up to this many (default: the engine's 10,000)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        help="keep the warehouse, sandbox file and state here, so --steps can run one by one",
    )
    ap.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated, in order: {', '.join(STEPS)} (each its own process is fine)",
    )
    args = ap.parse_args()
    args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(args.steps) - set(STEPS))
    if unknown:
        ap.error(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args.workdir, args)
    with tempfile.TemporaryDirectory(prefix="bench_adoption_sandbox_") as tmp:
        return run(Path(tmp), args)


def run(tmp: Path, args: argparse.Namespace) -> int:
    print(f"{describe()} load={' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    home = tmp / "home"
    manifest_path = tmp / "portal.json"
    if "prepare" in args.steps:
        t0 = time.perf_counter()
        generate(
            GeneratorConfig(accounts=args.accounts, days=1, seed=7, start=START), home / "landing"
        )
        for source in MASTER_SOURCES:
            ingest_master(source, home / "landing", home / "warehouse", "bench")
        for source in PARTITIONED_SOURCES:
            for day in landed_partitions(source, home / "landing"):
                ingest_partition(source, day, home / "landing", home / "warehouse", "bench")
        print(
            f"warehouse: {args.accounts:,} accounts in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    started = time.perf_counter()
    launcher.START_TIMEOUT_S = 1800  # a restart loads a 400k-record portal from its file
    with SandboxProcess(tmp / "sandbox.sqlite", rate_limit=args.rate_limit) as sandbox:
        sandbox._admin.timeout = httpx.Timeout(1800)  # exports of 500k records
        print(f"sandbox up in {time.perf_counter() - started:.1f} s", flush=True)
        if "prepare" in args.steps:
            t0 = time.perf_counter()
            spec = {
                "seed": 7,
                "accounts": args.accounts,
                "start": START.isoformat(),
                "contacts": args.portal_contacts,
            }
            response = httpx.post(
                f"{sandbox.base_url}/__sandbox/seed-portal", json=spec, timeout=None
            )
            response.raise_for_status()
            manifest = response.json()
            existing = {o: manifest[o]["total"] for o in ("companies", "contacts")}
            manifest_path.write_text(json.dumps(existing))
            print(
                f"seeded portal: {existing['companies']:,} companies, "
                f"{existing['contacts']:,} contacts in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
        existing = json.loads(manifest_path.read_text())
        settings = Settings.from_env(
            environ={}, home=home, env="test", hubspot_base_url=sandbox.base_url
        )
        asyncio.run(_sync(settings, sandbox, args, existing))
        print(f"sandbox peak RSS {rss_mb(sandbox.process.pid)} MB", flush=True)  # type: ignore[union-attr]
    print(f"load={' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    return 0


async def _sync(
    settings: Settings, sandbox: SandboxProcess, args: argparse.Namespace, existing: dict[str, int]
) -> None:
    options = SyncOptions(rate_limit_per_10s=args.rate_limit, quarantine_error_rate=1.0)
    client = make_client(settings, options)
    wanted = [n.strip() for n in args.objects.split(",") if n.strip()]
    mappings = {
        n: load_mapping(DEFAULT_MAPPINGS_DIR / f"{n}.yaml")
        for n in ("companies", "contacts")
        if n in wanted
    }
    try:
        for name, mapping in mappings.items():
            if name not in args.steps:
                continue
            before = routes(sandbox)
            t0 = time.perf_counter()
            s = await sync_object(settings, mapping, START, f"bench-{name}", options, client)
            wall = time.perf_counter() - t0
            calls = delta(routes(sandbox), before)
            assert s.error is None, s.error
            reads = sum(v for k, v in calls.items() if k.startswith("GET ") and "objects" in k)
            writes_u = pick(calls, "/batch/update")
            writes_p = pick(calls, "/batch/upsert")
            adopted, created = s.records_adopted, s.records_new
            # contacts keyed by email: one matched by its primary email is adopted by the
            # upsert itself (counted with the upserts, not as adopted)
            upserted = s.push.records_sent - adopted if s.push else 0
            total = sum(calls.values())
            print(
                f"first sync {name}: portal {existing[name]:,}, desired {s.records_desired:,}: "
                f"adopted {adopted:,}, created {created:,}, ambiguous {s.records_ambiguous:,}, "
                f"duplicated in HubSpot {s.records_duplicated:,}; read calls {reads:,} (goal "
                f"⌈{existing[name]:,}/100⌉ = {math.ceil(existing[name] / 100):,}); write calls "
                f"batch/update {writes_u:,} + batch/upsert {writes_p:,} (goal "
                f"⌈{adopted:,}/100⌉ + ⌈{upserted:,}/100⌉ = "
                f"{math.ceil(adopted / 100) + math.ceil(upserted / 100):,}); all calls {total:,} "
                f"({short(calls)}); wall {wall:.1f} s (at 190/10 s ≥ {total / 19:.0f} s); "
                f"spokesync peak RSS {rss_mb()} MB; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        if "next-night" in args.steps:
            await asyncio.sleep(1.0)
            for name, mapping in mappings.items():
                prop = "name" if name == "companies" else "jobtitle"  # warehouse-owned: drift
                ids = [r["id"] for r in sandbox.export(name)][:: int(1 / args.edited)]
                t0 = time.perf_counter()
                edits = [(name, hid, {prop: "Edited by a person"}) for hid in ids]
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(lambda e: sandbox.edit_as_person(*e), edits))
                edit_s = time.perf_counter() - t0
                before = routes(sandbox)
                t0 = time.perf_counter()
                # The first incremental refresh after the first sync: every record that sync
                # wrote is in its window (default 5-minute overlap), counted, not read back.
                report = await incremental_refresh(
                    settings,
                    mapping,
                    client,
                    f"bench-inc-{name}",
                    readback_limit=args.readback_limit,
                )
                wall = time.perf_counter() - t0
                calls = delta(routes(sandbox), before)
                searches = pick(calls, "/search")
                print(
                    f"next night's incremental refresh {name}, {args.edited:.0%} edited by "
                    f"people ({len(ids):,}, edits took {edit_s:.0f} s): read "
                    f"{report.drift.records_read:,} records, search calls {searches:,} "
                    f"({report.count_checks:,} counts, {report.restarts} restarts; our "
                    f"{report.known:,} writes in the window, {report.known_verified:,} "
                    f"confirmed by count and not read; counted span "
                    f"{report.own_window_s:.0f} s; at 5/s ≥ {searches / 5:.1f} s), drifted "
                    f"values {report.drift.values_drifted:,} on "
                    f"{report.drift.records_drifted:,} records; wall {wall:.1f} s; spokesync "
                    f"peak RSS {rss_mb()} MB; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        if "weekly" in args.steps:
            for name, mapping in mappings.items():
                before = routes(sandbox)
                t0 = time.perf_counter()
                report = await full_refresh(settings, mapping, client, f"bench-full-{name}")
                calls = delta(routes(sandbox), before)
                print(
                    f"full refresh {name} (weekly): read {report.drift.records_read:,} records, "
                    f"calls {sum(calls.values()):,} ({short(calls)}), drifted values "
                    f"{report.drift.values_drifted:,}; wall {time.perf_counter() - t0:.1f} s; "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        await client.aclose()


if __name__ == "__main__":
    raise SystemExit(main())
