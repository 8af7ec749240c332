"""Sandbox throughput and latency for 100-record batch upserts (not a test; prints figures).

    .venv/bin/python -m bench.bench_sandbox [--seconds 20] [--workers 4] [--paced-rps 25]

Starts a real ``spokesync sandbox`` process on a free port with a temporary SQLite file and a
rate limit high enough not to interfere, then runs two phases:

1. saturation: ``--workers`` threads each send batch upserts (100 contacts, by email; half new,
   half updates) back to back for ``--seconds``;
2. paced: one request every 1/``--paced-rps`` seconds (HubSpot's top sustained rate is 25/s).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.machine import describe
from spokesync.sandbox.launcher import SandboxProcess

BATCH = 100


def _payload(seq: int) -> dict:
    # half of each batch re-upserts records written by an earlier batch (updates), half are new
    base = seq * BATCH // 2
    return {
        "inputs": [
            {
                "id": f"bench{base + i}@example.com",
                "idProperty": "email",
                "objectWriteTraceId": str(i),
                "properties": {
                    "firstname": f"F{seq}",
                    "lifecyclestage": "lead",
                    "jobtitle": "Engineer",
                },
            }
            for i in range(BATCH)
        ]
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def saturate(
    base_url: str, token: str, seconds: float, workers: int
) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as c:
            while time.perf_counter() < stop_at:
                with lock:
                    seq = next(counter)
                t0 = time.perf_counter()
                r = c.post("/crm/v3/objects/contacts/batch/upsert", json=_payload(seq))
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if r.status_code != 200:
                        errors += 1

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies), latencies, errors


def paced(
    base_url: str, token: str, seconds: float, rps: float, offset: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    interval = 1.0 / rps
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as c:
        start = time.perf_counter()
        n = int(seconds * rps)
        for i in range(n):
            target = start + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            r = c.post("/crm/v3/objects/contacts/batch/upsert", json=_payload(offset + i))
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--paced-rps", type=float, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        extra = ["--daily-limit", "100000000"]
        with SandboxProcess(db, rate_limit=1_000_000, extra_args=extra) as sb:
            n, lat, errors = saturate(sb.base_url, sb.token, args.seconds, args.workers)
            rps = n / args.seconds
            print(f"machine: {describe()}")
            print(
                f"saturation ({args.workers} workers, {args.seconds:.0f}s, {BATCH} records/request): "
                f"{rps:.1f} req/s, {rps * BATCH:,.0f} records/s, p50 {_percentile(lat, 0.5) * 1000:.1f} ms, "
                f"p99 {_percentile(lat, 0.99) * 1000:.1f} ms, non-200: {errors}"
            )
            plat, perrors = paced(sb.base_url, sb.token, args.seconds, args.paced_rps, offset=n + 1)
            print(
                f"paced ({args.paced_rps:.0f} req/s, {len(plat)} requests): "
                f"p50 {_percentile(plat, 0.5) * 1000:.1f} ms, p99 {_percentile(plat, 0.99) * 1000:.1f} ms, "
                f"max {max(plat) * 1000:.1f} ms, mean {statistics.mean(plat) * 1000:.1f} ms, non-200: {perrors}"
            )
            stats = sb.stats()["records"]
            print(
                f"records created {stats['created']:,}, updated {stats['updated']:,}; "
                f"sqlite {db.stat().st_size / 1e6:.1f} MB"
            )


if __name__ == "__main__":
    main()
