"""Definitions load; the landed-partitions sensor and the nightly schedule request the right runs."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

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


def _columns(graph: object, source: str) -> dict[str, dg.TableColumn]:
    schema = graph.get(dg.AssetKey(source)).metadata["dagster/column_schema"]  # type: ignore[attr-defined]
    return {c.name: c for c in schema.columns}


def test_ingestion_assets_describe_every_column_from_the_contract() -> None:
    graph = defs.resolve_asset_graph()
    for name, spec in SOURCES.items():
        columns = _columns(graph, name)
        assert list(columns) == spec.column_names
        assert [n for n, c in columns.items() if not c.description] == [], name
        assert spec.doc in graph.get(dg.AssetKey(name)).description
    users = _columns(graph, "users")
    assert users["email"].description == (
        "trimmed and lowercased; the contact's key in HubSpot; must be an address HubSpot "
        "accepts (`local@domain.tld`, a real top-level domain)"
    )
    assert users["role"].description == (
        "the user's role in the product; one of `admin`, `member`, `viewer`"
    )
    assert users["job_title"].type == "str, nullable"
    # personal data is tagged, as on the desired-state columns
    pii = {n for n, c in users.items() if c.tags["pii"] == "true"}
    assert pii == {"email", "first_name", "last_name"}
    assert users["user_id"].constraints.unique and not users["user_id"].constraints.nullable
    accounts = _columns(graph, "accounts")
    assert accounts["account_id"].description == (
        "key; the company's external id in HubSpot, e.g. `ACC-000123`; must be `ACC-` + digits; "
        "trimmed of Unicode whitespace"
    )
    assert accounts["owner_email"].tags["pii"] == "true"


def test_partitions_start_from_the_variable_else_the_first_landed_day(tmp_path: Path) -> None:
    from spokesync.calendar import partitions_start
    from spokesync.sample_data.generator import GeneratorConfig, default_start, generate
    from spokesync.settings import SettingsError

    # tests/conftest.py pins the variable: the code location's partitions start there.
    assert daily_partitions.start.date() == dt.date(2026, 1, 1)
    landing = tmp_path / "landing"
    env = {"SPOKESYNC_LANDING": str(landing)}
    assert partitions_start(env) == default_start(30)  # nothing landed yet
    generate(GeneratorConfig(accounts=10, days=2), landing)  # ends yesterday
    assert partitions_start(env) == GeneratorConfig(days=2).start
    assert partitions_start({**env, "SPOKESYNC_PARTITIONS_START": "2025-07-01"}) == dt.date(
        2025, 7, 1
    )
    with pytest.raises(SettingsError, match="SPOKESYNC_PARTITIONS_START='July' is not a date"):
        partitions_start({**env, "SPOKESYNC_PARTITIONS_START": "July"})


def test_sensor_requests_each_new_source_day_once(tmp_path: Path, landing: Path) -> None:
    resources = {"warehouse": WarehouseResource(home=str(tmp_path), landing=str(landing))}
    ctx = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), resources=resources, definitions=defs
    )
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
        dg.build_sensor_context(
            instance=dg.DagsterInstance.ephemeral(),
            resources=resources,
            cursor=first.cursor,
            definitions=defs,
        )
    )
    assert isinstance(same, dg.SkipReason)

    day, _ = append_day(landing)
    assert day == "2026-01-04"
    nxt = landed_partitions_sensor(
        dg.build_sensor_context(
            instance=dg.DagsterInstance.ephemeral(),
            resources=resources,
            cursor=first.cursor,
            definitions=defs,
        )
    )
    assert sorted(r.run_key for r in nxt.run_requests) == sorted(
        f"{s}:{day}" for s in PARTITIONED_SOURCES
    )
    assert json.loads(nxt.cursor) == {s: [*DAYS, day] for s in PARTITIONED_SOURCES}


def test_nightly_schedule_requests_yesterday_once_its_files_landed(landing: Path) -> None:
    schedule = defs.resolve_schedule_def("nightly_ingestion_schedule")
    resources = {"warehouse": WarehouseResource(landing=str(landing))}  # 2026-01-01..03

    def tick(day: int):  # noqa: ANN202 - ScheduleExecutionData is not public
        when = dt.datetime(2026, 1, day, 2, 0, tzinfo=dt.UTC)
        ctx = dg.build_schedule_context(
            scheduled_execution_time=when,
            resources=resources,
            repository_def=defs.get_repository_def(),
        )
        return schedule.evaluate_tick(ctx)

    (request,) = tick(4).run_requests
    assert request.partition_key == "2026-01-03"
    (late,) = tick(5).skip_message.splitlines()
    assert late.startswith(
        "no landing files for 2026-01-04 yet: product_usage, invoices, subscriptions, "
        "support_tickets"
    )
    (landing / "erp" / "invoices" / "invoices_2026-01-03.csv").unlink()
    assert tick(4).run_requests == []
    assert tick(4).skip_message.startswith("no landing files for 2026-01-03 yet: invoices ")
