"""Per-record baseline vs spokesync, side by side on the same data against the sandbox.

    .venv/bin/python -m bench.bench_baseline --records 500 --rate-limit 190

Baseline = what simple integrations do: one ``PATCH /objects/companies/{key}?idProperty=…``
per record with every mapped field, and a ``POST`` create when the PATCH says 404. It gets the
same rate limiter, retries and concurrency as spokesync, so the comparison is about calls.
spokesync = deduplicated ``batch/upsert`` of the changed records, 100 per call.

Each side runs twice on a fresh sandbox: the first run (everything new) and an unchanged
rerun. For spokesync's rerun the field-level diff is done in memory against what the first
run confirmed (the same comparison the DuckDB diff makes): nothing differs, nothing is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.bench_push import SPECS, TimedSink, records
from bench.machine import describe
from spokesync.changes import RecordChange
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.properties import ensure_properties
from spokesync.hubspot.push import PushConfig, push_changes
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.sandbox.launcher import SandboxProcess

ID_PROPERTY = "spokesync_account_id"


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


def changed(changes: list[RecordChange], snapshot: dict[str, dict[str, str]]) -> list[RecordChange]:
    """The in-memory field-level diff: per record only the properties that differ."""
    out = []
    for c in changes:
        held = snapshot.get(c.external_id, {})
        diff = {k: v for k, v in c.properties.items() if held.get(k) != v}
        if diff:
            out.append(RecordChange(c.object_type, c.external_id, None, diff, c.as_of))
    return out


async def spokesync_run(
    client: HubSpotClient, changes: list[RecordChange], sink: TimedSink, run: str
) -> int:
    todo = changed(changes, sink.confirmed)
    report = await push_changes(
        client,
        object_type="companies",
        id_property=ID_PROPERTY,
        changes=[todo],
        sink=sink,
        run_id=run,
        config=PushConfig(concurrency=4),
    )
    return report.calls


async def both_runs(sandbox: SandboxProcess, rate_limit: int, data: list[RecordChange], side: str):
    timings = []
    sink = TimedSink()
    async with HubSpotClient(
        sandbox.base_url, sandbox.token, limiter=RateLimiter(rate_limit)
    ) as client:
        await ensure_properties(client, SPECS, "companies")
        for run in ("first", "rerun"):
            started = time.perf_counter()
            if side == "baseline":
                calls = await baseline_run(client, data, run)
            else:
                calls = await spokesync_run(client, data, sink, run)
            timings.append((run, calls, time.perf_counter() - started))
    exported = sandbox.export("companies")
    assert len(exported) == len(data), f"{side}: {len(exported)} records for {len(data)} rows"
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--rate-limit", type=int, default=190, help="requests per 10 s")
    args = parser.parse_args()
    data = records(args.records)
    results = {}
    for side in ("baseline", "spokesync"):
        with (
            tempfile.TemporaryDirectory() as tmp,
            SandboxProcess(Path(tmp) / f"{side}.sqlite", rate_limit=args.rate_limit) as sandbox,
        ):
            results[side] = asyncio.run(both_runs(sandbox, args.rate_limit, data, side))
            results[side + "_429"] = sandbox.stats()["rate_limited_total"]
    print(f"machine: {describe()}")
    print(
        f"{args.records:,} company records × 4 mapped fields, sandbox limit {args.rate_limit}/10 s"
    )
    print(f"{'':10s} {'run':6s} {'calls':>7s} {'wall s':>8s}")
    for side in ("baseline", "spokesync"):
        for run, calls, wall in results[side]:
            print(f"{side:10s} {run:6s} {calls:7d} {wall:8.2f}")
        print(f"{side:10s} 429s   {results[side + '_429']:7d}")


if __name__ == "__main__":
    main()
