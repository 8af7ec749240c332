"""The sandbox's CPU per call, on the requests of a real sync (not a test; prints figures).

    .venv/bin/python -m bench.bench_sandbox_cpu --accounts 2000

1. capture: a real ``spokesync sync`` (first day, then the next day) against a sandbox process
   that keeps every request in its log;
2. replay: the same requests, in order, into a fresh in-process sandbox app (no HTTP, no other
   process), timing each with the process's CPU clock (``time.process_time``), so the figure is
   the sandbox's own work per call and hardly moves with the machine's load. The server's GC
   setting (``spokesync.sandbox.command``) is applied, as in ``spokesync sandbox``.

Prints CPU per call by route, and checks every replayed answer has the captured status.
``--save-log F`` keeps the capture; ``--log F`` replays it again (say, with another version of
the sandbox on ``PYTHONPATH``), so two versions are compared on the very same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from bench.bench_sync import cli
from bench.machine import describe
from spokesync.sandbox.app import SandboxApp, SandboxConfig, create_app
from spokesync.sandbox.command import _tune_gc
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import SANDBOX_DEV_TOKEN
from spokesync.sync.runner import latest_partition


def capture(home: Path, accounts: int) -> list[dict[str, Any]]:
    env = {**os.environ, "SPOKESYNC_HOME": str(home), "SPOKESYNC_ENV": "test"}
    env.pop("HUBSPOT_TOKEN", None)
    cli(env, "sample-data", "--out", str(home / "landing"), "--days", "2",
        "--accounts", str(accounts), "--seed", "7")  # fmt: skip
    cli(env, "ingest", "--all", "--landing", str(home / "landing"))
    extra = ["--request-log-size", "1000000", "--daily-limit", "100000000"]
    with SandboxProcess(home / "capture.sqlite", rate_limit=100_000, extra_args=extra) as sb:
        env["HUBSPOT_BASE_URL"] = sb.base_url
        cli(env, "hubspot", "ensure-properties")
        last = latest_partition(home / "warehouse")
        for as_of in (last - dt.timedelta(days=1), last):
            # exit 9 (dropped): the sample's planted bad rows stay quarantined
            cli(env, "sync", "--no-ingest", "--as-of", as_of.isoformat(), "--rate-limit", "100000",
                ok=(0, 9))  # fmt: skip
        return sb.requests(limit=1_000_000)


def _query_string(query: dict[str, Any] | None) -> bytes:
    items = [(k, ",".join(v) if isinstance(v, list) else v) for k, v in (query or {}).items()]
    return urlencode(items).encode()


async def _call(app: SandboxApp, entry: dict[str, Any]) -> int:
    body = b"" if entry["body"] is None else orjson.dumps(entry["body"])
    scope = {
        "type": "http",
        "method": entry["method"],
        "path": entry["path"],
        "query_string": _query_string(entry["query"]),
        "headers": [
            (b"authorization", f"Bearer {SANDBOX_DEV_TOKEN}".encode()),
            (b"host", b"127.0.0.1"),
        ],
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def replay(log: list[dict[str, Any]], db: Path) -> tuple[dict[str, list[float]], int]:
    config = SandboxConfig(
        db_path=db, rate_limit=10**9, daily_limit=10**12, search_rate_limit=10**6, seed=1
    )
    app = create_app(config)
    _tune_gc()
    per_route: dict[str, list[float]] = defaultdict(list)
    mismatches = 0
    for entry in log:
        t0 = time.process_time()
        status = await _call(app, entry)
        per_route[f"{entry['method']} {entry['route']}"].append(time.process_time() - t0)
        mismatches += status != entry["status"]
    return per_route, mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument(
        "--save-log", type=Path, help="also write the captured requests to this file (JSON)"
    )
    parser.add_argument(
        "--log",
        type=Path,
        help="replay this saved capture instead of capturing (an A/B of two "
        "sandbox versions on the same requests)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        log = orjson.loads(args.log.read_bytes()) if args.log else capture(home, args.accounts)
        if args.save_log:
            args.save_log.write_bytes(orjson.dumps(log))
        per_route, mismatches = asyncio.run(replay(log, home / "replay.sqlite"))
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{len(log):,} requests of two real syncs ({args.accounts:,} accounts), replayed:")
    print(f"  {'route':64s} {'calls':>6s} {'CPU s':>7s} {'ms/call':>8s}")
    for route, times in sorted(per_route.items(), key=lambda kv: -sum(kv[1])):
        total = sum(times)
        print(f"  {route:64s} {len(times):6d} {total:7.3f} {total / len(times) * 1000:8.2f}")
    print(f"  answers with another status than captured: {mismatches}")


if __name__ == "__main__":
    main()
