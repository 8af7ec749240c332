"""Push benchmark against the real sandbox: records/s vs the rate-limit ceiling, 429s, calls.

    .venv/bin/python -m bench.bench_push --records 30000 --rate-limit 100

The sandbox enforces ``--rate-limit`` requests per rolling 10 s; the ceiling is
``rate_limit × 100 records / 10 s``. The first window's burst flatters a short run, so the
steady-state rate over whole windows (see :func:`steady_rate`) is printed too.
Goals: steady state ≥ 95 % of the ceiling, zero 429s, write calls = ⌈records / 100⌉.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import describe
from spokesync.changes import BatchLog, ConfirmedWrite, DeadLetter, RecordChange
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.properties import PropertySpec, ensure_properties
from spokesync.hubspot.push import PushConfig, PushReport, push_changes
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.sandbox.launcher import SandboxProcess

SPECS = [
    PropertySpec("spokesync_account_id", "string", "text", unique=True, group="spokesync"),
    PropertySpec("spokesync_seats", "number", "number", group="spokesync"),
    PropertySpec("spokesync_plan", "enumeration", "select", ("starter", "growth", "scale")),
    PropertySpec("name", "string", "text"),
    PropertySpec("city", "string", "text"),
]


@dataclass
class TimedSink:
    """Counts confirmations over time (the bench needs no state store)."""

    confirmed_at: list[tuple[float, int]] = field(default_factory=list)
    confirmed: dict[str, dict[str, str]] = field(default_factory=dict)
    dead: int = 0
    batches: int = 0

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None:
        self.confirmed_at.append((time.perf_counter(), len(writes)))
        for w in writes:
            self.confirmed[w.external_id] = w.properties

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str) -> None:
        self.dead += len(letters)

    def record_batch(self, entry: BatchLog) -> None:
        self.batches += 1


def records(n: int, *, version: int = 0) -> list[RecordChange]:
    plans = ("starter", "growth", "scale")
    return [
        RecordChange(
            object_type="companies",
            external_id=f"bench-{i:07d}",
            hubspot_id=None,
            properties={
                "name": f"Company {i} v{version}",
                "city": ("Oslo", "Lyon", "Austin", "Pune")[i % 4],
                "spokesync_seats": str(10 + i % 90),
                "spokesync_plan": plans[i % 3],
            },
            as_of=dt.date(2026, 11, 1),
        )
        for i in range(n)
    ]


async def push_once(
    sandbox: SandboxProcess, changes: list[RecordChange], rate_limit: int, concurrency: int
) -> tuple[PushReport, TimedSink, float]:
    sink = TimedSink()
    async with HubSpotClient(
        sandbox.base_url, sandbox.token, limiter=RateLimiter(rate_limit)
    ) as client:
        await ensure_properties(client, SPECS, "companies")
        started = time.perf_counter()
        chunks = [changes[i : i + 5000] for i in range(0, len(changes), 5000)]
        report = await push_changes(
            client,
            object_type="companies",
            id_property="spokesync_account_id",
            changes=chunks,
            sink=sink,
            run_id="bench",
            config=PushConfig(concurrency=concurrency),
        )
    return report, sink, started


def steady_rate(confirmed_at: list[tuple[float, int]], started: float, window_s: float) -> float:
    """Records/s over whole rate-limit windows: confirmed before ``started + k·window`` divided
    by ``k·window``, for the largest ``k`` the run covers.

    The first window's budget is available at once, so over a short run it flatters the
    overall rate; over whole windows the rate is what the limit allows in the long run.
    """
    if not confirmed_at:
        return 0.0
    k = int((confirmed_at[-1][0] - started) // window_s)
    if k < 1:
        return 0.0
    horizon = started + k * window_s
    return sum(n for t, n in confirmed_at if t < horizon) / (k * window_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--rate-limit", type=int, default=100, help="requests per 10 s")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    ceiling = args.rate_limit * 100 / 10
    with (
        tempfile.TemporaryDirectory() as tmp,
        SandboxProcess(Path(tmp) / "bench.sqlite", rate_limit=args.rate_limit) as sandbox,
    ):
        window_s = 10.0 + RateLimiter().slack_s  # the limiter's window incl. its jitter slack
        report, sink, started = asyncio.run(
            push_once(sandbox, records(args.records), args.rate_limit, args.concurrency)
        )
        server_429 = sandbox.stats()["rate_limited_total"]

    steady = steady_rate(sink.confirmed_at, started, window_s)
    expected_calls = math.ceil(args.records / 100)
    print(f"machine: {describe()}")
    print(
        f"push of {args.records:,} changed records, sandbox limit {args.rate_limit}/10 s, "
        f"concurrency {args.concurrency}"
    )
    print(f"  duration            {report.duration_s:8.2f} s")
    print(
        f"  records confirmed   {report.records_ok:8,d}  dead-lettered {report.records_dead_lettered}"
    )
    print(f"  ceiling             {ceiling:8.0f} records/s")
    print(
        f"  overall             {report.records_per_s:8.0f} records/s "
        f"({report.records_per_s / ceiling:.1%} of ceiling, incl. the first window's burst)"
    )
    print(f"  steady state        {steady:8.0f} records/s ({steady / ceiling:.1%} of ceiling)")
    print(f"  429s                {report.rate_limited:8d} (sandbox counted {server_429})")
    print(
        f"  write calls         {report.write_calls:8d} (⌈records/100⌉ = {expected_calls}; "
        f"retries {report.retries})"
    )


if __name__ == "__main__":
    main()
