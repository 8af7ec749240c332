"""``make bench``: every benchmark with its default size, one after another (about 10 min).

Each one prints its own figures and the machine; docs/benchmarks.md records the runs. The long
end-to-end ones are run by hand: ``bench.bench_sync`` (a real sync's push vs the ceiling) and
``bench.bench_scale`` (100k accounts and more, with the stage breakdown).
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    ["bench.bench_ingest"],  # 10M usage events: rows/s, peak RSS
    ["bench.bench_diff", "--sizes", "100000", "1000000", "5000000"],  # diff scaling
    ["bench.bench_sandbox"],  # sandbox req/s and p99
    ["bench.bench_sandbox_cpu"],  # sandbox CPU per call on a real sync's requests
    ["bench.bench_push", "--rate-limit", "100"],  # push vs the ceiling, 429s, calls
    ["bench.bench_baseline"],  # per-record PATCH vs spokesync
]


def main() -> int:
    failed = 0
    for bench in BENCHES:
        print(f"\n=== python -m {' '.join(bench)}", flush=True)
        failed += subprocess.call([sys.executable, "-m", *bench]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
