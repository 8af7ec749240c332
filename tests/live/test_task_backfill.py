"""A real Dagster range backfill of the usage-threshold task asset: ``launchPartitionBackfill``
through the webserver, run by ``dagster-daemon`` (single-run policy: one run for the range),
pushing to the sandbox on loopback. Over the whole usage history (a first sync over history),
it creates exactly one task per real, recent crossing, counts the rest, and the same backfill
launched again creates no task.

Data: the fixed fixture warehouse with the hand-written usage of ``tests/e2e/conftest.py``
(2025-12-20 … 2026-01-03); the expected tasks are written by hand in ``test_tasks_e2e``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from tests.e2e.conftest import (
    FIXED_START,
    USAGE_DAYS,
    build_warehouse,
    read_reference,
    write_hand_usage,
)
from tests.e2e.test_tasks_e2e import EXPECTED, assert_exactly_the_expected_tasks, task_creates
from tests.live.services import BIN, REPO, DagsterServices

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.xdist_group("live_dagster"),
    pytest.mark.timeout(600),
]
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
TASKS = "tasks_usage_threshold_crossed"
# The company push chain the tasks wait for (a task needs its company in HubSpot), and the
# task asset itself. The portal is set up beforehand, once, as a RevOps engineer does it
# (`spokesync hubspot ensure-properties`), and HubSpot's owners and pipelines are read into
# the warehouse (the hubspot_properties asset does both; it is not partitioned).
SELECTION = [
    {"path": [key]}
    for key in ("companies_desired_state", "companies_changes", "companies_push", TASKS)
]
BACKFILL = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
MATERIALIZATIONS = """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
  assetMaterializations(limit: 100) { runId partition metadataEntries { label
  ... on IntMetadataEntry { intValue } } } } } }"""
FIGURES = ("events", "tasks_created", "already_created", "incomplete_window", "older_than_lookback")


def _backfill(dagster: DagsterServices, days: list[str], title: str) -> str:
    launched = dagster.graphql(
        BACKFILL,
        {
            "p": {
                "partitionNames": days,
                "assetSelection": SELECTION,
                "runConfigData": IN_PROCESS,
                "title": title,
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = dagster.wait_backfill(launched["backfillId"], timeout=300)
    assert backfill["status"] == "COMPLETED_SUCCESS", [
        dagster.run_failure_logs(r["runId"]) for r in backfill["runs"]
    ]
    [run] = backfill["runs"]  # single-run policy: the whole range in one run
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/asset_partition_range_start"] == days[0]
    assert tags["dagster/asset_partition_range_end"] == days[-1]
    return run["runId"]


def _figures(dagster: DagsterServices, run_id: str) -> dict[str, int]:
    """The task asset's figures in ``run_id`` (every day of the range carries the run's)."""
    mats = dagster.graphql(MATERIALIZATIONS, {"key": {"path": [TASKS]}})["assetOrError"]
    last = [m for m in mats["assetMaterializations"] if m["runId"] == run_id]
    assert len(last) == len(USAGE_DAYS)  # one materialization per day of the range
    entries = {e["label"]: e.get("intValue") for e in last[0]["metadataEntries"]}
    return {k: entries[k] for k in FIGURES}


def test_range_backfill_of_the_task_asset_creates_one_task_per_crossing_then_none(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    build_warehouse(home, FIXED_START)
    write_hand_usage(home)
    shutil.rmtree(home / "landing")  # the warehouse is what the runs read
    days = [d.isoformat() for d in USAGE_DAYS]
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")

    with SandboxProcess(tmp_path / "sandbox.sqlite", rate_limit=1000) as sandbox:
        settings = Settings.from_env(
            environ={}, home=home, env="test", hubspot_base_url=sandbox.base_url
        )
        env = {
            "SPOKESYNC_HOME": str(home),
            "SPOKESYNC_ENV": "test",
            "HUBSPOT_BASE_URL": sandbox.base_url,
            "SPOKESYNC_PARTITIONS_START": days[0],  # the usage history's first day
        }
        subprocess.run(
            [str(BIN / "spokesync"), "hubspot", "ensure-properties", "--mapping",
             str(REPO / "mappings" / "companies.yaml")],
            cwd=REPO, env={**os.environ, **env}, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        read_reference(settings)
        with DagsterServices(dagster_home, env) as dagster:
            first = _backfill(dagster, days, "usage history: tasks")
            # Every crossing of the 15 days is found; the tasks are the real ones of the last
            # 7 days (ACC-000014 Dec 31, ACC-000010 Jan 2, ACC-000033 Jan 3). Not tasks: the
            # first day's counts of ACC-000006 (3) and ACC-000014 (4), a window filling up,
            # and ACC-000017's Dec 27 crossing, 7 days before the newest day.
            assert _figures(dagster, first) == {
                "events": 3,
                "tasks_created": 3,
                "already_created": 0,
                "incomplete_window": 2,
                "older_than_lookback": 1,
            }
            assert len(task_creates(sandbox)) == 1  # one batch create
            assert_exactly_the_expected_tasks(sandbox)

            sandbox.clear_requests()
            again = _backfill(dagster, days, "usage history: tasks, again")
            assert _figures(dagster, again) == {
                "events": 3,
                "tasks_created": 0,
                "already_created": 3,
                "incomplete_window": 2,
                "older_than_lookback": 1,
            }
            assert task_creates(sandbox) == []
            assert_exactly_the_expected_tasks(sandbox)
    with StateStore(settings.state_db) as store:
        assert store.tasks.counts() == {"created": len(EXPECTED)}
