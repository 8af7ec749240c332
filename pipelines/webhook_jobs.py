"""Webhook-driven runs: HubSpot says records changed → refresh, plan and push just those.

``hubspot_webhook_sensor`` reads the inbox that ``spokesync webhooks serve`` fills (its own
SQLite file; the sensor never opens the state store) and asks for one ``webhook_sync_job`` run
per tick with every new event's records, grouped by object type. Its cursor is the inbox's
sequence number, so each event is taken once; ``run_key`` makes a tick idempotent. Events that
arrived while the sensor was off are taken on its first tick (they are real changes).
"""

import asyncio
import datetime as dt
import json

import dagster as dg

from assets.partition_checks import latest_materialization
from resources.alerts import AlertsResource
from resources.hubspot import HUBSPOT_POOL, HubSpotResource
from spokesync.alerts import Alert
from spokesync.mapping.loader import load_mappings
from spokesync.settings import Settings
from spokesync.sync.runner import make_client
from spokesync.sync.targeted import sync_records
from spokesync.webhooks import latency
from spokesync.webhooks.inbox import WebhookInbox

POOL = HUBSPOT_POOL
MAX_EVENTS_PER_RUN = 10_000


class WebhookRunConfig(dg.Config):
    hubspot_ids: dict[str, list[str]]  # {object_type: [HubSpot record id, …]}
    first_seq: int = 0
    last_seq: int = 0


@dg.op(
    pool=POOL,
    description="Read the named records back from HubSpot into the snapshot, "
    "then plan and push only those records (as of the warehouse's latest day). Evaluates "
    "each pushed object's `sync_latency` check against the priority SLA: from the events' "
    "receipt to the confirmed write.",
)
def sync_webhook_records(
    context: dg.OpExecutionContext,
    config: WebhookRunConfig,
    hubspot: HubSpotResource,
    alerts: AlertsResource,
):
    settings = hubspot.settings()
    options = hubspot.options(run_id=context.run.run_id, ensure_properties=False)
    mappings = load_mappings(hubspot.mapping_paths())

    async def run():
        client = make_client(settings, options)
        try:
            return await sync_records(
                settings, mappings, config.hubspot_ids, client, context.run.run_id, options
            )
        finally:
            await client.aclose()

    report = asyncio.run(run())
    planned_at = dt.datetime.now(dt.UTC)
    meta: dict[str, object] = {
        "as_of": report.as_of.isoformat(),
        "inbox_seq": f"{config.first_seq}..{config.last_seq}",
    }
    synced = [o.object_type for o in report.objects if o.sync is not None and not o.sync.error]
    latencies = {
        m.object_type: m
        for m in latency.measure(
            settings.webhook_inbox,
            settings.state_db,
            config.first_seq,
            config.last_seq,
            context.run.run_id,
            planned_at,
            synced,
        )
    }
    for obj in report.objects:
        meta.update(obj.to_metadata())
        if obj.sync is not None:
            context.log.info(obj.sync.line())
            measured = latencies.get(obj.object_type)
            yield dg.AssetObservation(
                asset_key=dg.AssetKey(f"{obj.object_type}_push"),
                metadata={
                    "trigger": "webhook",
                    **obj.to_metadata(),
                    **(measured.metadata() if measured else {}),
                },
            )
            if measured is not None:
                _latency_check(context, alerts, settings, report.as_of, measured)
    if report.ignored_types:
        meta["ignored_types"] = ", ".join(report.ignored_types)
    if report.error:
        raise dg.Failure(description=report.error, metadata=meta)
    yield dg.Output(None, metadata=meta)


def _latency_check(
    context: dg.OpExecutionContext,
    alerts: AlertsResource,
    settings: Settings,
    as_of: dt.date,
    measured: latency.EventLatency,
) -> None:
    """The push asset's ``sync_latency`` check for this webhook run (on the as-of day's
    partition), and an alert when it is beyond the priority SLA."""
    b = latency.breach(measured, alerts.thresholds())
    key = dg.AssetKey(f"{measured.object_type}_push")
    context.log_event(
        dg.AssetCheckEvaluation(
            asset_key=key,
            check_name=b.check,
            passed=b.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=b.description,
            metadata={"trigger": "webhook", **measured.metadata()},
            partition=as_of.isoformat(),
            target_materialization_data=latest_materialization(
                context.instance, key, as_of.isoformat()
            ),
        )
    )
    if b.passed:
        return
    delivery = alerts.sender(settings).send(
        Alert(
            kind=b.check,
            title=f"{measured.object_type}: webhook changes reached HubSpot beyond the SLA",
            text=b.description,
            severity="warning",
            fields={"object": measured.object_type, "run_id": context.run.run_id},
            run_id=context.run.run_id,
        )
    )
    if not delivery.delivered:
        context.log.error(
            f"alert {delivery.alert_id} not delivered ({delivery.error}); kept in the outbox "
            "and re-sent with the next alert"
        )


@dg.job(description="Refresh, plan and push the records HubSpot webhooks named.")
def webhook_sync_job() -> None:
    sync_webhook_records()


@dg.sensor(job=webhook_sync_job, minimum_interval_seconds=30)
def hubspot_webhook_sensor(
    context: dg.SensorEvaluationContext, hubspot: HubSpotResource
) -> dg.SensorResult | dg.SkipReason:
    """One targeted run per tick for every event the inbox received since the last tick."""
    path = hubspot.settings().webhook_inbox
    if not path.exists():
        return dg.SkipReason(f"no webhook inbox at {path} yet (spokesync webhooks serve)")
    after = int(context.cursor or 0)
    with WebhookInbox(path) as inbox:
        events = inbox.events_after(after, limit=MAX_EVENTS_PER_RUN)
    if not events:
        return dg.SkipReason(f"no webhook events after #{after}")
    ids: dict[str, dict[str, None]] = {}
    for e in events:
        if e.object_type is not None:
            for object_id in e.object_ids:
                ids.setdefault(e.object_type, {})[object_id] = None
    first, last = events[0].seq, events[-1].seq
    if not ids:
        context.update_cursor(str(last))
        return dg.SkipReason(f"events #{first}..#{last} name no CRM records")
    config = WebhookRunConfig(
        hubspot_ids={t: list(v) for t, v in sorted(ids.items())}, first_seq=first, last_seq=last
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"webhooks-{first}-{last}",
                run_config=dg.RunConfig(ops={"sync_webhook_records": config}),
                tags={
                    "spokesync/trigger": "webhook",
                    "spokesync/records": json.dumps({t: len(v) for t, v in ids.items()}),
                },
            )
        ],
        cursor=str(last),
    )


JOBS = [webhook_sync_job]
SENSORS = [hubspot_webhook_sensor]
