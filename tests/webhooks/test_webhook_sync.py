"""A person edits records in HubSpot → the sandbox's signed webhooks → the inbox → the sensor →
a targeted Dagster run that refreshes, plans and pushes exactly those records."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import httpx
import pytest

from pipelines.definitions import defs
from pipelines.webhook_jobs import hubspot_webhook_sensor
from resources.hubspot import HubSpotResource
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, run_sync
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
