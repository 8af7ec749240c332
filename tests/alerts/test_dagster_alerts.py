"""Alerts from Dagster: the run-failure sensor and the threshold checks post to a loopback
webhook; KPIs are recorded on each push."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import dagster as dg
import pytest

from pipelines.alerts import alert_on_run_failure, alert_outbox_sensor
from pipelines.definitions import defs
from resources.alerts import AlertsResource
from resources.hubspot import HubSpotResource
from resources.warehouse import WarehouseResource
from spokesync.alerts import outbox_path
from spokesync.kpis import KPI_CHECKS, Kpis, Thresholds, breaches
from spokesync.sandbox.launcher import SandboxProcess, free_port
from spokesync.settings import Settings
from spokesync.sync.runner import latest_partition
from tests.alerts.receiver import Receiver


def test_run_failure_sensor_posts_the_failed_step_and_its_root_error(tmp_path: Path) -> None:
    @dg.asset
    def contacts_push() -> None:
        raise ValueError("HubSpot said 400 for jane.doe@acme.com: property 'foo' does not exist")

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [contacts_push], instance=instance, raise_on_error=False, tags={"dagster/partition": "x"}
    )
    assert not result.success
    with Receiver() as hook:
        context = dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={
                "alerts": AlertsResource(webhook_url=hook.url),
                "hubspot": HubSpotResource(home=str(tmp_path), env="test"),
            },
        ).for_run_failure()
        alert_on_run_failure(context)
    (body,) = hook.bodies
    assert body["blocks"][0]["text"]["text"] == "spokesync run failed: __ephemeral_asset_job__"
    assert body["blocks"][1]["text"]["text"] == (
        "contacts_push: ValueError: HubSpot said 400 for j***@acme.com: property 'foo' does "
        "not exist"
    )
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in body["blocks"][2]["fields"]
    }
    assert fields["*partition*"] == "x" and fields["*run_id*"] == result.run_id
    assert body["spokesync"]["kind"] == "run_failure"


def test_thresholds_give_one_verdict_each() -> None:
    k = Kpis(
        "contacts",
        success_rate=0.97,
        failed_rate=0.03,
        retry_rate=0.0,
        open_dead_letters=12,
        open_dead_letters_before=4,
        duplicate_rate=0.0,
        missing_required_rate=0.0,
        association_completeness={"companies": 0.5},
        latency_s=400.0,
    )
    t = Thresholds(priority_objects=frozenset({"contacts"}))
    got = {b.check: (b.passed, b.description) for b in breaches(k, t, newest_day=True)}
    assert got == {
        "failed_records": (
            False,
            "3.00% of the records sent were rejected (threshold 1.00%)",
        ),
        "dead_letters_growing": (False, "open dead letters 4 → 12"),
        "sync_latency": (
            False,
            "in HubSpot 0:06:40 after the files landed (priority SLA 0:05:00)",
        ),
        "kpi_success_rate": (False, "success rate 97.00% < 99.00%"),
        "kpi_retry_rate": (True, "retry rate 0.00% ≤ 20.00%"),
        "kpi_duration": (True, "sync, plan and push took 0.0 s (≤ 3,600 s)"),
        "kpi_open_dead_letters": (True, "12 open dead letters (≤ 100)"),
        "kpi_duplicate_rate": (
            True,
            "HubSpot records sharing their email with another 0.00% ≤ 2.00%",
        ),
        "kpi_missing_required": (
            True,
            "desired records missing a required field 0.00% ≤ 1.00%",
        ),
        "kpi_association_completeness": (
            False,
            "links confirmed in HubSpot: companies 50.00% (below 98.00%)",
        ),
    }
    by_check = {b.check: b for b in breaches(k, t, newest_day=True)}
    assert by_check["kpi_success_rate"].metadata == {"value": 0.97, "threshold": 0.99}
    assert by_check["kpi_open_dead_letters"].metadata == {"value": 12, "threshold": 100}
    deals = {b.check: b for b in breaches(Kpis("deals"), t, newest_day=True)}
    assert (deals["kpi_duplicate_rate"].passed, deals["kpi_duplicate_rate"].description) == (
        True,
        "deals have no dedupe key in HubSpot",
    )
    assert deals["kpi_success_rate"].description == "success rate: not measured in this run"
    batch = {b.check: b.passed for b in breaches(k, Thresholds(), newest_day=True)}
    assert batch["sync_latency"] is True  # 400 s is well inside the 24 h batch SLA
    old_day = {b.check: b.passed for b in breaches(k, t, newest_day=False)}
    assert old_day["sync_latency"] is True  # a backfill of an old day is not "late"


@pytest.mark.e2e
def test_push_records_kpis_and_a_breached_sla_alerts(home: Path, sandbox: SandboxProcess) -> None:
    day = latest_partition(home / "warehouse").isoformat()
    with Receiver() as hook, dg.instance_for_test() as instance:
        result = defs.resolve_job_def("hubspot_push_job").execute_in_process(
            instance=instance,
            resources={
                "warehouse": WarehouseResource(home=str(home)),
                "hubspot": HubSpotResource(home=str(home), env="test", base_url=sandbox.base_url),
                # Every landing file is older than a millisecond: the batch SLA is breached.
                "alerts": AlertsResource(webhook_url=hook.url, batch_sla_hours=1e-6 / 3.6),
            },
            partition_key=day,
        )
    assert result.success  # the threshold checks warn; they do not fail the run
    mats = {
        e.event_specific_data.materialization.asset_key.to_user_string(): {
            k: v.value for k, v in e.event_specific_data.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }
    contacts = mats["contacts_push"]
    assert contacts["kpi_success_rate"] == 1.0 and contacts["kpi_failed_rate"] == 0.0
    assert contacts["kpi_open_dead_letters"] == 0
    assert contacts["kpi_duplicate_rate"] == 0.0  # the snapshot after the push: no duplicates
    assert contacts["kpi_association_completeness_companies"] == 1.0
    # per kind of link: the labelled billing contact apart from the deal's company
    deals = mats["deals_push"]
    assert deals["kpi_association_completeness_companies"] == 1.0
    assert deals["kpi_association_completeness_contacts_billing_contact"] == 1.0
    assert mats["companies_push"]["kpi_missing_required_rate"] == 0.0
    # Personal data is masked in the plan previews kept in the event log.
    plan = mats["contacts_changes"]["plan"]
    assert "***@" in plan
    assert re.search(r"[A-Za-z0-9._%+-]{2,}@", plan) is None
    assert re.search(r"\| (firstname|lastname) \| [^|]* \| [A-Za-z]{2,}", plan) is None
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }
    for obj in ("companies", "contacts", "deals", "erp_subscription", "tickets"):
        assert checks[(f"{obj}_push", "failed_records")].passed
        assert checks[(f"{obj}_push", "dead_letters_growing")].passed
        latency = checks[(f"{obj}_push", "sync_latency")]
        assert not latency.passed and latency.partition == day
        for kpi in KPI_CHECKS:  # one check per KPI, with its value and threshold
            assert checks[(f"{obj}_push", kpi)].passed, (obj, kpi)
    success = checks[("contacts_push", "kpi_success_rate")].metadata
    assert (success["value"].value, success["threshold"].value) == (1.0, 0.99)
    links = checks[("contacts_push", "kpi_association_completeness")]
    assert links.description == "links confirmed in HubSpot: companies 100.00% (all ≥ 98.00%)"
    titles = sorted(b["blocks"][0]["text"]["text"] for b in hook.bodies)
    assert titles == sorted(
        f"{obj}: sync latency beyond the SLA"
        for obj in ("companies", "contacts", "deals", "erp_subscription", "tickets")
    )
    assert dt.date.fromisoformat(day)  # the newest day: latency applies


def _failed_run_context(instance: dg.DagsterInstance, resources: dict[str, object]):
    @dg.asset
    def contacts_push() -> None:
        raise ValueError("HubSpot said 400")

    result = dg.materialize([contacts_push], instance=instance, raise_on_error=False)
    assert not result.success
    return dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources=resources,
    ).for_run_failure()


def test_an_alert_the_webhook_cannot_take_is_kept_and_resent_by_the_outbox_sensor(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/alerts"
    resources = {
        "alerts": AlertsResource(webhook_url=url),
        "hubspot": HubSpotResource(home=str(tmp_path), env="test"),
    }
    settings = Settings.from_env({}, home=tmp_path, env="test")
    instance = dg.DagsterInstance.ephemeral()
    # 1. The receiver fails once, then takes it: delivered by the retry, exactly once.
    with Receiver(port) as hook:
        hook.fail_next = 1
        alert_on_run_failure(_failed_run_context(instance, resources))
        assert (hook.attempts, len(hook.bodies)) == (2, 1)
    # 2. The receiver is down: the alert is kept in the outbox, with its error.
    alert_on_run_failure(_failed_run_context(instance, resources))
    [kept] = [json.loads(line) for line in outbox_path(settings).read_text().splitlines()]
    assert kept["attempts"] == 4 and kept["error"].startswith("ConnectError")
    tick = alert_outbox_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert tick.skip_message.startswith("re-sent 0 undelivered alert(s); 1 still pending")
    assert "ConnectError" in tick.skip_message
    # 3. Back up: the next tick delivers it without any new alert; the outbox is empty.
    with Receiver(port) as hook:
        tick = alert_outbox_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert tick.skip_message == "re-sent 1 undelivered alert(s); none pending"
        tick = alert_outbox_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert tick.skip_message == "no undelivered alerts"
    [body] = hook.bodies
    assert body["spokesync"]["alert_id"] == kept["alert"]["id"]
    assert body["blocks"][0]["text"]["text"].startswith("spokesync run failed")
