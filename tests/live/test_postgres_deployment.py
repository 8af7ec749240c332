"""The scaled-out deployment for real: a Dagster instance stored in PostgreSQL (Debian's
package, started by ``scripts/ci-system-deps.sh``), ``dagster-daemon`` and ``dagster-webserver``
as separate services, the run queue, the ``hubspot_api`` pool. Through GraphQL: the nightly
schedule's tick (evaluated as the UI's "Test schedule" does) launched into the run queue, then a
three-day backfill of the push. Both push to the sandbox; the final HubSpot state, the runs and
the storage are asserted.

Steps run in-process (``execution: in_process`` in the launched run config) so the test stays
within tens of seconds on a two-core CI machine; everything else is the production path.
Skips loudly only where PostgreSQL cannot be had.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from spokesync.desired import desired_table
from spokesync.mapping.loader import load_mappings
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.sync.runner import default_mapping_paths
from tests.live.services import DagsterServices, build_recent_warehouse

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.xdist_group("live_dagster"),
    pytest.mark.timeout(600),
]
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def _cluster() -> tuple[str, int] | None:
    """(version/name, port) of an online local cluster, or None."""
    if shutil.which("pg_lsclusters") is None or os.geteuid() != 0:
        return None
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        ver, name, port, status, *_ = line.split()
        if status == "online":
            return f"{ver}/{name}", int(port)
    return None


CLUSTER = _cluster()


def _psql(sql: str, db: str = "postgres") -> str:
    r = subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAtc",
            sql,
        ],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture
def postgres_db():
    """A private database and role for this test (others may run the same test at once)."""
    name = f"spokesync_t_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    _psql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    _psql(f"CREATE DATABASE {name} OWNER {name}")
    try:
        yield name, password
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _psql(f"DROP ROLE IF EXISTS {name}")


def _instance_yaml(db: str, port: int) -> dict:
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": "127.0.0.1",
                    "port": port,
                    "username": db,
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "db_name": db,
                    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; name psycopg2
                    "scheme": "postgresql+psycopg2",
                }
            }
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            # the queue is read every second, not every 5 s: the same path, sooner
            "config": {"dequeue_interval_seconds": 1},
        },
        "concurrency": {
            "runs": {"max_concurrent_runs": 4},
            "pools": {"default_limit": 1, "granularity": "op"},
        },
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


LAUNCH_RUN = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
DRY_RUN = """mutation($s: ScheduleSelector!, $t: Float) { scheduleDryRun(selectorData: $s, timestamp: $t) {
  __typename ... on DryRunInstigationTick { evaluationResult { skipReason error { message }
  runRequests { runKey runConfigYaml tags { key value } } } } ... on PythonError { message } } }"""
BACKFILL = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }"""


def _wait_run(dagster: DagsterServices, run_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = dagster.graphql(RUN, {"id": run_id})["runOrError"]
        if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} not done: {run}\n{dagster.log_tail()}")


@pytest.mark.skipif(
    CLUSTER is None,
    reason="NO POSTGRESQL: no online local cluster (or not root), so the Postgres deployment was "
    "NOT tested; run `bash scripts/ci-system-deps.sh` (CI does)",
)
def test_postgres_instance_daemon_schedule_tick_and_backfill(tmp_path: Path, postgres_db) -> None:
    assert CLUSTER is not None
    db, password = postgres_db
    home = tmp_path / "home"
    home.mkdir()
    days = build_recent_warehouse(home, days=3, accounts=20)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(_instance_yaml(db, CLUSTER[1])))
    mappings = load_mappings(default_mapping_paths())

    with SandboxProcess(tmp_path / "sandbox.sqlite", rate_limit=1000) as sandbox:
        env = {
            "SPOKESYNC_HOME": str(home),
            "SPOKESYNC_ENV": "test",
            "HUBSPOT_BASE_URL": sandbox.base_url,
            "DAGSTER_PG_PASSWORD": password,
        }
        with DagsterServices(dagster_home, env) as dagster:
            # 1. The nightly schedule's tick at 02:00 today: yesterday's partition.
            tick_at = dt.datetime.now(dt.UTC).replace(hour=2, minute=0, second=0, microsecond=0)
            selector = {
                "repositoryLocationName": "spokesync",
                "repositoryName": "__repository__",
                "scheduleName": "nightly_sync_schedule",
            }
            tick = dagster.graphql(DRY_RUN, {"s": selector, "t": tick_at.timestamp()})
            [request] = tick["scheduleDryRun"]["evaluationResult"]["runRequests"]
            tags = {t["key"]: t["value"] for t in request["tags"]}
            assert tags["dagster/partition"] == days[-1]
            params = {
                "selector": {
                    "repositoryLocationName": "spokesync",
                    "repositoryName": "__repository__",
                    "jobName": "sync_job",
                },
                "runConfigData": {**(yaml.safe_load(request["runConfigYaml"]) or {}), **IN_PROCESS},
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            }
            launched = dagster.graphql(LAUNCH_RUN, {"p": params})["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            tick_run = _wait_run(dagster, launched["run"]["runId"])
            assert tick_run["status"] == "SUCCESS", dagster.run_failure_logs(
                launched["run"]["runId"]
            )
            after_tick = {m.object_type: len(sandbox.export(m.object_type)) for m in mappings}

            # 2. A three-day backfill of the push chain, in one run (single-run policy).
            push_chain = [
                {"path": [f"{m.object_type}_{step}"]}
                for m in mappings
                for step in ("desired_state", "changes", "push")
            ]
            launched = dagster.graphql(
                BACKFILL,
                {
                    "p": {
                        "partitionNames": days,
                        "assetSelection": push_chain,
                        "runConfigData": IN_PROCESS,
                        "title": "3-day push backfill",
                    }
                },
            )["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill = dagster.wait_backfill(launched["backfillId"], timeout=240)
            assert backfill["status"] == "COMPLETED_SUCCESS", [
                dagster.run_failure_logs(r["runId"]) for r in backfill["runs"]
            ]
            [run] = backfill["runs"]
            assert run["status"] == "SUCCESS"
        final = {m.object_type: len(sandbox.export(m.object_type)) for m in mappings}

    # The portal holds exactly the warehouse's records as of the last day; the backfill (as of
    # the same last day) created nothing more.
    for m in mappings:
        wanted, _ = desired_table(home / "warehouse", m, dt.date.fromisoformat(days[-1]))
        assert after_tick[m.object_type] == wanted.num_rows, m.object_type
        assert final[m.object_type] == wanted.num_rows, m.object_type
    # The runs and their events live in PostgreSQL, not under DAGSTER_HOME.
    assert _psql("SELECT status FROM runs ORDER BY create_timestamp", db) == "SUCCESS\nSUCCESS"
    assert int(_psql("SELECT count(*) FROM event_logs", db)) > 100
    assert sorted(p.name for p in dagster_home.rglob("*.db")) == []  # no SQLite storage
