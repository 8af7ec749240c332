"""Webhook-driven runs: HubSpot says records changed → refresh, plan and push just those.

``hubspot_webhook_sensor`` reads the inbox that ``spokesync webhooks serve`` fills (its own
SQLite file; the sensor never opens the state store) and asks for one ``webhook_sync_job`` run
per tick with every new event's records, grouped by object type. Its cursor is the inbox's
sequence number, so each event is taken once; ``run_key`` makes a tick idempotent. Events that
arrived while the sensor was off are taken on its first tick (they are real changes).
"""

import asyncio
import json

import dagster as dg

from resources.hubspot import HUBSPOT_POOL, HubSpotResource
from spokesync.mapping.loader import load_mappings
from spokesync.sync.runner import make_client
from spokesync.sync.targeted import sync_records
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
    "then plan and push only those records (as of the warehouse's latest day).",
)
def sync_webhook_records(
    context: dg.OpExecutionContext, config: WebhookRunConfig, hubspot: HubSpotResource
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
    meta: dict[str, object] = {
        "as_of": report.as_of.isoformat(),
        "inbox_seq": f"{config.first_seq}..{config.last_seq}",
    }
    for obj in report.objects:
        meta.update(obj.to_metadata())
        if obj.sync is not None:
            context.log.info(obj.sync.line())
            yield dg.AssetObservation(
                asset_key=dg.AssetKey(f"{obj.object_type}_push"),
                metadata={"trigger": "webhook", **obj.to_metadata()},
            )
    if report.ignored_types:
        meta["ignored_types"] = ", ".join(report.ignored_types)
    if report.error:
        raise dg.Failure(description=report.error, metadata=meta)
    yield dg.Output(None, metadata=meta)


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
