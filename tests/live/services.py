"""A real Dagster deployment for live tests: ``dagster-daemon`` + ``dagster-webserver`` as
subprocesses on one ``DAGSTER_HOME``, and a small GraphQL client for them.

Started from Python with their own session and stopped with SIGINT by pid (Dagster ignores
SIGTERM/SIGINT when started as a background job of a non-interactive shell).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from spokesync.sandbox.launcher import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# ``dagster-daemon`` with its loops every 2 s instead of 30 s: the backfill daemon sleeps 30 s
# between iterations (a backfill takes two: submit its run, see it finish), which was most of
# a live test's wall time. The daemon does the same work, only sooner: its module-level
# default (``DEFAULT_DAEMON_INTERVAL_SECONDS``, 30) is patched in the daemon process only.
DAEMON_INTERVAL_S = int(os.environ.get("SPOKESYNC_TEST_DAEMON_INTERVAL_S", "2"))  # 30: Dagster's
DAEMON = [
    sys.executable,
    "-c",
    "import sys; import dagster._daemon.controller as c; "
    f"c.DEFAULT_DAEMON_INTERVAL_SECONDS = {DAEMON_INTERVAL_S}; "
    "from dagster._daemon.cli import main; sys.argv[0] = 'dagster-daemon'; sys.exit(main())",
]


class DagsterServices:
    """Webserver and daemon on ``dagster_home`` (which holds ``dagster.yaml``)."""

    def __init__(self, dagster_home: Path, env: dict[str, str], *, daemon: bool = True) -> None:
        self.home = dagster_home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # As a user's deployment: the test suite's own SPOKESYNC_PARTITIONS_START (for tests
        # with hand-written 2026 dates) does not apply; partitions start at the first landed day.
        inherited = {k: v for k, v in os.environ.items() if k != "SPOKESYNC_PARTITIONS_START"}
        self.env = {**inherited, **env, "DAGSTER_HOME": str(dagster_home)}
        self.daemon = daemon
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def _spawn(self, name: str, args: list[str], command: list[str] | None = None) -> None:
        log = self.home / f"{name}.log"
        self.logs.append(log)
        with log.open("ab") as out:
            self.processes.append(
                subprocess.Popen(
                    [*(command or [str(BIN / name)]), *args],
                    cwd=REPO,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def start(self, timeout: float = 120.0) -> None:
        # Create the instance's storage once, before two services race to create it.
        subprocess.run(
            [str(BIN / "dagster"), "instance", "migrate"],
            cwd=REPO,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        if self.daemon:
            self._spawn("dagster-daemon", ["run", "-w", "workspace.yaml"], DAEMON)
        self._spawn(
            "dagster-webserver",
            ["-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.processes:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited {p.returncode}: {self.log_tail()}")
            try:
                entries = self.graphql(
                    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
                )["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [
                        e
                        for e in entries
                        if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
                    ]
                    if errors:
                        raise RuntimeError(f"code location failed to load: {errors}")
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"Dagster did not come up in {timeout}s: {self.log_tail()}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        r = self.client.post("/graphql", json={"query": query, "variables": variables or {}})
        r.raise_for_status()
        body = r.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
            for p in self.logs
            if p.exists()
        )

    def stop(self) -> None:
        """SIGINT (Dagster's clean shutdown), then SIGKILL of the process group if it hangs."""
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self.client.close()

    def __enter__(self) -> DagsterServices:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ runs and backfills

    def wait_backfill(self, backfill_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Poll until the backfill is done; returns it with its runs."""
        query = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
            __typename ... on PartitionBackfill { id status numPartitions partitionNames
            runs { runId status tags { key value } } } ... on PythonError { message } } }"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            b = self.graphql(query, {"id": backfill_id})["partitionBackfillOrError"]
            if b.get("status") in {
                "COMPLETED",
                "COMPLETED_SUCCESS",
                "COMPLETED_FAILED",
                "FAILED",
                "CANCELED",
            }:
                runs = b["runs"]
                if all(r["status"] in {"SUCCESS", "FAILURE", "CANCELED"} for r in runs):
                    return b
            time.sleep(1.0)
        raise AssertionError(
            f"backfill {backfill_id} not done in {timeout}s: {b}\n{self.log_tail()}"
        )

    def run_failure_logs(self, run_id: str) -> str:
        query = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
            __typename ... on ExecutionStepFailureEvent { stepKey error { message
            cause { message } } } } } } }"""
        events = self.graphql(query, {"id": run_id})["logsForRun"]["events"]
        return "\n".join(str(e) for e in events if e["__typename"] == "ExecutionStepFailureEvent")


def build_recent_warehouse(home: Path, days: int = 3, accounts: int = 30) -> list[str]:
    """A small sample warehouse whose days end yesterday (inside the UI's default ranges);
    returns the landed days."""
    import datetime as dt

    from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
    from spokesync.ingest.engine import ingest_master, ingest_partition, landed_partitions
    from spokesync.sample_data.generator import GeneratorConfig, generate

    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)
    landing = home / "landing"
    generate(GeneratorConfig(accounts=accounts, days=days, seed=5, start=start), landing)
    wh = home / "warehouse"
    for source in MASTER_SOURCES:
        ingest_master(source, landing, wh, "fixture")
    for source in PARTITIONED_SOURCES:
        for day in landed_partitions(source, landing):
            ingest_partition(source, day, landing, wh, "fixture")
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(days)]
