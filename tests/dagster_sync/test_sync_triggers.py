"""The sync's sensor and schedule request exactly the right runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs
from pipelines.landing_cursor import new_days
from pipelines.sync_jobs import new_partition_sync_sensor
from resources.warehouse import WarehouseResource
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.sample_data.generator import GeneratorConfig, append_day, generate

START = dt.date(2026, 1, 1)
DAYS3 = ["2026-01-01", "2026-01-02", "2026-01-03"]
SYNC_ASSET_KEYS = {
    dg.AssetKey(f"{obj}_{step}")
    for obj in ("companies", "contacts", "deals", "erp_subscription", "tickets")
    for step in ("desired_state", "changes", "push")
} | {
    dg.AssetKey("tasks_usage_threshold_crossed"),  # tasks follow the company push
    dg.AssetKey("list_pqa_admins"),  # the list mapping follows the contacts' push
}


def _tick(landing: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),  # nothing materialized yet
        cursor=cursor,
        resources={"warehouse": WarehouseResource(landing=str(landing))},
        definitions=defs,
    )
    return new_partition_sync_sensor(context)


def test_sensor_runs_each_new_day_once_with_its_sources_then_the_push(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(GeneratorConfig(accounts=20, days=2, seed=3, start=START), landing)
    first = _tick(landing, None)
    assert [r.partition_key for r in first.run_requests] == ["2026-01-01", "2026-01-02"]
    for request in first.run_requests:
        selected = set(request.asset_selection)
        assert selected - SYNC_ASSET_KEYS == {
            dg.AssetKey(s) for s in (*MASTER_SOURCES, *PARTITIONED_SOURCES)
        }
        assert selected >= SYNC_ASSET_KEYS
        assert request.run_key == f"{request.partition_key}:{'+'.join(PARTITIONED_SOURCES)}"
    assert json.loads(first.cursor) == {
        s: ["2026-01-01", "2026-01-02"] for s in PARTITIONED_SOURCES
    }

    assert isinstance(_tick(landing, first.cursor), dg.SkipReason)

    day, _ = append_day(landing)
    third = _tick(landing, first.cursor)
    assert [r.partition_key for r in third.run_requests] == [day] == ["2026-01-03"]


def test_nightly_schedule_requests_yesterday(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(GeneratorConfig(accounts=20, days=9, seed=3, start=START), landing)
    now = dt.datetime(2026, 1, 10, 2, 0, tzinfo=dt.UTC)
    schedule = defs.resolve_schedule_def("nightly_sync_schedule")
    # No instance here: an instance_for_test() bound to the shared defs outlives its context
    # and breaks later materializations in the same process.
    context = dg.build_schedule_context(
        scheduled_execution_time=now,
        resources={"warehouse": WarehouseResource(landing=str(landing))},
        repository_def=defs.get_repository_def(),
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-01-09"
    assert request.run_key == "nightly_sync_schedule:2026-01-09"
    assert schedule.job_name == "sync_job"


def test_a_day_whose_file_lands_late_still_runs(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(GeneratorConfig(accounts=20, days=3, seed=3, start=START), landing)
    late = landing / "support" / "tickets" / "tickets_2026-01-02.jsonl"
    held = late.read_bytes()
    late.unlink()
    first = _tick(landing, None)
    tickets_days = [
        r.partition_key
        for r in first.run_requests
        if dg.AssetKey("support_tickets") in r.asset_selection
    ]
    assert tickets_days == ["2026-01-01", "2026-01-03"]
    late.write_bytes(held)  # the export for day 2 arrives after day 3's
    (request,) = _tick(landing, first.cursor).run_requests
    assert request.partition_key == "2026-01-02"
    assert request.run_key == "2026-01-02:support_tickets"
    assert set(request.asset_selection) - SYNC_ASSET_KEYS == {
        dg.AssetKey(s) for s in (*MASTER_SOURCES, "support_tickets")
    }


def test_cursor_from_the_high_water_format_is_read_as_every_day_up_to_the_mark() -> None:
    new, cursor = new_days(json.dumps({"invoices": "2026-01-02"}), {"invoices": DAYS3})
    assert new == {"invoices": ["2026-01-03"]}
    assert json.loads(cursor) == {"invoices": DAYS3}


def test_sensor_turned_on_after_a_backfill_runs_only_days_not_yet_ingested(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    generate(GeneratorConfig(accounts=20, days=3, seed=3, start=START), landing)
    with dg.instance_for_test() as instance:
        # The demo / a backfill ingested the first two days (every source).
        for source in PARTITIONED_SOURCES:
            for day in DAYS3[:2]:
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(asset_key=source, partition=day)
                )
        context = dg.build_sensor_context(
            instance=instance,
            cursor=None,
            resources={"warehouse": WarehouseResource(landing=str(landing))},
            definitions=defs,
        )
        first = new_partition_sync_sensor(context)
    assert [r.partition_key for r in first.run_requests] == ["2026-01-03"]
    assert json.loads(first.cursor) == dict.fromkeys(PARTITIONED_SOURCES, DAYS3)
