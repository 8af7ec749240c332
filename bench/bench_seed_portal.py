"""Seeding a large portal and reading history from it.

    .venv/bin/python -m bench.bench_seed_portal --accounts 16667

``accounts`` × 0.6 companies and about 1.8 × ``accounts`` contacts (the default spec's shares);
166,667 accounts ≈ the issue's 100k companies / 300k contacts. Prints seeding time, records,
peak RSS, the SQLite file size and the time of a 100-record propertiesWithHistory batch read.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bench.machine import describe
from spokesync.sandbox.app import SandboxConfig, create_app
from spokesync.sandbox.seed import PortalSeed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=16_667)
    parser.add_argument("--contacts", type=float, default=0.6)
    args = parser.parse_args()
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
