"""What a nightly sync writes, with the shipped mappings' change thresholds and without them.

    .venv/bin/python -m bench.bench_nightly                      # the demo's sample (2,000 accounts)
    .venv/bin/python -m bench.bench_nightly --accounts 500 --days 10

The demo's sample warehouse (``make demo``: 2,000 accounts, 30 days, seed 7) is generated and
ingested once. Then, for each variant — the shipped mappings as they are, and the same files
with every ``tolerance`` / ``resolution`` / ``buckets`` removed (exact comparison) — a fresh
state store and a fresh sandbox process on loopback: a real sync of the day before the last
``--nights`` days (every record new), then one nightly sync per day. Printed per night and
object: records written, write calls (counted by the client), fields held back within
tolerance, records not written and write calls saved (the plan's ⌈records/100⌉ arithmetic);
then the totals and which properties the exact variant rewrote on the last night. Takes
10–50 minutes depending on the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from bench.machine import describe
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.ingest.engine import ingest_master, ingest_partition, landed_partitions
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.runner import SyncOptions, SyncSummary, run_sync

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"
THRESHOLD_KEYS = ("tolerance", "resolution", "buckets")


def build(home: Path, accounts: int, days: int, seed: int) -> list[str]:
    landing = home / "landing"
    generate(GeneratorConfig(accounts=accounts, days=days, seed=seed), landing)
    wh = home / "warehouse"
    for source in MASTER_SOURCES:
        ingest_master(source, landing, wh, "bench")
    out: set[str] = set()
    for source in PARTITIONED_SOURCES:
        for day in landed_partitions(source, landing):
            ingest_partition(source, day, landing, wh, "bench")
            out.add(day)
    return sorted(out)


def copy_mappings(target: Path, exact: bool) -> list[Path]:
    """The shipped mapping files, or copies with every change threshold removed."""
    target.mkdir(parents=True)
    paths = []
    for src in sorted(MAPPINGS.glob("*.yaml")):
        dst = target / src.name
        if exact:
            data = yaml.safe_load(src.read_text())
            for f in data.get("fields", []):
                for key in THRESHOLD_KEYS:
                    f.pop(key, None)
            dst.write_text(yaml.safe_dump(data, sort_keys=False))
        else:
            shutil.copy(src, dst)
        paths.append(dst)
    return paths


def run_variant(
    template: Path, root: Path, days: list[str], nights: int, exact: bool
) -> list[SyncSummary]:
    """A first sync of the day before the last ``nights`` days, then one sync per night."""
    home = root / "home"
    shutil.copytree(template, home)
    paths = copy_mappings(root / "mappings", exact)
    out = []
    with SandboxProcess(root / "sandbox.sqlite", rate_limit=100_000) as sb:
        settings = Settings.from_env(environ={}, home=home, env="dev", hubspot_base_url=sb.base_url)
        opts = {"mapping_paths": paths, "task_trigger_paths": [], "rate_limit_per_10s": 100_000}
        for day in days[-nights - 1 :]:
            out.append(run_sync(settings, SyncOptions(as_of=dt.date.fromisoformat(day), **opts)))
    return out[1:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--nights", type=int, default=7, help="nightly syncs measured (a week)")
    args = ap.parse_args()
    print(f"{describe()} load={os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench_nightly_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        days = build(root / "template", args.accounts, args.days, args.seed)
        print(
            f"sample: {args.accounts:,} accounts, {len(days)} days "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        results = {}
        for exact in (True, False):
            name = "exact" if exact else "thresholds"
            t0 = time.perf_counter()
            results[name] = run_variant(root / "template", root / name, days, args.nights, exact)
            print(f"{name}: {time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}")
        print(f"{args.nights} nightly syncs, {days[-args.nights]} … {days[-1]}:")
        print(
            f"  {'night':<10} {'object':<10} {'variant':<11} {'written':>8} {'calls':>6} "
            f"{'held':>7} {'not written':>11} {'calls saved':>11}"
        )
        totals = {k: 0 for k in results}
        for i in range(args.nights):
            for name, summaries in results.items():
                s = summaries[i]
                for o in s.objects:
                    calls = o.push.write_calls if o.push is not None else 0
                    totals[name] += calls
                    print(
                        f"  {s.as_of.isoformat():<10} {o.object_type:<10} {name:<11} "
                        f"{o.records_changed:>8,} {calls:>6,} {o.fields_within_tolerance:>7,} "
                        f"{o.records_within_tolerance:>11,} {o.write_calls_saved:>11,}"
                    )
        print(
            f"  write calls over {args.nights} nights: exact {totals['exact']:,}, "
            f"with thresholds {totals['thresholds']:,} "
            f"({totals['exact'] / args.nights:.1f} vs {totals['thresholds'] / args.nights:.1f} "
            "per night)"
        )
        for o in results["exact"][-1].objects:
            top = sorted(o.fields_by_property.items(), key=lambda kv: -kv[1])[:6]
            print(f"  exact {o.object_type} rewrote: " + ", ".join(f"{p} {n:,}" for p, n in top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
