"""A person edits records in HubSpot → the sandbox's signed webhooks → the inbox → the sensor →
a targeted Dagster run that refreshes, plans and pushes exactly those records."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import dagster as dg
import httpx
import pytest

from pipelines.definitions import defs
from pipelines.webhook_jobs import hubspot_webhook_sensor
from resources.alerts import AlertsResource
from resources.hubspot import HubSpotResource
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, run_sync
from tests.alerts.receiver import Receiver
from tests.e2e.conftest import upsert_requests
from tests.webhooks.conftest import SECRET, WebhookServer

pytestmark = pytest.mark.e2e


def _patch(sandbox: SandboxProcess, hubspot_id: str, **props: str) -> None:
    r = httpx.patch(
        f"{sandbox.base_url}/crm/v3/objects/contacts/{hubspot_id}",
        json={"properties": props},
        headers={"Authorization": f"Bearer {sandbox.token}"},
    )
    assert r.status_code == 200, r.text


def test_edits_in_hubspot_trigger_a_run_for_just_those_records(tmp_path: Path, home: Path) -> None:
    webhook_server = WebhookServer(home)  # inbox: $SPOKESYNC_HOME/webhooks/test.sqlite
    try:
        _scenario(tmp_path, home, webhook_server)
    finally:
        webhook_server.stop()


def _scenario(tmp_path: Path, home: Path, webhook_server: WebhookServer) -> None:
    args = ["--webhook-url", webhook_server.url, "--webhook-secret", SECRET]
    with SandboxProcess(tmp_path / "sandbox.sqlite", rate_limit=1000, extra_args=args) as sandbox:
        settings = Settings.from_env(
            environ={}, home=home, env="test", hubspot_base_url=sandbox.base_url
        )
        first = run_sync(settings, SyncOptions())
        assert first.ok
        contacts = {r["properties"]["email"]: r for r in sandbox.export("contacts")}
        ada, bob = sorted(contacts)[:2]
        resource = HubSpotResource(home=str(home), env="test", base_url=sandbox.base_url)
        # The first sync's own writes echo back as events; take them first so the edits below
        # are what the next tick sees.
        with dg.instance_for_test() as instance:
            webhook_server.wait_quiet()
            ctx = dg.build_sensor_context(instance=instance, resources={"hubspot": resource})
            echo = hubspot_webhook_sensor(ctx)
            cursor = echo.cursor
            # A person edits two contacts: a warehouse-owned field and a HubSpot-owned one.
            before = webhook_server.health()["events"]
            _patch(sandbox, contacts[ada]["id"], firstname="Edited by hand")
            _patch(sandbox, contacts[bob]["id"], lifecyclestage="evangelist")
            webhook_server.wait_for("events", before + 2)

            ctx = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"hubspot": resource}
            )
            result = hubspot_webhook_sensor(ctx)
            [request] = result.run_requests
            config = request.run_config["ops"]["sync_webhook_records"]["config"]
            assert sorted(config["hubspot_ids"]["contacts"]) == sorted(
                [contacts[ada]["id"], contacts[bob]["id"]]
            )
            sandbox.clear_requests()
            run = defs.resolve_job_def("webhook_sync_job").execute_in_process(
                instance=instance,
                run_config=request.run_config,
                resources={"hubspot": resource},
                tags=request.tags,
            )
        assert run.success
        # exactly one read of the two records, one upsert carrying only the put-back field
        reads = [r for r in sandbox.requests(method="POST") if r["path"].endswith("/batch/read")]
        assert len(reads) == 1
        [upsert] = upsert_requests(sandbox)
        inputs = upsert["body"]["inputs"]
        assert [(i["id"], i["properties"]) for i in inputs] == [
            (ada, {"firstname": contacts[ada]["properties"]["firstname"]})
        ]
        after = {r["properties"]["email"]: r for r in sandbox.export("contacts")}
        assert after[ada]["properties"]["firstname"] == contacts[ada]["properties"]["firstname"]
        assert after[bob]["properties"]["lifecyclestage"] == "evangelist"  # HubSpot-owned: stands
        with StateStore(settings.state_db) as store:
            snap = store.snapshot_values("contacts")
        assert snap[bob]["lifecyclestage"] == "evangelist"
        [observation] = [
            e.event_specific_data.asset_observation
            for e in run.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        ]
        assert observation.asset_key == dg.AssetKey("contacts_push")
        meta = {k: v.value for k, v in observation.metadata.items()}
        assert (meta["contacts_ids_requested"], meta["contacts_records_read"]) == (2, 2)
        assert (meta["contacts_records_changed"], meta["contacts_records_pushed"]) == (1, 1)
        assert meta["contacts_values_drifted"] == 2

        # The priority SLA: from the events' receipt to the confirmed write, as the push's
        # sync_latency check on the as-of day.
        [evaluation] = _latency_evaluations(run)
        received = _first_receipt(webhook_server, config["first_seq"], config["last_seq"])
        with StateStore(settings.state_db) as store:
            [entry] = store.history.entries("contacts", external_id=ada, property="firstname")[-1:]
            confirmed = store.history.last_confirmed_at("contacts", run.run_id)
        assert entry.run_id == run.run_id and confirmed == entry.recorded_at
        expected = round((confirmed.astimezone(dt.UTC) - received).total_seconds(), 3)
        assert (evaluation.asset_key, evaluation.check_name) == (
            dg.AssetKey("contacts_push"),
            "sync_latency",
        )
        assert evaluation.partition == meta_as_of(run)
        assert evaluation.passed, evaluation.description
        latency_s = evaluation.metadata["kpi_webhook_latency_s"].value
        assert latency_s == expected and 0 < latency_s < 300
        assert evaluation.metadata["latency_ends"].value == "confirmed write"
        assert meta["kpi_webhook_latency_s"] == latency_s

        # A change that waited 6 minutes before the run (the sensor off, a queue) fails the
        # check and alerts, delivered to the configured webhook.
        _late_round(sandbox, webhook_server, resource, contacts[ada]["id"], result.cursor)


def meta_as_of(run: dg.ExecuteInProcessResult) -> str:
    [out] = [
        e.event_specific_data.metadata["as_of"].value
        for e in run.all_events
        if e.event_type_value == "STEP_OUTPUT"
    ]
    return out


def _latency_evaluations(run: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
    return [
        e.event_specific_data
        for e in run.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]


def _first_receipt(server: WebhookServer, first: int, last: int) -> dt.datetime:
    con = sqlite3.connect(server.inbox)
    try:
        (ms,) = con.execute(
            "SELECT min(received_at) FROM events WHERE seq BETWEEN ? AND ? "
            "AND object_type = 'contacts'",
            [first, last],
        ).fetchone()
    finally:
        con.close()
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _late_round(
    sandbox: SandboxProcess,
    server: WebhookServer,
    resource: HubSpotResource,
    hubspot_id: str,
    cursor: str | None,
) -> None:
    with dg.instance_for_test() as instance, Receiver() as receiver:
        server.wait_quiet()
        before = server.health()["events"]
        _patch(sandbox, hubspot_id, firstname="Edited again")
        server.wait_for("events", before + 1)
        con = sqlite3.connect(server.inbox)
        with con:
            con.execute(
                "UPDATE events SET received_at = received_at - 360000 WHERE seq > ?",
                [int(cursor or 0)],
            )
        con.close()
        ctx = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"hubspot": resource}
        )
        [request] = hubspot_webhook_sensor(ctx).run_requests
        run = defs.resolve_job_def("webhook_sync_job").execute_in_process(
            instance=instance,
            run_config=request.run_config,
            resources={"hubspot": resource, "alerts": AlertsResource(webhook_url=receiver.url)},
            tags=request.tags,
        )
        assert run.success
        [evaluation] = _latency_evaluations(run)
        assert not evaluation.passed
        assert evaluation.metadata["kpi_webhook_latency_s"].value > 360
        assert "priority SLA 0:05:00" in evaluation.description
        [alert] = receiver.bodies
        assert alert["spokesync"]["kind"] == "sync_latency"
        assert alert["blocks"][0]["text"]["text"] == (
            "contacts: webhook changes reached HubSpot beyond the SLA"
        )
