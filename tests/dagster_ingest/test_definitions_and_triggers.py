"""Definitions load; the landed-partitions sensor and the nightly schedule request the right runs."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs
from pipelines.ingestion_jobs import landed_partitions_sensor
from pipelines.partitions import daily_partitions
from resources.warehouse import WarehouseResource
from spokesync.ingest.contract import PARTITIONED_SOURCES, SOURCES
from spokesync.sample_data.generator import append_day
from tests.dagster_ingest.conftest import DAYS


def test_definitions_load_with_every_ingestion_asset_check_job_schedule_and_sensor() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= set(SOURCES)
    check_names = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert check_names >= {(s, n) for s in SOURCES for n in ("quarantine_rate", "schema_drift")}
    job = defs.resolve_job_def("ingestion_job")
    assert job.partitions_def == daily_partitions
    assert defs.resolve_schedule_def("nightly_ingestion_schedule").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("landed_partitions_sensor").job_name == "ingestion_job"


def test_partitions_cover_the_sample_generator_default_start() -> None:
    from spokesync.sample_data.generator import GeneratorConfig

    assert daily_partitions.start.date() == GeneratorConfig().start


def test_sensor_requests_each_new_source_day_once(tmp_path: Path, landing: Path) -> None:
    resources = {"warehouse": WarehouseResource(home=str(tmp_path), landing=str(landing))}
    ctx = dg.build_sensor_context(resources=resources, definitions=defs)
    first = landed_partitions_sensor(ctx)
    assert isinstance(first, dg.SensorResult)
    keys = sorted(r.run_key for r in first.run_requests)
    assert keys == sorted(f"{s}:{d}" for s in PARTITIONED_SOURCES for d in DAYS)
    for request in first.run_requests:
        source, day = request.run_key.split(":")
        assert request.partition_key == day
        assert request.asset_selection == [dg.AssetKey(source)]
    assert json.loads(first.cursor) == {s: DAYS for s in PARTITIONED_SOURCES}

    same = landed_partitions_sensor(
        dg.build_sensor_context(resources=resources, cursor=first.cursor, definitions=defs)
    )
    assert isinstance(same, dg.SkipReason)

    day, _ = append_day(landing)
    assert day == "2026-01-04"
    nxt = landed_partitions_sensor(
        dg.build_sensor_context(resources=resources, cursor=first.cursor, definitions=defs)
    )
    assert sorted(r.run_key for r in nxt.run_requests) == sorted(
        f"{s}:{day}" for s in PARTITIONED_SOURCES
    )
    assert json.loads(nxt.cursor) == {s: [*DAYS, day] for s in PARTITIONED_SOURCES}


def test_nightly_schedule_requests_yesterdays_partition() -> None:
    schedule = defs.resolve_schedule_def("nightly_ingestion_schedule")
    ctx = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC)
    )
    data = schedule.evaluate_tick(ctx)
    (request,) = data.run_requests
    assert request.partition_key == "2026-01-04"
