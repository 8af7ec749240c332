"""A real ``spokesync sync`` against the sandbox: the push phase vs the rate-limit ceiling.

    .venv/bin/python -m bench.bench_sync --accounts 20000 --days 7 --rate-limit 190

Everything is the real path: sample landing files → ``spokesync ingest`` → ``spokesync sync``
(the CLI in its own process, the DuckDB state store, the sandbox process on loopback enforcing
``--rate-limit`` requests per rolling 10 s). Two syncs run: the first (every record new) and a
nightly one (the next day's partition: what moved since). For each, per object and overall:

- push phase: records confirmed / time from its first to its last upsert, and the steady state
  over whole rate-limit windows (the first window's burst flatters short pushes), as % of the
  ceiling (limit × 100 records / 10 s);
- 429s (client and sandbox), write calls vs ⌈changed / 100⌉;
- state writes: commits, batches and the writer thread's busy time (off the event loop);
- the sync's wall time vs the rate-limit floor (all calls × 10 s / limit), and its peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from bench.bench_push import steady_rate
from bench.machine import describe
from spokesync.exit_codes import ExitCode
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.sandbox.launcher import SandboxProcess

# Runs a CLI command and prints its peak RSS (KiB) on stderr's last line.
_RSS_WRAPPER = (
    "import gc, resource, runpy, sys, time\n"
    "gc_s, gc_n, gc_t0, gc_ev = [0.0, 0.0, 0.0], [0, 0, 0], [0.0], []\n"
    "def on_gc(phase, info):\n"
    "    if phase == 'start':\n"
    "        gc_t0[0] = time.thread_time()\n"
    "    else:\n"
    "        took = time.thread_time() - gc_t0[0]\n"
    "        gc_s[info['generation']] += took\n"
    "        gc_n[info['generation']] += 1\n"
    "        gc_ev.append((time.time(), took))\n"
    "gc.callbacks.append(on_gc)\n"
    "sys.argv = ['spokesync', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('spokesync.cli', run_name='__main__')\n"
    "finally:\n"
    "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    print('GC_S', *gc_s, *gc_n, file=sys.stderr)\n"
    "    print('GC_EV', *(f'{t:.3f}:{d:.5f}' for t, d in gc_ev), file=sys.stderr)\n"
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark across fork + exec
    # into ru_maxrss, so a bench that held gigabytes itself (seeding a 1M store) reported
    # them as the CLI's peak.
    "    hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
    "    print('PEAK_RSS_KB', hwm[0] if hwm else u.ru_maxrss, file=sys.stderr)\n"
    "    c = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "    print('CPU_S', u.ru_utime + u.ru_stime + c.ru_utime + c.ru_stime, file=sys.stderr)\n"
)


@dataclass
class CliRun:
    wall_s: float
    peak_rss_mb: float
    stdout: str
    cpu_s: float = 0.0  # user + system of the CLI process (threads and worker processes)
    # (unix time, CPU s of the CLI process, of its main thread (the event loop), of the
    # watched process, then the seconds each process's threads waited runnable for a CPU)
    # every SAMPLE_S
    samples: list[tuple[float, ...]] = field(default_factory=list)
    gc_events: list[tuple[float, float]] = field(default_factory=list)  # (unix time, CPU s)

    def gc_between(self, start: float, end: float) -> float:
        """CPU seconds of garbage collections that ended between two unix times."""
        return sum(d for t, d in self.gc_events if start <= t <= end)

    def cpu_between(self, start: float, end: float) -> tuple[float, ...]:
        """CPU seconds the CLI process, its main thread and the watched process used between
        two unix times, and the seconds the two processes waited for a CPU (linear between
        samples)."""

        def at(t: float, col: int) -> float:
            s = self.samples
            if not s:
                return 0.0
            if t <= s[0][0]:
                return s[0][col]
            for (t0, *a), (t1, *b) in zip(s, s[1:], strict=False):
                if t0 <= t <= t1:
                    f = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
                    return a[col - 1] + f * (b[col - 1] - a[col - 1])
            return s[-1][col]

        return tuple(at(end, c) - at(start, c) for c in (1, 2, 3, 4, 5))


SAMPLE_S = 0.25


def runqueue_wait_s(pid: int) -> float:
    """Seconds the threads of ``pid`` spent runnable but waiting for a CPU (the kernel's
    schedstat, summed over its live threads): CPU starvation, as opposed to idling."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def py_spy() -> str:
    """The py-spy next to this Python (``pip install py-spy``), else the one on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def cli(
    env: dict[str, str],
    *args: str,
    ok: tuple[int, ...] = (0,),
    watch: int | None = None,
    profile: Path | None = None,
) -> CliRun:
    """Run ``spokesync *args``; an exit code outside ``ok`` stops the bench. While it runs,
    the CPU of the CLI process and of process ``watch`` (the sandbox) is sampled; ``profile``:
    py-spy samples the CLI process into that file (collapsed stacks, one line per stack)."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _RSS_WRAPPER, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [py_spy(), "record", "--pid", str(proc.pid), "--format", "raw", "--rate", "50",
             "--nonblocking", "--threads", "-o", str(profile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    samples: list[tuple[float, ...]] = []
    stop = threading.Event()

    def sample() -> None:
        me = psutil.Process(proc.pid)
        other = psutil.Process(watch) if watch else None
        while not stop.wait(SAMPLE_S):
            try:
                mine = me.cpu_times()
                main = next((t for t in me.threads() if t.id == proc.pid), None)
                theirs = other.cpu_times() if other else None
            except psutil.Error:
                return
            samples.append(
                (
                    time.time(),
                    mine.user + mine.system,
                    main.user_time + main.system_time if main else 0.0,
                    theirs.user + theirs.system if theirs else 0.0,
                    runqueue_wait_s(proc.pid),
                    runqueue_wait_s(watch) if watch else 0.0,
                )
            )

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    stop.set()
    sampler.join()
    if spy is not None:
        spy.wait(timeout=60)
    wall = time.perf_counter() - started
    if proc.returncode not in ok:
        raise SystemExit(f"spokesync {' '.join(args)} failed:\n{stdout}\n{stderr}")
    rss = cpu = 0.0
    gc_events = []
    for line in stderr.splitlines():
        if line.startswith("GC_EV"):
            gc_events = [tuple(map(float, e.split(":"))) for e in line.split()[1:]]
        if line.startswith("GC_S"):
            gc = line.split()[1:]
            print(
                "  garbage collector (CPU s by generation): "
                + ", ".join(f"gen{g} {float(gc[g]):.2f} s in {gc[g + 3]} runs" for g in range(3))
            )
        if line.startswith("PEAK_RSS_KB"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("CPU_S"):
            cpu = float(line.split()[1])
    return CliRun(wall, rss, stdout, cpu, samples, gc_events)  # type: ignore[arg-type]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (the sandbox server)."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def object_figures(state_db: Path, run_id: str, limit: int) -> list[dict[str, object]]:
    """Per object of one run: push figures from the sync log and the run's counts."""
    window_s = 10.0 + RateLimiter().slack_s
    con = duckdb.connect(str(state_db), read_only=True)
    try:
        runs = con.execute(
            "SELECT object_type, counts, epoch(started_at), epoch(finished_at) FROM sync_runs "
            "WHERE run_id = ? ORDER BY started_at",
            [run_id],
        ).fetchall()
        out = []
        for object_type, counts_json, started, finished in runs:
            counts = json.loads(counts_json or "{}")
            log = con.execute(
                "SELECT epoch(sent_at), latency_ms, records_ok, status_code FROM sync_log "
                "WHERE run_id = ? AND object_type = ? AND endpoint LIKE '%batch/upsert' "
                "ORDER BY sent_at",
                [run_id, object_type],
            ).fetchall()
            row: dict[str, object] = {
                "object": object_type,
                "changed": counts.get("records_changed", 0),
                "ok": counts.get("records_ok", 0),
                "write_calls": counts.get("write_calls", 0),
                "min_calls": math.ceil(counts.get("records_changed", 0) / 100),
                "rate_limited": counts.get("rate_limited", 0),
                "object_s": finished - started,
                "state_commits": counts.get("state_commits", 0),
                "state_batches": counts.get("state_batches", 0),
                "state_write_s": counts.get("state_write_s", 0.0),
                "push_s": 0.0,
                "rate": 0.0,
                "steady": 0.0,
            }
            if log:
                t0 = log[0][0]
                done = [(t + lat / 1000, n or 0) for t, lat, n, _ in log]
                end = max(t for t, _ in done)
                row["push_s"] = end - t0
                row["t0"], row["end"], row["calls"] = t0, end, len(log)
                row["rate"] = sum(n for _, n in done) / (end - t0) if end > t0 else 0.0
                row["steady"] = steady_rate(sorted(done), t0, window_s)
            out.append(row)
        return out
    finally:
        con.close()


def cpu_lines(figures: list[dict[str, object]], limit: int) -> str:
    """CPU per upsert call of the sync process and the sandbox over the push phases, the share
    of a core each needs to keep the ceiling's pace (limit / 10 calls a second), and the part
    of the ceiling the CPU they got allows."""
    pushed = [f for f in figures if f.get("calls")]
    calls = sum(int(f["calls"]) for f in pushed)  # type: ignore[call-overload]
    if not calls:
        return "  push-phase CPU: no upserts"
    out = ["  push-phase CPU (over first → last upsert of each object):"]
    for label, rows in [*((str(f["object"]), [f]) for f in pushed), ("both", pushed)]:
        n = sum(int(f["calls"]) for f in rows)  # type: ignore[call-overload]
        wall = sum(float(f["push_s"]) for f in rows)  # type: ignore[arg-type]
        mine = sum(float(f["sync_cpu"]) for f in rows)  # type: ignore[arg-type]
        loop = sum(float(f["loop_cpu"]) for f in rows)  # type: ignore[arg-type]
        theirs = sum(float(f["sandbox_cpu"]) for f in rows)  # type: ignore[arg-type]
        gc = sum(float(f["gc_cpu"]) for f in rows)  # type: ignore[arg-type]
        out.append(
            f"    {label:<9} {n:>4} calls: sync {mine / n * 1000:5.1f} ms/call (event loop "
            f"{loop / n * 1000:4.1f} of which GC {gc / n * 1000:3.1f}, other threads "
            f"{(mine - loop) / n * 1000:4.1f}; used "
            f"{mine / wall:4.0%} of a core, needs {mine / n * limit / 10:4.0%} at the ceiling); "
            f"sandbox {theirs / n * 1000:5.1f} ms/call (used {theirs / wall:4.0%}, needs "
            f"{theirs / n * limit / 10:4.0%})"
        )
        # Runnable but not running: time the threads waited for a CPU (starved, not idle).
        waited = sum(float(f["sync_wait"]) for f in rows)  # type: ignore[arg-type]
        waited_sb = sum(float(f["sandbox_wait"]) for f in rows)  # type: ignore[arg-type]
        out.append(
            f"    {'':<9} waited for a CPU: sync {waited:5.1f} s (vs {mine:4.1f} s running), "
            f"sandbox {waited_sb:5.1f} s (vs {theirs:4.1f} s), over a {wall:.1f} s push"
        )
    return "\n".join(out)


def run_ids(state_db: Path) -> list[str]:
    con = duckdb.connect(str(state_db), read_only=True)
    try:
        return [
            r[0]
            for r in con.execute(
                "SELECT run_id FROM sync_runs GROUP BY run_id ORDER BY min(started_at)"
            ).fetchall()
        ]
    finally:
        con.close()


def report(name: str, figures: list[dict[str, object]], run: CliRun, limit: int, calls: int):
    ceiling = limit * 100 / 10
    for f in figures:  # CPU of both processes over the object's push phase
        if "t0" in f:
            (f["sync_cpu"], f["loop_cpu"], f["sandbox_cpu"], f["sync_wait"], f["sandbox_wait"]) = (
                run.cpu_between(f["t0"], f["end"])  # type: ignore[arg-type]
            )
            f["gc_cpu"] = run.gc_between(f["t0"], f["end"])  # type: ignore[arg-type]
    print(f"\n{name}: spokesync sync wall {run.wall_s:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB")
    print(
        "  object     changed  write calls (⌈n/100⌉)  429s  push s   rec/s  % ceil  "
        "steady % ceil  state commits/batches, writer busy s"
    )
    for f in figures:
        print(
            f"  {f['object']:<9} {f['changed']:>8,}  {f['write_calls']:>6} ({f['min_calls']:>6})"
            f"        {f['rate_limited']:>4}  {f['push_s']:>6.1f}  {f['rate']:>6.0f}  "
            f"{f['rate'] / ceiling:>6.1%}  {f['steady'] / ceiling:>12.1%}  "
            f"{f['state_commits']:>5}/{f['state_batches']:<5} {f['state_write_s']:.2f}"
        )
    push_s = sum(float(f["push_s"]) for f in figures)  # type: ignore[arg-type]
    ok = sum(int(f["ok"]) for f in figures)  # type: ignore[call-overload]
    if push_s:
        print(
            f"  push phase overall: {ok:,} records in {push_s:.1f} s = {ok / push_s:,.0f} rec/s "
            f"= {ok / push_s / ceiling:.1%} of the {ceiling:,.0f} rec/s ceiling"
        )
    print(cpu_lines(figures, limit))
    floor = calls * 10 / limit
    print(
        f"  all HubSpot calls {calls:,} → rate-limit floor {floor:.1f} s; "
        f"sync wall / floor = {run.wall_s / floor:.2f}"
        if calls
        else "  no HubSpot calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rate-limit", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: use the warehouse already there (fresh state store and sandbox)",
    )
    parser.add_argument("--mapping", action="append", default=[], help="only these mappings")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy each sync into DIR/<first|nightly>.txt (collapsed stacks, all threads)",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        home = args.keep or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SPOKESYNC_HOME": str(home), "SPOKESYNC_ENV": "test"}
        env.pop("HUBSPOT_TOKEN", None)
        print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f} at start")
        if args.reuse and args.keep:
            for stale in (home / "state", home / "sandbox.sqlite"):
                if stale.is_dir():
                    shutil.rmtree(stale)
                else:
                    stale.unlink(missing_ok=True)
            print(f"reusing the warehouse in {home}")
        else:
            # One extra day: the first sync takes the day before the last, the nightly the last.
            t0 = time.perf_counter()
            cli(env, "sample-data", "--out", str(home / "landing"), "--days", str(args.days + 1),
                "--accounts", str(args.accounts), "--seed", "7")  # fmt: skip
            gen_s = time.perf_counter() - t0
            ingest = cli(env, "ingest", "--all", "--landing", str(home / "landing"))
            print(
                f"{args.accounts:,} accounts × {args.days + 1} days: sample data {gen_s:.1f} s, "
                f"ingest {ingest.wall_s:.1f} s (peak RSS {ingest.peak_rss_mb:.0f} MB)"
            )
        mapping_args = [a for m in args.mapping for a in ("--mapping", m)]
        db = home / "sandbox.sqlite"
        with SandboxProcess(db, rate_limit=args.rate_limit) as sandbox:
            env["HUBSPOT_BASE_URL"] = sandbox.base_url
            cli(env, "hubspot", "ensure-properties")
            state_db = home / "state" / "test.duckdb"
            from spokesync.sync.runner import latest_partition

            last = latest_partition(home / "warehouse")
            for name, as_of in (("first sync", last - dt.timedelta(days=1)), ("nightly", last)):
                before = sandbox.stats()
                assert sandbox.process is not None
                sandbox_cpu = process_cpu_s(sandbox.process.pid)
                load_before = os.getloadavg()[0]
                # The sample data plants bad rows that ingest quarantines: the sync exits 9.
                run = cli(
                    env, "sync", "--no-ingest", "--as-of", as_of.isoformat(), *mapping_args,
                    "--rate-limit", str(args.rate_limit), "--concurrency", str(args.concurrency),
                    ok=(0, ExitCode.DROPPED), watch=sandbox.process.pid,
                    profile=args.profile / f"{name.split()[0]}.txt" if args.profile else None,
                )  # fmt: skip
                sandbox_cpu = process_cpu_s(sandbox.process.pid) - sandbox_cpu
                after = sandbox.stats()
                calls = int(after.get("requests_total", 0)) - int(before.get("requests_total", 0))
                server_429 = int(after.get("rate_limited_total", 0)) - int(
                    before.get("rate_limited_total", 0)
                )
                figures = object_figures(state_db, run_ids(state_db)[-1], args.rate_limit)
                report(f"{name} (as_of {as_of})", figures, run, args.rate_limit, calls)
                print(f"  sandbox counted {server_429} 429s")
                print(
                    f"  CPU: sync process {run.cpu_s:.1f} s, sandbox process {sandbox_cpu:.1f} s "
                    f"({sandbox_cpu / max(calls, 1) * 1000:.1f} ms per call); load average "
                    f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
                )
                print("  " + run.stdout.strip().replace("\n", "\n  "))


if __name__ == "__main__":
    main()
