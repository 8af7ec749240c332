"""The sync as Dagster runs it: the code location's own jobs, on a real sandbox."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import defs
from resources.hubspot import HubSpotResource
from resources.warehouse import WarehouseResource
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.state.store import StateStore
from spokesync.sync.runner import latest_partition
from tests.e2e.conftest import upsert_requests

pytestmark = pytest.mark.e2e
OBJECTS = ("companies", "contacts", "deals", "erp_subscription", "tickets")


def _resources(home: Path, sandbox: SandboxProcess) -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(home=str(home)),
        "hubspot": HubSpotResource(home=str(home), env="test", base_url=sandbox.base_url),
    }


def _push_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        key = mat.asset_key.to_user_string()
        if key.endswith("_push"):
            out[key.removesuffix("_push")] = {k: v.value for k, v in mat.metadata.items()}
    return out


def _run(job_name, days, home, sandbox, run_config=None) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(job_name)
    with dg.instance_for_test() as instance:
        return job.execute_in_process(
            instance=instance,
            resources=_resources(home, sandbox),
            run_config=run_config,
            tags={
                "dagster/asset_partition_range_start": days[0],
                "dagster/asset_partition_range_end": days[-1],
            },
        )


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    for name in ("sync_job", "hubspot_push_job", "hubspot_refresh_job"):
        assert defs.resolve_job_def(name)


def test_push_job_backfill_pushes_once_then_nothing(home: Path, sandbox: SandboxProcess) -> None:
    newest = latest_partition(home / "warehouse")
    days = [(newest - dt.timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    first = _run("hubspot_push_job", days, home, sandbox)
    assert first.success
    meta = _push_metadata(first)
    assert set(meta) == set(OBJECTS)
    exported = sandbox.export()
    for obj in OBJECTS:
        created = len(exported[obj])
        assert meta[obj]["records_created"] == created == meta[obj]["records_desired"]
        assert meta[obj]["as_of"] == days[-1]  # one push, for the range's last day
        assert meta[obj]["write_calls"] == -(-created // 100)
    # One push for the range: its figures are on the last day only; the earlier days say so
    # (a plot per partition must not claim the range's writes for every day).
    by_day = {
        e.partition: {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()}
        for e in first.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("contacts_push")
    }
    note = {"as_of": days[-1], "range": f"{days[0]} … {days[-1]}", "figures_on": days[-1]}
    assert by_day[days[0]] == by_day[days[1]] == note
    assert by_day[days[-1]]["records_created"] == len(exported["contacts"])
    desired_days = {
        e.partition: e.event_specific_data.materialization.metadata
        for e in first.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("contacts_desired_state")
    }
    assert "dagster/row_count" not in desired_days[days[0]]
    assert desired_days[days[-1]]["dagster/row_count"].value == meta["contacts"]["records_desired"]
    # Checks on the partitioned sync assets: one result per day of the range, not "Skipped".
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name, e.partition): e.passed
        for e in first.get_asset_check_evaluations()
    }
    # Deterministic on a clean first push: everything accepted, no retries, no dead letters.
    push_checks = (
        "no_dead_letters",
        "failed_records",
        "dead_letters_growing",
        "sync_latency",
        "kpi_success_rate",
        "kpi_retry_rate",
        "kpi_duration",
        "kpi_open_dead_letters",
    )
    data_kpis = ("kpi_duplicate_rate", "kpi_missing_required", "kpi_association_completeness")
    assert {k: v for k, v in evaluations.items() if k[1] not in data_kpis} == {
        **{(f"{o}_push", c, d): True for o in OBJECTS for c in push_checks for d in days},
        **{
            (f"{o}_desired_state", "ids_present_and_unique", d): True for o in OBJECTS for d in days
        },
        **{("list_pqa_admins", "members_in_step", d): True for d in days},
    }
    # The data-quality KPIs depend on the sample's planted mess: evaluated on every day.
    assert {k[:3] for k in evaluations if k[1] in data_kpis} == {
        (f"{o}_push", c, d) for o in OBJECTS for c in data_kpis for d in days
    }
    sandbox.clear_requests()
    second = _run("hubspot_push_job", days, home, sandbox)
    assert second.success
    assert all(m["write_calls"] == 0 for m in _push_metadata(second).values())
    assert upsert_requests(sandbox) == []
    # The list mapping (mappings/lists/pqa_admins.yaml) after the contacts' push: every member
    # added once, in one call per 100; nothing sent again.
    listed = _list_metadata(first)
    assert listed["members_added"] == listed["members_total"] == listed["members_desired"] > 0
    assert listed["membership_calls"] == -(-listed["members_added"] // 100)
    assert listed["list_created"] == 1
    again = _list_metadata(second)
    assert (again["members_added"], again["members_removed"], again["membership_calls"]) == (
        0,
        0,
        0,
    )
    assert again["members_total"] == listed["members_total"]
    assert [r for r in sandbox.requests(method="PUT") if "/memberships" in r["path"]] == []


def _list_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    """The list asset's figures: on the range's last day (the earlier days carry a note)."""
    events = [
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key.to_user_string() == "list_pqa_admins"
    ]
    assert events
    *earlier, last = sorted(events, key=lambda m: m.partition or "")
    assert all(m.metadata["figures_on"].value == last.partition for m in earlier)
    return {k: v.value for k, v in last.metadata.items()}


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key.to_user_string() == key
    ]
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


@pytest.mark.parametrize("how", ["op_config", "shadow_job"])
def test_shadow_run_writes_nothing_and_marks_no_push_partition(
    home: Path, sandbox: SandboxProcess, how: str
) -> None:
    newest = latest_partition(home / "warehouse")
    days = [(newest - dt.timedelta(days=n)).isoformat() for n in (1, 0)]
    sandbox.clear_requests()
    with dg.instance_for_test() as instance:
        if how == "op_config":  # the Launchpad form on hubspot_push_job
            config = {"ops": {f"{o}_push": {"config": {"shadow": True}} for o in OBJECTS}}
            job = defs.resolve_job_def("hubspot_push_job")
        else:
            config, job = None, defs.resolve_job_def("hubspot_shadow_job")
        result = job.execute_in_process(
            instance=instance,
            resources=_resources(home, sandbox),
            run_config=config,
            tags={
                "dagster/asset_partition_range_start": days[0],
                "dagster/asset_partition_range_end": days[-1],
            },
        )
        assert result.success
        # Nothing but reads reached HubSpot: no upsert, no property created.
        assert [r for r in sandbox.requests() if r["method"] != "GET"] == []
        assert all(len(v) == 0 for v in sandbox.export().values())
        for obj in OBJECTS:
            assert instance.get_materialized_partitions(dg.AssetKey(f"{obj}_push")) == set()
    props = _metadata(result, "hubspot_properties")  # reference tables read, nothing created
    assert (props["shadow"], props["properties_created"]) == ("true", 0)
    assert props["properties_to_create"] > 0
    # No push materialized (a shadow push records an observation; pushes after it are skipped
    # by Dagster); the plan is each <obj>_changes asset's.
    assert not any(
        e.event_specific_data.materialization.asset_key.to_user_string().endswith("_push")
        for e in result.get_asset_materialization_events()
    )
    changes = {
        e.event_specific_data.materialization.asset_key.to_user_string(): e
        for e in result.get_asset_materialization_events()
    }
    fields = {
        o: changes[f"{o}_changes"]
        .event_specific_data.materialization.metadata["fields_changed"]
        .value
        for o in OBJECTS
    }
    with StateStore(home / "state" / "test.duckdb") as store:
        planned = store.planned_changes(run_id=result.run_id, limit=1_000_000)
    assert len(planned) == sum(fields.values()) > 0
