"""The store writer alone: CPU per confirmed batch of a push, at HubSpot's pace.

    .venv/bin/python -m bench.bench_writer --batches 200 --rate-limit 190

Feeds ``--batches`` confirmed batches of 100 companies (every managed property of the shipped
companies mapping but the enumerations, canonical as the plan sends them) and their sync-log
rows to ``store.writer()`` at ``--rate-limit`` calls per 10 s, twice: as creates (an empty
snapshot) and as updates of the same records. Prints the process's CPU per batch (the writer
thread and DuckDB; the feeding thread only sleeps), the commits and the writer's busy time.
``--not-canonical`` flags the writes as not the plan's, so the canonical rules run on them
(what every write cost before the plan's values were saved as sent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import psutil

from bench.machine import describe
from spokesync.changes import BatchLog, ConfirmedWrite
from spokesync.mapping.loader import load_mapping
from spokesync.state.store import StateStore

MAPPING = Path(__file__).resolve().parents[1] / "mappings" / "companies.yaml"
VALUES = {"number": "42", "date": "2026-11-30", "datetime": "2026-11-30T10:00:00.000Z"}


def batches(
    n: int, types: dict[str, str], id_property: str, version: int, canonical: bool
) -> list[list]:
    names = [p for p, form in types.items() if p != id_property and form != "enumeration"]
    out = []
    for b in range(n):
        writes = []
        for i in range(100):
            k = b * 100 + i
            props = {id_property: f"ACC-{k:07d}"}
            for j, name in enumerate(names):
                form = types[name]
                props[name] = {"bool": "true", "domain": f"acme{k}.com"}.get(
                    form, VALUES.get(form, f"value {version}-{k}-{j}")
                )
            writes.append(
                ConfirmedWrite("companies", f"ACC-{k:07d}", str(10_000_000 + k), props,
                               dt.date(2026, 11, 30), version == 0, f"corr-{b}", canonical=canonical)
            )  # fmt: skip
        out.append(writes)
    return out


def feed(store: StateStore, work: list[list], pace_s: float) -> tuple[float, float, object]:
    me = psutil.Process()
    before, started = me.cpu_times(), time.perf_counter()
    with store.writer() as sink:
        for seq, writes in enumerate(work, 1):
            sink.record_confirmed(writes, "bench")
            sink.record_batch(BatchLog("bench", seq, f"bench-{seq}", "companies",
                                       "/crm/objects/2026-03/companies/batch/upsert", 200,
                                       f"corr-{seq}", 120.0, 100, 100, 0))  # fmt: skip
            time.sleep(pace_s)
        sink.flush()
        stats = sink.stats
    after = me.cpu_times()
    cpu = (after.user + after.system) - (before.user + before.system)
    return cpu, time.perf_counter() - started, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rate-limit", type=int, default=190, help="calls per 10 s")
    parser.add_argument(
        "--not-canonical",
        action="store_true",
        help="flag the writes as not the plan's (the store then runs the canonical rules)",
    )
    args = parser.parse_args()
    mapping = load_mapping(MAPPING)
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        StateStore(Path(tmp) / "s.duckdb", [mapping]) as store,
    ):
        types = dict(store.types["companies"])
        for version, label in ((0, "creates"), (1, "updates")):
            work = batches(
                args.batches, types, mapping.id.property, version, not args.not_canonical
            )
            cpu, wall, stats = feed(store, work, 10 / args.rate_limit)
            print(
                f"{label}: {args.batches} batches of 100 × {len(work[0][0].properties)} values: "
                f"CPU {cpu / args.batches * 1000:.1f} ms per batch, {stats.commits} commits, "
                f"writer busy {stats.busy_s:.1f} s of {wall:.1f} s"
            )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
