"""Seeding a large portal and reading history from it.

    .venv/bin/python -m bench.bench_seed_portal --accounts 16667
    .venv/bin/python -m bench.bench_seed_portal --bulk-companies 1000000 --bulk-contacts 5000000

``accounts`` × 0.6 companies and about 1.8 × ``accounts`` contacts (the default spec's shares);
166,667 accounts ≈ the issue's 100k companies / 300k contacts. Prints seeding time, records,
peak RSS, the SQLite file size and the time of a 100-record propertiesWithHistory batch read.

``--bulk-companies N --bulk-contacts M``: the benchmark portal path instead — a real sandbox
process, the shipped mappings' properties made by ``spokesync hubspot ensure-properties``,
Parquet files of N companies and M contacts shaped like a first sync's records
(``bench_sandbox_memory``'s values), loaded by ``POST /__sandbox/bulk-load`` with each contact
linked to its company (unlabeled + Primary). Prints the load's time and records/s per object
and the sandbox process's resident and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bench.machine import describe, status_mb
from spokesync.sandbox.app import SandboxConfig, create_app
from spokesync.sandbox.seed import PortalSeed


def bulk(companies: int, contacts: int) -> None:
    """A first sync's portal of ``companies`` + ``contacts`` through the admin route."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench import bench_sandbox_memory as shapes
    from bench.bench_sync import cli
    from spokesync.sandbox.launcher import SandboxProcess

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**os.environ, "SPOKESYNC_HOME": str(home), "SPOKESYNC_ENV": "test"}
        env.pop("HUBSPOT_TOKEN", None)
        with SandboxProcess(home / "sandbox.sqlite", rate_limit=100_000) as sb:
            assert sb.process is not None
            env["HUBSPOT_BASE_URL"] = sb.base_url
            cli(env, "hubspot", "ensure-properties")
            # the generator's shapes, with the option values ensure-properties made
            local = create_app(SandboxConfig(db_path=home / "shapes.sqlite"))
            co_props = shapes.mapped_properties(local, "companies")
            ct_props = shapes.mapped_properties(local, "contacts")
            files = {"companies": home / "companies.parquet", "contacts": home / "contacts.parquet"}
            t0 = time.perf_counter()

            def company(i: int) -> dict:
                return shapes.company_props(co_props, i, 0)

            def contact(i: int) -> dict:
                return {
                    "email": f"user{i}@company{i % companies}.io",
                    **shapes.contact_props(ct_props, i, i % companies, 0),
                }

            for path, n, make in (
                (files["companies"], companies, company),
                (files["contacts"], contacts, contact),
            ):
                names = list(dict.fromkeys(k for i in range(min(n, 16)) for k in make(i)))
                schema = pa.schema([(name, pa.string()) for name in names])
                with pq.ParquetWriter(path, schema) as writer:
                    for start in range(0, n, 100_000):
                        rows = [make(i) for i in range(start, min(n, start + 100_000))]
                        writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            written = time.perf_counter() - t0
            before = status_mb(sb.process.pid, "VmRSS")
            co = sb.bulk_load("companies", files["companies"])
            ct = sb.bulk_load(
                "contacts",
                files["contacts"],
                associate={
                    "toObjectType": "companies",
                    "column": "spokesync_account_id",
                    "toProperty": "spokesync_account_id",
                    "labels": ["Primary"],
                },
            )
            rss, peak = status_mb(sb.process.pid, "VmRSS"), status_mb(sb.process.pid, "VmHWM")
            db_mb = sum(p.stat().st_size for p in home.glob("sandbox.sqlite*")) / 1e6
        print(describe())
        print(f"load average at end: {os.getloadavg()}")
        print(f"Parquet files written in {written:.1f} s (not part of the load)")
        for answer in (co, ct):
            n = answer["loaded"]
            print(
                f"bulk-load {answer['objectType']}: {n:,} records "
                f"({answer['associated']:,} associated) in {answer['seconds']:.1f} s = "
                f"{n / max(answer['seconds'], 0.1):,.0f} records/s; ids {answer['firstId']}–"
                f"{answer['lastId']}"
            )
        print(
            f"sandbox process RSS {before:,.0f} MB before, {rss:,.0f} MB after "
            f"(peak {peak:,.0f} MB); SQLite files {db_mb:,.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=16_667)
    parser.add_argument("--contacts", type=float, default=0.6)
    parser.add_argument("--bulk-companies", type=int, help="the bulk-load path (see above)")
    parser.add_argument("--bulk-contacts", type=int, default=0)
    args = parser.parse_args()
    if args.bulk_companies:
        bulk(args.bulk_companies, args.bulk_contacts)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sandbox.sqlite"
        app = create_app(SandboxConfig(db_path=db))
        started = time.perf_counter()
        manifest = app.seeder.seed(PortalSeed(accounts=args.accounts, contacts=args.contacts))
        seconds = time.perf_counter() - started
        companies, contacts = manifest["companies"]["total"], manifest["contacts"]["total"]
        ids = sorted(app.store.records["0-1"])[:: max(1, contacts // 100)][:100]
        body = {
            "inputs": [{"id": str(i)} for i in ids],
            "properties": ["email", "jobtitle"],
            "propertiesWithHistory": ["email", "jobtitle", "lifecyclestage"],
        }
        t0 = time.perf_counter()
        status, _ = app.objects.batch_read("contacts", body)
        read_ms = (time.perf_counter() - t0) * 1000
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        versions = app.store.history.count()
        print(describe())
        print(
            f"seeded {companies:,} companies + {contacts:,} contacts "
            f"({versions:,} history versions) in {seconds:.1f} s "
            f"= {(companies + contacts) / seconds:,.0f} records/s; peak RSS {rss_mb:,.0f} MB; "
            f"db {db.stat().st_size / 1e6:,.0f} MB; batch read of 100 with history "
            f"{read_ms:.1f} ms (status {status})"
        )


if __name__ == "__main__":
    main()
