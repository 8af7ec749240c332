"""Per-record baseline vs the real spokesync path, side by side on the same warehouse.

    .venv/bin/python -m bench.bench_baseline --accounts 2000 --rate-limit 190

Both sides write the companies of a sample warehouse (``--accounts`` of them) to their own
fresh sandbox process, three times: the first run (everything new), an unchanged rerun, and a
run after 5% of the accounts changed their employee count in the warehouse.

- **spokesync** is the real path a user runs: ``spokesync sync --mapping mappings/companies.yaml``
  in its own process — desired state and the field-level diff in DuckDB against the state store,
  deduplicated ``batch/upsert`` 100 records a call, write-through to the store. Its wall time
  includes process start, reading HubSpot's pipelines/owners and checking properties.
- **baseline** is what simple integrations do: one ``PATCH /objects/companies/{key}?idProperty=…``
  per record with every mapped field (a ``POST`` create when the PATCH says 404), every run,
  with the same rate limiter, retries and 4 requests in flight. It is given the desired records
  (computed by the engine against an empty store), so its time is only its HTTP calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from bench.bench_sync import cli
from bench.machine import describe
from spokesync import warehouse
from spokesync.changes import RecordChange
from spokesync.diff import plan_changes
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.properties import ensure_properties, specs_from_mapping
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.mapping.loader import load_mappings
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR, latest_partition

ID_PROPERTY = "spokesync_account_id"
MAPPING = DEFAULT_MAPPINGS_DIR / "companies.yaml"
RUNS = ("first", "rerun", "5% changed")


async def baseline_run(client: HubSpotClient, changes: list[RecordChange], run: str) -> int:
    """One PATCH per record (POST when it does not exist yet); returns the calls made."""
    semaphore = asyncio.Semaphore(4)
    before = client.stats.calls

    async def one(n: int, change: RecordChange) -> None:
        async with semaphore:
            path = client.objects_path("companies", f"/{change.external_id}")
            response = await client.request(
                "PATCH",
                path,
                params={"idProperty": ID_PROPERTY},
                json={"properties": change.properties},
                request_id=f"{run}-{n}",
                write=True,
            )
            if response.status_code == 404:
                response = await client.request(
                    "POST",
                    client.objects_path("companies"),
                    json={"properties": {**change.properties, ID_PROPERTY: change.external_id}},
                    request_id=f"{run}-{n}-create",
                    write=True,
                )
            if not response.ok:
                raise RuntimeError(f"baseline write failed: {response.error().short()}")

    await asyncio.gather(*(one(n, c) for n, c in enumerate(changes)))
    return client.stats.calls - before


def desired_records(home: Path) -> list[RecordChange]:
    """Every company as the mapping wants it (the engine's plan against an empty store)."""
    (mapping,) = load_mappings([MAPPING])
    as_of = latest_partition(home / "warehouse")
    empty = home / "baseline-empty.duckdb"
    empty.unlink(missing_ok=True)
    with plan_changes(empty, home / "warehouse", mapping, as_of) as plan:
        out = [
            RecordChange(c.object_type, c.external_id, None, props, c.as_of)
            for batch in plan.batches(1000)
            for c in batch
            if (props := {k: v for k, v in c.properties.items() if v != ""})
        ]
    empty.unlink(missing_ok=True)
    return out


def change_five_percent(home: Path) -> int:
    """A new load of the accounts master where every 20th account has another head count."""
    path = warehouse.master_path(home / "warehouse", "accounts")
    frame = pq.read_table(path).to_pandas()
    rows = frame.index[::20]
    frame.loc[rows, "employee_count"] = frame.loc[rows, "employee_count"].fillna(0) + 1
    frame.to_parquet(path, index=False)
    return len(rows)


def spokesync_side(home: Path, rate_limit: int) -> list[tuple[str, int, int, float]]:
    """(run, write calls, all calls, wall s) for the three runs of ``spokesync sync``."""
    env = {**os.environ, "SPOKESYNC_HOME": str(home), "SPOKESYNC_ENV": "test"}
    env.pop("HUBSPOT_TOKEN", None)
    out = []
    with SandboxProcess(home / "spokesync.sqlite", rate_limit=rate_limit) as sandbox:
        env["HUBSPOT_BASE_URL"] = sandbox.base_url
        for run in RUNS:
            if run == "5% changed":
                change_five_percent(home)
            before = sandbox.stats()
            # exit 9 (dropped): the sample's planted bad rows stay quarantined
            sync = cli(env, "sync", "--no-ingest", "--mapping", str(MAPPING),
                       "--rate-limit", str(rate_limit), ok=(0, 9))  # fmt: skip
            after = sandbox.stats()
            writes = sum(
                1 for r in sandbox.requests(method="POST") if r["path"].endswith("/batch/upsert")
            )
            sandbox.clear_requests()
            calls = after["requests_total"] - before["requests_total"]
            out.append((run, writes, calls, sync.wall_s))
    return out


def baseline_side(home: Path, rate_limit: int) -> list[tuple[str, int, int, float]]:
    (mapping,) = load_mappings([MAPPING])

    async def go(sandbox: SandboxProcess) -> list[tuple[str, int, int, float]]:
        out = []
        async with HubSpotClient(
            sandbox.base_url, sandbox.token, limiter=RateLimiter(rate_limit)
        ) as client:
            await ensure_properties(client, specs_from_mapping(mapping), "companies")
            for run in RUNS:
                if run == "5% changed":
                    change_five_percent(home)
                data = desired_records(home)
                started = time.perf_counter()
                calls = await baseline_run(client, data, run.replace(" ", "-"))
                out.append((run, calls, calls, time.perf_counter() - started))
        return out

    with SandboxProcess(home / "baseline.sqlite", rate_limit=rate_limit) as sandbox:
        return asyncio.run(go(sandbox))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--rate-limit", type=int, default=190, help="requests per 10 s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**os.environ, "SPOKESYNC_HOME": str(home), "SPOKESYNC_ENV": "test"}
        cli(env, "sample-data", "--out", str(home / "landing"), "--days", "2",
            "--accounts", str(args.accounts), "--seed", "7")  # fmt: skip
        cli(env, "ingest", "--all", "--landing", str(home / "landing"))
        accounts = warehouse.master_path(home / "warehouse", "accounts")
        original = accounts.read_bytes()
        ours = spokesync_side(home, args.rate_limit)
        accounts.write_bytes(original)  # the baseline starts from the same warehouse
        theirs = baseline_side(home, args.rate_limit)
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{args.accounts:,} companies (mappings/companies.yaml), sandbox limit "
          f"{args.rate_limit}/10 s")  # fmt: skip
    print(f"{'':10s} {'run':11s} {'write calls':>11s} {'all calls':>9s} {'wall s':>8s}")
    for side, rows in (("baseline", theirs), ("spokesync", ours)):
        for run, writes, calls, wall in rows:
            print(f"{side:10s} {run:11s} {writes:11d} {calls:9d} {wall:8.2f}")


if __name__ == "__main__":
    main()
