"""The sync's sensor and schedule request exactly the right runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs
from pipelines.sync_jobs import new_partition_sync_sensor
from resources.warehouse import WarehouseResource
from spokesync.ingest.contract import PARTITIONED_SOURCES
from spokesync.sample_data.generator import GeneratorConfig, append_day, generate

SYNC_ASSET_KEYS = {
    dg.AssetKey(f"{obj}_{step}")
    for obj in ("companies", "contacts", "deals", "tickets")
    for step in ("desired_state", "changes", "push")
}


def _tick(landing: Path, cursor: str | None) -> dg.SensorResult:
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"warehouse": WarehouseResource(landing=str(landing))},
            definitions=defs,
        )
        return new_partition_sync_sensor(context)


def test_sensor_runs_each_new_day_once_with_its_sources_then_the_push(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(GeneratorConfig(accounts=20, days=2, seed=3), landing)
    first = _tick(landing, None)
    assert [r.partition_key for r in first.run_requests] == ["2026-01-01", "2026-01-02"]
    for request in first.run_requests:
        selected = set(request.asset_selection)
        assert selected - SYNC_ASSET_KEYS == {dg.AssetKey(s) for s in PARTITIONED_SOURCES}
        assert selected >= SYNC_ASSET_KEYS
        assert request.run_key == f"{request.partition_key}:{'+'.join(PARTITIONED_SOURCES)}"
    assert json.loads(first.cursor) == dict.fromkeys(PARTITIONED_SOURCES, "2026-01-02")

    assert isinstance(_tick(landing, first.cursor), dg.SkipReason)

    day, _ = append_day(landing)
    third = _tick(landing, first.cursor)
    assert [r.partition_key for r in third.run_requests] == [day] == ["2026-01-03"]


def test_nightly_schedule_requests_yesterday() -> None:
    now = dt.datetime(2026, 1, 10, 2, 0, tzinfo=dt.UTC)
    schedule = defs.resolve_schedule_def("nightly_sync_schedule")
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=now)
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-01-09"
    assert schedule.job_name == "sync_job"
